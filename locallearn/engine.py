"""The per-batch core: ``backward(net, x, y, rule)`` in place of ``loss.backward()``.

It runs the forward pass the way the rule needs (each block's input detached
under a local rule, one graph through every stage under a global one),
backpropagates each stage's loss (under a local rule as soon as it is computed,
so only one stage's graph is alive at a time), and returns every stage's loss
and the exit logits. The optimiser, LR schedule, gradient clipping, mixed
precision and any distributed wrapper stay the caller's. ``train_step``, every
schedule, the Trainer and the benchmarks are built on ``run_stages`` below, so
there is one implementation of "how a rule trains a stage".

A plain PyTorch loop with a rule:

    >>> import torch
    >>> import locallearn as ll
    >>> ds = ll.data.load("synthetic")
    >>> net = ll.build_mlp(ds.input_shape, (32, 32), ds.num_classes)
    >>> rule = ll.prepare(net, "predsim")  # before the optimiser: setup may add parameters
    >>> opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    >>> for x, y in zip(ds.x_train.split(64), ds.y_train.split(64)):
    ...     opt.zero_grad()
    ...     step = ll.backward(net, x, y, rule)
    ...     opt.step()
    >>> len(step.losses), step.logits[-1].shape
    (2, torch.Size([36, 4]))
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

import torch
from torch import nn

from locallearn.heads_cascade import head_logits
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput, refuse_mixing


class GradSync(Protocol):
    """Told by ``run_stages`` when stages' gradients are complete on this process, so it can average
    them across processes while the next stage computes (``locallearn.distributed.GradientAverager``)."""

    def stage_done(self, stages: list[int], batch_size: int) -> None:
        """The backward of ``stages`` is done on a batch of ``batch_size`` samples; start averaging."""

    def wait(self) -> None:
        """Return once every gradient handed to ``stage_done`` holds its average over the processes."""


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


@dataclass
class StepResult:
    """What one ``backward`` call returns: each stage's loss, exit logits and block output
    (``outputs``, detached), in the order of the stages run, and the batch the stages trained on
    (``labels`` and network ``inputs`` after the rule's ``transform_batch``; ``inputs`` is ``None``
    when the stages were not given it). A schedule hands a stage's output on to the next from here.

    A loss is a detached 0-d tensor on the batch's device (``math.nan``, a float, where the rule
    gave none): nothing is read back to the host during the step, so a GPU's queue of kernels never
    stalls. ``float(loss)`` or ``f"{loss:.3f}"`` reads one when you want it; ``read_losses`` reads
    many steps' losses at once and checks them for NaN and inf.
    """

    losses: list[torch.Tensor | float]
    logits: list[torch.Tensor]
    outputs: list[torch.Tensor] = field(default_factory=list)
    labels: torch.Tensor | None = None
    inputs: torch.Tensor | None = None


def read_losses(
    rows: Sequence[Sequence[torch.Tensor | float]],
    *,
    first_stages: Sequence[int] | None = None,
    context: str = "",
    rule: str = "",
) -> list[list[float]]:
    """The stage losses of many steps (rows of ``StepResult.losses``) as floats, read from the device in one go.

    Raises ``NonFiniteLossError`` at the first loss a rule gave that is NaN or infinite, naming its
    stage and step (both numbered from 1; ``first_stages[i]`` is the index of row ``i``'s first
    stage, 0 by default; ``context``, e.g. " at epoch 3", and ``rule`` complete the message). The
    NaN that stands for "no loss" is passed through.

    Example:
        >>> import torch
        >>> read_losses([[torch.tensor(0.5), float("nan")], [torch.tensor(0.25), float("nan")]])
        [[0.5, nan], [0.25, nan]]
        >>> read_losses([[torch.tensor(0.5)], [torch.tensor(float("inf"))]], context=" at epoch 1")
        Traceback (most recent call last):
        ...
        locallearn.engine.NonFiniteLossError: The loss of stage 1 became inf at epoch 1, step 2. Lower the learning rate, check the inputs for NaN, or add gradient clipping.
    """
    given = [v for row in rows for v in row if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([v.float() for v in given]).tolist() if given else [])  # the one host read
    out = [[next(values) if isinstance(v, torch.Tensor) else float(v) for v in row] for row in rows]
    for step, (row, read) in enumerate(zip(rows, out), start=1):
        first = 0 if first_stages is None else first_stages[step - 1]
        for stage, (v, value) in enumerate(zip(row, read), start=first + 1):
            if isinstance(v, torch.Tensor) and not math.isfinite(value):
                by = f" (rule {rule!r})" if rule else ""
                raise NonFiniteLossError(
                    f"The loss of stage {stage} became {value}{context}, step {step}{by}. "
                    "Lower the learning rate, check the inputs for NaN, or add gradient clipping."
                )
    return out


def _resolve(net: LocalNet, rule: str | LocalRule) -> LocalRule:
    """The rule instance: a name gives the same instance on every call on this net (kept in
    ``net.named_rules``), so its setup runs once and its state persists."""
    if isinstance(rule, str):
        if rule not in net.named_rules:
            net.named_rules[rule] = RULES.create(rule)
        return net.named_rules[rule]
    return RULES.create(rule)


def _check_net(net: nn.Module) -> None:
    if not isinstance(net, LocalNet):
        raise TypeError(
            f"locallearn needs a LocalNet (stages of block + head); got a {type(net).__name__}. "
            "Cut your own model into stages with locallearn.wrap(model, split=[...])."
        )


def prepare(net: LocalNet, rule: str | LocalRule) -> LocalRule:
    """Run ``rule``'s ``setup`` on ``net`` once (later calls do nothing; another rule of the same name is
    only bound to the net, see ``LocalRule.setup``) and return the rule. What was prepared is recorded on the net
    (``net.prepared_rules``).

    Call it before building the optimiser: a rule's setup may add parameters (predsim's
    similarity projection) or convert layers (feedback alignment), and an optimiser built
    earlier would never see them.

    Example:
        >>> import locallearn as ll
        >>> net = ll.build_mlp((4,), (8,), 3)
        >>> before = sum(p.numel() for p in net.parameters())
        >>> rule = ll.prepare(net, "predsim")
        >>> sum(p.numel() for p in net.parameters()) > before, ll.prepare(net, "predsim") is rule
        (True, True)
    """
    _check_net(net)
    rule = _resolve(net, rule)
    if not any(r is rule for r in net.prepared_rules):
        refuse_mixing(net.prepared_rules, rule)
        rule.setup(net)  # records the rule in net.prepared_rules (LocalRule.setup runs once per net)
        if not any(r is rule for r in net.prepared_rules):  # a rule without a setup of its own
            net.prepared_rules.append(rule)
    return rule


def _trainable(net: nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


def check_optimizers(net: LocalNet, optimizers: torch.optim.Optimizer | Iterable[torch.optim.Optimizer | None]) -> None:
    """Raise a clear error if a trainable parameter of ``net`` is held by none of ``optimizers``."""
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = [optimizers]
    held = {id(p) for opt in optimizers if opt is not None for group in opt.param_groups for p in group["params"]}
    names = {id(p): name for name, p in net.named_parameters()}
    missing = [names[id(p)] for p in _trainable(net) if id(p) not in held]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} trainable parameters of the net are in no optimiser ({listed}); they would never "
            "be trained. Build the optimiser after locallearn.prepare(net, rule), from net.parameters()."
        )


def _per_position(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``y`` holds one label per input token: ``(B, T)`` integer labels beside ``(B, T)`` token ids
    (a language model's next tokens). Every exit's logits are then ``(B, T, classes)``."""
    return y.dim() == 2 and x.shape == y.shape and not x.is_floating_point()


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse, in one line, a batch the losses cannot take: not tensors, labels that are not 1-D int64
    class indices (cross-entropy takes no other integer type), no samples."""
    for name, value in (("inputs x", x), ("labels y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"The {name} must be a torch.Tensor; got a {type(value).__name__} "
                            f"(convert it with torch.as_tensor(...)).")
    if _per_position(x, y):
        return
    if y.dim() != 1 or y.dtype != torch.int64:
        hint = ("Flatten them with y.view(-1)." if y.dim() == 2 and y.shape[1] == 1 else
                "Convert them with y.long() (cross-entropy takes int64 labels only)."
                if y.dim() == 1 and not y.is_floating_point() and not y.is_complex() else "")
        raise ValueError(
            f"Labels must be a 1-D tensor of integer class indices; got shape {tuple(y.shape)} and dtype {y.dtype}. {hint}".rstrip()
        )
    if len(x) != len(y):
        raise ValueError(f"The batch has {len(x)} inputs but {len(y)} labels; expected one label per input.")
    if len(y) == 0:
        raise ValueError("The batch is empty (0 samples); expected at least one sample per batch.")


def _check_rule_labels(rule: LocalRule, per_position: bool) -> None:
    if per_position and not rule.sequence_labels:
        known = ", ".join(sorted(n for n in RULES.names() if RULES.get(n).sequence_labels))
        raise ValueError(
            f"Rule {rule.name!r} does not take per-position labels (a (B, T) label per token, as a language model's "
            f"next tokens); rules that do: {known}."
        )


def _stage_loss(rule: LocalRule, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
    try:
        return rule.stage_loss(out, y)
    except (IndexError, RuntimeError) as error:
        if "out of bounds" not in str(error):
            raise
        raise ValueError(
            f"Stage {out.index + 1}'s exit gives {out.logits.shape[-1]} scores per sample, but the labels reach "
            f"{int(y.max())}; build the net with num_classes equal to the data's number of classes."
        ) from error


def _local_backward(loss: torch.Tensor, rule: LocalRule, stage: int) -> None:
    try:
        loss.backward()
    except RuntimeError as error:
        if "second time" not in str(error):
            raise
        raise RuntimeError(
            f"Rule {rule.name!r} is not local: it declares detach_inputs=True, but the loss of stage {stage + 1} "
            "reaches into an earlier stage's graph. A local rule's loss may depend only on its own stage."
        ) from error


def run_stages(
    net: LocalNet,
    rule: LocalRule,
    h: torch.Tensor,
    y: torch.Tensor,
    stages: Sequence[int],
    *,
    x: torch.Tensor | None = None,
    scaler: torch.amp.GradScaler | None = None,
    autocast_dtype: torch.dtype | None = None,
    grad_sync: GradSync | None = None,
) -> StepResult:
    """Forward ``stages`` (consecutive indices) from their first input ``h`` and backpropagate
    each stage's loss as ``rule`` says. Gradients accumulate into ``.grad``; nothing is stepped.

    ``x`` is the network input the batch came from (``h`` itself when the stages start at 0),
    handed to the rule in ``StageOutput.x``. With ``scaler`` each loss is scaled before its
    backward; with ``autocast_dtype`` the forward runs under ``torch.autocast``. Nothing is read
    back to the host: the losses stay on the device (check them with ``read_losses``). ``grad_sync``
    hears of each stage's gradients as soon as its backward is done (under a global rule: all the
    stages, after the one backward) and is waited for before returning (data-parallel training).
    """
    stages = list(stages)
    _check_batch(h, y)  # labels of shape (n, 1) from a loader: one line, not a cross-entropy trace
    per_position = _per_position(h, y)
    _check_rule_labels(rule, per_position)
    if stages and stages[0] == 0:
        h, y = rule.transform_batch(h, y)
        x = h
    target = y.reshape(-1) if per_position else y  # (B*T,) beside logits (B*T, classes)
    last = len(net.stages) - 1
    losses: list[torch.Tensor | float] = []
    logits: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []
    autocast = (
        torch.autocast(h.device.type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    )
    for k in stages:
        stage = net.stages[k]
        h_in = h.detach() if rule.detach_inputs else h
        with autocast:
            h_out = rule.block_forward(stage.block, h_in)
            features = h_out.detach() if rule.probe_exit(k == last) else h_out  # a probe head: one pass, no graph into the block
            exit_logits = head_logits(stage.head, features, logits[-1] if logits else None)
            flat = exit_logits.flatten(0, 1) if per_position else exit_logits
            out = StageOutput(index=k, is_last=k == last, stage=stage, h_in=h_in, h_out=h_out, logits=flat, x=x)
            loss = _stage_loss(rule, out, target)
        logits.append(exit_logits.detach())
        outputs.append(h_out.detach())
        losses.append(math.nan if loss is None else loss.detach())
        if loss is not None:
            if scaler is not None:
                loss = scaler.scale(loss)
            if rule.detach_inputs:
                _local_backward(loss, rule, k)
                if grad_sync is not None:
                    grad_sync.stage_done([k], len(y))
            else:
                pending.append(loss)
        h = h_out
    if pending:
        (torch.stack(pending).sum() if len(pending) > 1 else pending[0]).backward()
        if grad_sync is not None:
            grad_sync.stage_done(stages, len(y))
    if grad_sync is not None:
        grad_sync.wait()
    return StepResult(losses=losses, logits=logits, outputs=outputs, labels=y, inputs=x)


def backward(
    net: LocalNet,
    x: torch.Tensor,
    y: torch.Tensor,
    rule: str | LocalRule,
    *,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer | None] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    autocast_dtype: torch.dtype | None = None,
    grad_sync: GradSync | None = None,
) -> StepResult:
    """Train-side forward and backward of one batch under ``rule``: use it in place of ``loss.backward()``.

    ``rule`` is a registered name (the same name gives the same instance on this net) or
    an instance. The first call runs the rule's ``setup`` (see ``prepare``); if that adds
    parameters, which an optimiser built before could not hold, it raises a clear error,
    unless ``optimizer`` is given and holds every trainable parameter. With a ``GradScaler``
    the losses are scaled (step with ``scaler.step(opt)``); with ``autocast_dtype`` (e.g.
    ``torch.bfloat16``) each stage's forward and loss run under ``torch.autocast`` and the
    backward outside it, as the Trainer's ``amp`` does. Under torchrun,
    ``grad_sync=locallearn.distributed.DataParallel(net).grad_sync`` averages each stage's
    gradients across the processes as soon as its backward is done (see ``locallearn.distributed``).

    Example:
        >>> import torch
        >>> import locallearn as ll
        >>> net = ll.build_mlp((4,), (8, 8), 3)
        >>> step = ll.backward(net, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), "local")
        >>> all(p.grad is not None for p in net.stages[0].parameters()), len(step.losses)
        (True, 2)
    """
    _check_net(net)
    _check_batch(x, y)
    net.note_input(x)  # a net built without its input shape learns it here, before a setup asks for stage shapes
    resolved = _resolve(net, rule)
    _check_rule_labels(resolved, _per_position(x, y))  # before its setup, which may not fit such a net
    if any(r is resolved for r in net.prepared_rules):
        if optimizer is not None:  # prepared earlier: the optimiser must still hold every trainable parameter
            check_optimizers(net, optimizer)
    else:
        before = {id(p) for p in _trainable(net)}
        prepare(net, resolved)
        if optimizer is not None:
            check_optimizers(net, optimizer)
        else:
            added = [name for name, p in net.named_parameters() if p.requires_grad and id(p) not in before]
            if added:
                raise ValueError(
                    f"Rule {resolved.name!r} added {len(added)} trainable parameters to the net in its setup "
                    f"({', '.join(added[:3])}{', ...' if len(added) > 3 else ''}); an optimiser built before this "
                    "call does not hold them. Call locallearn.prepare(net, rule) before building the optimiser "
                    "(or pass optimizer= to this call to have it checked)."
                )
    return run_stages(
        net, resolved, x, y, range(len(net.stages)), x=x, scaler=scaler, autocast_dtype=autocast_dtype, grad_sync=grad_sync
    )
