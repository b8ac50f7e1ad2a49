"""``wrap``: turn an existing model into a LocalNet by tracing its ``forward``, without touching its parameters.

The model's ``forward`` is traced with ``torch.fx`` into a graph of every op it runs, modules
and functional ops alike (``F.relu``, functional pooling, ``torch.flatten``, residual adds).
``split`` names where new stages begin: a module by its qualified name (``"layer2"``,
``"layer3.1"``; the stage opens at the first op run inside it), a node of the traced graph by
its name (``"add_3"``), or a child by its index (``split=[2, 4]`` on an ``nn.Sequential`` gives
``model[:2], model[2:4], model[4:]``). Each stage's block is a ``torch.fx.GraphModule`` that
runs its share of the graph on the user's own modules (``block.layer2 is model.layer2``).

A cut must leave exactly one tensor flowing from one stage to the next: a cut inside a residual
block, where the skip branch also crosses, is refused with the nodes that cross it. The last
stage keeps the model's own output as its exit when it already has ``num_classes`` features.

At wrap time, the wrapped net's last block and the model are run on one random batch in eval
mode: their outputs must be equal, bit for bit. A forward whose Python the trace fixed at trace
time (a branch on ``self.training`` or on a counter, say) gives a different graph, and is
refused here instead of training a different network. A forward that cannot be traced at all
(a branch on a tensor's value) is refused with the node the trace stopped after.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> net = wrap(model, split=[3, 5], num_classes=10, input_shape=(1, 8, 8))
    >>> [t.shape for t in net(torch.zeros(2, 1, 8, 8))]
    [torch.Size([2, 10]), torch.Size([2, 10]), torch.Size([2, 10])]
    >>> net.stages[0].block.get_submodule("1").weight is model[1].weight
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import fx, nn

from locallearn._params import check_number
from locallearn.heads import HeadSpec, make_head
from locallearn.net import LocalNet, Stage, output_shapes


class _RecordingTracer(fx.Tracer):
    """A tracer that remembers the last node it made, to say where a failed trace stopped."""

    last: fx.Node | None = None

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        self.last = super().create_node(*args, **kwargs)
        return self.last


def trace(model: nn.Module) -> fx.GraphModule:
    """The ``torch.fx`` graph of ``model.forward``; an untraceable forward is one error naming where it stopped."""
    tracer = _RecordingTracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:  # fx raises TraceError, TypeError, AttributeError ... from the user's forward
        where = "before its first op" if tracer.last is None else f"after node {tracer.last.name!r} ({tracer.last.format_node()})"
        raise ValueError(
            f"wrap cannot trace {type(model).__name__}.forward with torch.fx: it stopped {where}: {error}. "
            "Data-dependent Python (an if or loop on a tensor's value) cannot be traced; move it out of forward "
            "or into a module that wrap does not cut."
        ) from error
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(
            f"wrap needs a forward(x) with one input; {type(model).__name__}.forward takes "
            f"{', '.join(n.name for n in placeholders) or 'none'}."
        )
    return fx.GraphModule(model, graph)


def _compute_nodes(graph: fx.Graph) -> list[fx.Node]:
    """The nodes that do work, in forward order (not the input, the output or attribute reads)."""
    return [n for n in graph.nodes if n.op in ("call_module", "call_function", "call_method")]


def _cut_index(point: int | str, nodes: list[fx.Node], model: nn.Module) -> int:
    """The index in ``nodes`` of the first op of the stage that ``point`` opens."""
    children = [name for name, _ in model.named_children()]
    if isinstance(point, int) and not isinstance(point, bool):
        if not 0 < point < len(children):
            raise ValueError(
                f"The split point {point!r} is not a child index in 1..{len(children) - 1} nor a child name; "
                f"the model's children are: {', '.join(children)}."
            )
        point = children[point]
    if not isinstance(point, str):
        raise ValueError(f"A split point is a module name, a node name or a child index; got {point!r}.")
    for i, node in enumerate(nodes):
        if point in (node.meta.get("nn_module_stack") or {}) or node.name == point:
            return i
    modules = dict(model.named_modules())
    if point in modules:
        raise ValueError(f"The split point {point!r} names a module that forward never runs.")
    raise ValueError(
        f"The split point {point!r} names no layer of the model. Its children are: {', '.join(children)}; "
        "a deeper module is named by its dotted path (layer2.1), an op by its node name in the traced graph."
    )


def _crossing(nodes: list[fx.Node], placeholder: fx.Node, cut: int) -> list[fx.Node]:
    """The values made before ``cut`` (or the input) that ops from ``cut`` on, or the output, read."""
    before = {placeholder, *nodes[:cut]}
    after = nodes[cut:]
    crossing: dict[fx.Node, None] = {}
    for node in after:
        for arg in node.all_input_nodes:
            if arg in before:
                crossing[arg] = None
    output = next(n for n in placeholder.graph.nodes if n.op == "output")
    for arg in output.all_input_nodes:
        if arg in before:
            crossing[arg] = None
    return list(crossing)


def _segment(root: fx.GraphModule, nodes: list[fx.Node], source: fx.Node, result: fx.Node) -> fx.GraphModule:
    """A GraphModule running ``nodes`` on the input ``source`` stands for, returning ``result``."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {source: graph.placeholder(source.name)}

    def lookup(node: fx.Node) -> fx.Node:
        if node not in env:  # an attribute read (a parameter or constant used in forward): copy it here
            env[node] = graph.node_copy(node, lookup)
        return env[node]

    for node in nodes:
        env[node] = graph.node_copy(node, lookup)
    graph.output(lookup(result))
    return fx.GraphModule(root, graph)


