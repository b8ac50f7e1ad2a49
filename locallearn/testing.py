"""Conformance checks that every registered rule, schedule, model, dataset and MI estimator must pass.

Run them on your own rule or schedule before registering it:

Example:
    >>> from locallearn import rules, schedules
    >>> from locallearn.testing import check_rule, check_schedule
    >>> check_rule(rules.create("local"))
    >>> check_schedule(schedules.create("simultaneous"))
    >>> check_model("mlp")
    >>> check_head("linear")
    >>> check_exit_policy("max-prob")
    >>> check_dataset("synthetic")
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Any

import torch

from locallearn.builders import build_cnn, build_mlp
from locallearn.data import Dataset, load
from locallearn.models.base import ModelFamily
from locallearn.net import LocalNet
from locallearn.rules.base import LocalRule
from locallearn.schedules.base import Schedule, TrainState, train_step
from locallearn.info.conformance import check_estimator


__all__ = ["check_dataset", "check_estimator", "check_exit_policy", "check_head", "check_model", "check_rule", "check_schedule"]


def _tiny_net(head: str = "linear", conv: bool = False) -> LocalNet:
    torch.manual_seed(0)
    if conv:
        return build_cnn((1, 4, 4), (4, 4, 4), 4, head=head)
    return build_mlp((16,), (12, 12, 12), 4, head=head)


def _state(net: LocalNet, rule: LocalRule, data: Dataset, conv: bool = False) -> TrainState:
    x = data.x_train[:64]
    if conv:
        x = x.reshape(-1, 1, 4, 4)
    optimizers = [
        torch.optim.SGD(params, lr=0.1) if (params := [p for p in s.parameters() if p.requires_grad]) else None
        for s in net.stages
    ]
    return TrainState(net=net, rule=rule, optimizers=optimizers, x_train=x, y_train=data.y_train[:64], batch_size=32, seed=0)


def check_rule(rule: LocalRule, *, head: str = "linear", conv: bool = False) -> None:
    """Assert the rule contract on a tiny 3-stage net.

    - it is registered under ``rule.name`` and its constructor takes keyword-only
      hyper-parameters that ``get_params`` reads back;
    - a step gives finite losses and changes the trainable parameters of every stage
      that received a loss;
    - a local rule (``detach_inputs``) is local: stage 0's update is the same whether
      or not the later stages are trained in the same step.
    """
    from locallearn.rules import RULES

    assert RULES.get(rule.name) is type(rule), f"{type(rule).__name__} is not registered as {rule.name!r}"
    signature = inspect.signature(type(rule).__init__)
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    assert not positional, f"{type(rule).__name__} hyper-parameters must be keyword-only; got positional {positional}"
    assert set(rule.get_params()) == {p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}

    data = load("synthetic")
    net = _tiny_net(head, conv)
    plain = _structure(net)
    rule.setup(net)
    _check_rule_flags(rule, net, plain, data, conv)
    alone = copy.deepcopy(net)
    before = [copy.deepcopy(list(s.parameters())) for s in net.stages]
    state = _state(net, rule, data, conv)
    torch.manual_seed(1)  # the same random draws (noise, dropout) in both steps below
    losses = [float(v) for v in train_step(state, state.x_train[:32], state.y_train[:32], range(3))]
    assert all(math.isfinite(v) or v != v for v in losses), f"non-finite losses {losses}"
    for k, (stage, old) in enumerate(zip(net.stages, before)):
        if losses[k] == losses[k]:  # a loss was given (not NaN)
            moved = any(not torch.equal(p, q) for p, q in zip(stage.parameters(), old) if p.requires_grad)
            assert moved, f"rule {rule.name!r}: stage {k} had a loss but none of its trainable parameters changed"
    if rule.detach_inputs:
        # train_step itself refuses a loss that reaches an earlier stage's (freed) graph; this
        # catches the subtler case of a stage's update depending on later stages.
        alone_state = _state(alone, rule, data, conv)
        torch.manual_seed(1)
        train_step(alone_state, alone_state.x_train[:32], alone_state.y_train[:32], [0])
        for p, q in zip(net.stages[0].parameters(), alone.stages[0].parameters()):
            torch.testing.assert_close(p, q, msg=f"rule {rule.name!r} is not local: stage 0 depends on later stages")


def _structure(net: LocalNet) -> list[tuple[str, Any]]:
    """What a setup that ``changes_net`` may change: the modules (names, types), the parameters
    (names, values, whether trainable) and buffers."""
    modules = [(name, type(m)) for name, m in net.named_modules()]
    tensors = [(name, p.detach().clone(), p.requires_grad) for name, p in net.named_parameters()]
    return [*modules, *tensors, *((name, b.clone()) for name, b in net.named_buffers())]


def _same_structure(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> bool:
    def same(u: Any, v: Any) -> bool:
        return torch.equal(u, v) if isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor) else u == v
    return len(a) == len(b) and all(len(p) == len(q) and all(same(u, v) for u, v in zip(p, q)) for p, q in zip(a, b))


def _check_rule_flags(rule: LocalRule, net: LocalNet, plain: list[tuple[str, Any]], data: Dataset, conv: bool) -> None:
    """The rule's declared flags say what it does: a setup that changed the net's modules or parameters
    declares ``changes_net``; a ``transform_batch`` that changes the batch declares ``transforms_batch``."""
    if not rule.changes_net:
        assert _same_structure(plain, _structure(net)), (
            f"rule {rule.name!r}: its setup changed the net's modules or parameters, but it does not declare changes_net = True"
        )
    x, y = data.x_train[:8], data.y_train[:8]
    x = x.reshape(-1, 1, 4, 4) if conv else x
    if not rule.transforms_batch:
        tx, ty = rule.transform_batch(x, y)
        assert torch.equal(tx, x) and torch.equal(ty, y), (
            f"rule {rule.name!r}: transform_batch changed the batch, but it does not declare transforms_batch = True"
        )


class _Probe(LocalRule):
    """A local rule that reads the network input (``needs_input``) and doubles every batch, both halves
    equal (``transforms_batch``), and notes, per stage it trains, whether it got the input and the
    doubled batch."""

    name = "local"

    def __init__(self, *, needs_input: bool, transforms_batch: bool) -> None:
        self.needs_input, self.transforms_batch = needs_input, transforms_batch
        self.seen: list[tuple[int, bool, bool]] = []  # (stage, got x, got the transformed batch)

    def transform_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.cat([x, x]), torch.cat([y, y])) if self.transforms_batch else (x, y)

    def stage_loss(self, out, y):
        half = len(y) // 2
        doubled = len(y) % 2 == 0 and torch.equal(y[:half], y[half:])
        self.seen.append((out.index, out.x is not None, doubled))
        return torch.nn.functional.cross_entropy(out.logits, y)


def _check_schedule_flags(schedule: Schedule) -> None:
    """What the schedule declares it gives a rule, it gives: with ``carries_input`` every stage it trains
    gets ``StageOutput.x``, with ``carries_batch_transform`` the rule's batches; with ``needs_local_rule``
    False a global rule passes ``check``."""
    from locallearn.rules import RULES

    if not schedule.needs_local_rule:
        schedule.check(RULES.create("e2e"))
    if not (schedule.carries_input or schedule.carries_batch_transform):
        return
    probe = _Probe(needs_input=schedule.carries_input, transforms_batch=schedule.carries_batch_transform)
    schedule.check(probe)
    net = _tiny_net()
    state = _state(net, probe, load("synthetic"))
    for epoch in range(schedule.total_epochs(num_stages=3, epochs=1)):
        state.epoch = epoch
        schedule.train_epoch(state)
    assert probe.seen, f"{schedule.name}: the probe rule trained no stage"
    for stage, got_x, doubled in probe.seen:
        assert got_x or not schedule.carries_input, f"{schedule.name}: declares carries_input, but stage {stage + 1} got no StageOutput.x"
        assert doubled or not schedule.carries_batch_transform, (
            f"{schedule.name}: declares carries_batch_transform, but stage {stage + 1} trained on a batch the rule did not make"
        )


def check_schedule(schedule: Schedule, *, rule: LocalRule | None = None) -> None:
    """Assert the schedule contract: an epoch trains the stages it reports, and only those, and the
    schedule gives a rule what its flags say (``carries_input``, ``carries_batch_transform``,
    ``needs_local_rule``)."""
    from locallearn.rules import RULES
    from locallearn.schedules import SCHEDULES

    assert SCHEDULES.get(schedule.name) is type(schedule), f"{type(schedule).__name__} is not registered as {schedule.name!r}"
    _check_schedule_flags(schedule)
    rule = rule or RULES.create("local")
    schedule.check(rule)
    net = _tiny_net()
    rule.setup(net)
    state = _state(net, rule, load("synthetic"))
    total = schedule.total_epochs(num_stages=3, epochs=1)
    assert total >= 1
    for epoch in range(total):
        state.epoch = epoch
        before = copy.deepcopy(net.state_dict())
        trained = schedule.train_epoch(state)
        assert trained and all(0 <= k < 3 for k in trained), f"{schedule.name}: bad stage list {trained}"
        for k, stage in enumerate(net.stages):
            changed = any(not torch.equal(v, before[f"stages.{k}.{name}"]) for name, v in stage.state_dict().items())
            assert changed == (k in trained), f"{schedule.name}: stage {k} changed={changed} but trained={trained}"


def _one_step_gradients(net: LocalNet, x: torch.Tensor, y: torch.Tensor, rule: str) -> list[torch.Tensor | None]:
    from locallearn.engine import backward

    net.zero_grad(set_to_none=True)
    backward(net, x, y, rule)
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def check_model(family: str | ModelFamily, *, stage_counts: tuple[int, ...] = (1, 2), num_classes: int = 3) -> None:
    """Assert the model-family contract on its ``tiny`` instances with 1 and 2 stages.

    - it is registered under its name, its constructor takes keyword-only hyper-parameters
      that ``get_params`` reads back, and ``describe`` gives a label;
    - ``build`` makes ``num_stages()`` stages, is repeatable under a seed, and every exit
      gives ``(n, num_classes)`` finite logits;
    - with one stage, ``local`` equals ``e2e`` bit for bit (one head, one loss: the two rules
      must then be the same computation);
    - with more stages, ``local`` is local: stage 1's gradient does not depend on the later heads.
    """
    from locallearn.models import MODELS

    cls = MODELS.get(family) if isinstance(family, str) else type(family)
    assert MODELS.get(cls.name) is cls, f"{cls.__name__} is not registered as {cls.name!r}"
    signature = inspect.signature(cls.__init__)
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    assert not positional, f"{cls.__name__} hyper-parameters must be keyword-only; got positional {positional}"
    for stages in stage_counts:
        instance = cls.tiny(stages)
        assert set(instance.get_params()) == {p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}
        assert isinstance(instance.describe(), str) and instance.describe(), f"model {cls.name!r}: empty describe()"
        x, y = instance.example_batch(6, num_classes, torch.Generator().manual_seed(0))
        nets = []
        for _ in range(2):
            torch.manual_seed(0)
            nets.append(instance.build(instance.tiny_input_shape, num_classes))
        net = nets[0]
        assert isinstance(net, LocalNet), f"model {cls.name!r}: build gave {type(net).__name__}, not a LocalNet"
        assert net.num_exits == instance.num_stages() == stages, (
            f"model {cls.name!r}: tiny({stages}) built {net.num_exits} stages, num_stages() says {instance.num_stages()}"
        )
        for p, q in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
            assert torch.equal(p, q), f"model {cls.name!r}: two builds under the same seed differ"
        net.eval()
        with torch.no_grad():
            logits = net(x)
        net.train()
        assert len(logits) == stages
        for k, out in enumerate(logits):
            assert out.shape[0] == len(x) and out.shape[-1] == num_classes, (
                f"model {cls.name!r}: exit {k + 1} gives logits of shape {tuple(out.shape)}; expected (n, ..., {num_classes})"
            )
            assert torch.isfinite(out).all(), f"model {cls.name!r}: exit {k + 1} gives non-finite logits"
        if stages == 1:
            torch.manual_seed(1)
            local = _one_step_gradients(nets[0], x, y, "local")
            torch.manual_seed(1)
            e2e = _one_step_gradients(nets[1], x, y, "e2e")
            for a, b in zip(local, e2e):
                assert (a is None) == (b is None) and (a is None or torch.equal(a, b)), (
                    f"model {cls.name!r}: with one stage, 'local' and 'e2e' give different gradients"
                )


def check_dataset(name: str, *, data_dir: str | None = None, **options: Any) -> None:
    """Assert the dataset contract for a registered loader (its files in ``data_dir`` if it needs any;
    ``options`` go to the loader, e.g. a small ``val_size`` for a small fixture).

    - it loads a ``Dataset`` named as registered, the same tensors twice for one ``split_seed``;
    - float32 inputs normalised with the training split's statistics (mean about 0, std about 1);
    - labels cover more than one class and lie within ``num_classes``;
    - the validation and test splits share no row with the training split (by content hash).
    """
    from locallearn.data import DATASETS

    loader = DATASETS.get(name)
    ds = loader(split_seed=0, data_dir=data_dir, **options)
    again = loader(split_seed=0, data_dir=data_dir, **options)
    assert isinstance(ds, Dataset), f"dataset {name!r}: the loader gave {type(ds).__name__}, not a Dataset"
    assert ds.name == name, f"dataset {name!r}: the loaded Dataset is named {ds.name!r}"
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        x2, y2 = again.split(split)
        assert torch.equal(x, x2) and torch.equal(y, y2), f"dataset {name!r}: the {split} split differs between two loads"
        assert x.dtype == torch.float32, f"dataset {name!r}: {split} inputs are {x.dtype}; expected float32"
    mean, std = float(ds.x_train.mean()), float(ds.x_train.std())
    assert abs(mean) < 0.1 and abs(std - 1) < 0.1, f"dataset {name!r}: training inputs have mean {mean:.3f}, std {std:.3f}; expected about 0 and 1"
    assert len(torch.unique(ds.y_train)) > 1, f"dataset {name!r}: the training split holds one class only"
    rows = {hash(r.numpy().tobytes()) for r in ds.x_train.flatten(1)}
    for split in ("val", "test"):
        x, _ = ds.split(split)
        shared = sum(hash(r.numpy().tobytes()) in rows for r in x.flatten(1))
        assert shared <= len(x) // 100, f"dataset {name!r}: {shared} of {len(x)} {split} rows also stand in the training split"


def _keyword_only(cls: type, skip: int) -> None:
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"][skip:]
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert not positional, f"{cls.__name__} hyper-parameters must be keyword-only; got positional {positional}"


def check_head(name: str, *, num_classes: int = 5) -> None:
    """Assert the head contract: built from ``(in_shape, num_classes)`` with keyword-only options, it maps
    features of that shape to ``(n, num_classes)`` finite logits and every parameter gets a gradient.
    Heads are tried on feature maps ``(C, H, W)``, flat features ``(D,)`` and tokens ``(T, D)``; a head
    may refuse a kind it is not for with a ``ValueError`` naming the shape, but must take at least one,
    and every head takes feature maps or tokens (flat features are the only kind no head must take)."""
    from locallearn.heads import HEADS, make_head

    cls = HEADS.get(name)
    _keyword_only(cls, skip=2)
    generator = torch.Generator().manual_seed(0)
    accepted = []
    for shape in ((6, 4, 4), (12,), (5, 12)):
        try:
            head = make_head(name, shape, num_classes)
        except ValueError as error:
            assert str(tuple(shape)) in str(error), (
                f"head {name!r} refused features of shape {shape} with an unclear message: {error}"
            )
            continue
        accepted.append(shape)
        out = head(torch.randn(4, *shape, generator=generator))
        assert out.shape == (4, num_classes), f"head {name!r}: features {shape} gave logits {tuple(out.shape)}"
        assert torch.isfinite(out).all(), f"head {name!r}: non-finite logits"
        out.square().sum().backward()
        missing = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
        assert not missing, f"head {name!r}: no gradient reaches {missing}"
    assert any(len(shape) != 1 for shape in accepted), f"head {name!r} refused feature maps and tokens alike"


def check_exit_policy(name: str, *, exits: int = 3, samples: int = 64, num_classes: int = 4) -> None:
    """Assert the exit-policy contract on random validation logits ``[K, N, C]``:

    - keyword-only hyper-parameters read back by ``get_params``; a learnable policy fits on a
      validation split and refuses a test split;
    - ``sureness`` is ``[K, N]``, finite and inside ``sureness_range``, and causal: exit k's value
      does not change when later exits' logits do; ``outputs`` is ``[K, N, C]`` and causal too;
    - ``decide`` with every threshold ``inf`` sends every sample to the last exit, and with every
      threshold at the low end of the range sends every sample out at the first exit.
    """
    from locallearn.exits import EXIT_POLICIES
    from locallearn.exits.cache import ExitLogits

    cls = EXIT_POLICIES.get(name)
    _keyword_only(cls, skip=0)
    policy = cls()
    assert set(policy.get_params()) == {p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY}
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, num_classes, (samples,), generator=generator)
    logits = torch.randn(exits, samples, num_classes, generator=generator) * 2
    logits[:, torch.arange(samples), labels] += torch.linspace(0.5, 3.0, exits)[:, None]  # later exits surer
    if policy.learnable:
        try:
            policy.fit(ExitLogits(logits, labels, split="test"))
        except ValueError as error:
            assert "test" in str(error)
        else:
            raise AssertionError(f"exit policy {name!r} fitted on a split named 'test'")
        policy.fit(ExitLogits(logits, labels, split="val"))
    sure = policy.sureness(logits)
    low, high = policy.sureness_range
    assert sure.shape == (exits, samples), f"exit policy {name!r}: sureness of shape {tuple(sure.shape)}"
    assert torch.isfinite(sure).all() and (sure >= low - 1e-5).all() and (sure <= high + 1e-5).all(), (
        f"exit policy {name!r}: sureness outside its range [{low}, {high}]"
    )
    changed = logits.clone()
    changed[-1] = torch.randn(samples, num_classes, generator=generator)
    assert torch.allclose(policy.sureness(changed)[:-1], sure[:-1]), f"exit policy {name!r}: sureness is not causal"
    outputs = policy.outputs(logits)
    assert outputs.shape == logits.shape, f"exit policy {name!r}: outputs of shape {tuple(outputs.shape)}"
    assert torch.allclose(policy.outputs(changed)[:-1], outputs[:-1]), f"exit policy {name!r}: outputs are not causal"
    never = policy.decide(logits, [math.inf] * (exits - 1))
    assert (never.exit == exits - 1).all(), f"exit policy {name!r}: thresholds of inf still let samples exit early"
    always = policy.decide(logits, [low] * (exits - 1))
    assert (always.exit == 0).all(), f"exit policy {name!r}: thresholds at the range's low end kept samples in"