def _check_equal(model: nn.Module, net: LocalNet, input_shape: Sequence[int]) -> None:
    """The last block's output equals the model's on a random batch, in eval mode (bit for bit)."""
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    modes = [(m, m.training) for m in (model, net)]
    try:
        model.eval()
        net.eval()
        with torch.no_grad():
            expected = model(x)
            _, features = net(x, return_features=True)
    finally:
        for module, training in modes:
            module.train(training)
    got = features[-1]
    if not isinstance(expected, torch.Tensor) or got.shape != expected.shape or not torch.equal(got, expected):
        detail = (
            f"max |difference| {float((got - expected).abs().max()):.3g}"
            if isinstance(expected, torch.Tensor) and got.shape == expected.shape
            else f"shape {tuple(got.shape)} against {getattr(expected, 'shape', type(expected).__name__)}"
        )
        raise ValueError(
            f"The traced graph of {type(model).__name__} does not compute its forward: on a random batch the wrapped "
            f"net's last block and the model differ ({detail}). Its forward runs Python the trace fixed at trace time "
            "(a branch on self.training, a counter, a value read from outside); make forward a function of its input."
        )


def wrap(
    model: nn.Module,
    *,
    split: Sequence[int | str],
    num_classes: int,
    input_shape: Sequence[int],
    head: HeadSpec = "linear",
    head_kw: dict[str, Any] | None = None,
) -> LocalNet:
    """Cut ``model`` into stages at ``split`` and give every stage a head (see module docstring)."""
    check_number(num_classes, name="num_classes", owner="wrap", low=2, integer=True)
    root = trace(model)
    nodes = _compute_nodes(root.graph)
    placeholder = next(n for n in root.graph.nodes if n.op == "placeholder")
    cuts = [_cut_index(point, nodes, model) for point in split]
    if cuts != sorted(set(cuts)) or 0 in cuts:
        raise ValueError(
            f"Split points must be distinct, in forward order and after the first op; got {list(split)} "
            f"(they open stages at ops {[nodes[c].name for c in cuts]})."
        )
    bounds = [0, *cuts, len(nodes)]
    output = next(n for n in root.graph.nodes if n.op == "output")
    if not isinstance(output.args[0], fx.Node):
        raise ValueError(f"wrap needs a forward that returns one tensor; {type(model).__name__}.forward returns {output.args[0]!r}.")
    sources, blocks = [placeholder], []
    for point, cut in zip(split, cuts):
        crossing = _crossing(nodes, placeholder, cut)
        if len(crossing) != 1:
            raise ValueError(
                f"Cannot cut at {point!r} (before node {nodes[cut].name!r}): {len(crossing)} values cross there "
                f"({', '.join(n.name for n in crossing)}), and a stage passes one tensor to the next. "
                "Cut between blocks, not inside a residual block."
            )
        sources.append(crossing[0])
    results = [*sources[1:], output.args[0]]
    for (a, b), source, result in zip(zip(bounds[:-1], bounds[1:]), sources, results):
        blocks.append(_segment(root, nodes[a:b], source, result))
    shapes = output_shapes(blocks, input_shape)
    stages = []
    for i, (block, shape) in enumerate(zip(blocks, shapes)):
        is_classifier = i == len(blocks) - 1 and shape == (num_classes,)
        stages.append(Stage(block, nn.Identity() if is_classifier else make_head(head, shape, num_classes, **(head_kw or {}))))
    net = LocalNet(stages, input_shape=input_shape)
    _check_equal(model, net, input_shape)
    return net
