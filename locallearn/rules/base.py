"""The rule contract: what error signal does a stage learn from?

A rule sees one stage at a time, as a ``StageOutput``, and returns that stage's
loss (or ``None`` when the stage has nothing to learn). Its class attribute
``detach_inputs`` says whether the block's input is cut from the graph (a
*local* rule: no gradient crosses a stage boundary) or not (a *global*
reference such as end-to-end backprop). ``setup`` runs once before training
and may attach extra modules to ``stage.aux`` or freeze parameters (the rule then
declares ``changes_net``); a rule with a custom backward arranges it itself (see
``locallearn.feedback``). What else a rule needs from a schedule is declared in
flags too (``needs_input``, ``transforms_batch``), which ``Schedule.check`` reads.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from locallearn.net import Stage
    >>> from locallearn import rules
    >>> rule = rules.create("local")
    >>> stage = Stage(nn.Linear(4, 8), nn.Linear(8, 3))
    >>> x = torch.randn(5, 4)
    >>> h = stage.block(x)
    >>> out = StageOutput(index=0, is_last=True, stage=stage, h_in=x, h_out=h, logits=stage.head(h), x=x)
    >>> rule.stage_loss(out, torch.tensor([0, 1, 2, 0, 1])).ndim
    0
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from locallearn._params import get_params
from locallearn._registry import Registry
from locallearn.net import LocalNet, Stage


@dataclass
class StageOutput:
    """Everything a rule may look at for one stage in one step.

    ``x`` is the network input of the batch (after the rule's ``transform_batch``). The
    engine always sets it, except under schedules that cannot carry it (the pipeline's
    later workers); those refuse rules that declare ``needs_input``.
    """

    index: int
    is_last: bool
    stage: Stage
    h_in: torch.Tensor
    h_out: torch.Tensor
    logits: torch.Tensor
    x: torch.Tensor | None = None


class LocalRule:
    """Base class of every rule. Subclasses set ``detach_inputs`` and implement ``stage_loss``."""

    name: ClassVar[str]
    detach_inputs: ClassVar[bool] = True
    needs_input: ClassVar[bool] = False  # True: stage_loss reads StageOutput.x, the network input
    # True: takes per-position labels (B, T) beside (B, T) token ids (a language model); the engine then
    # hands it logits flattened to (B*T, classes) and labels to (B*T,).
    sequence_labels: ClassVar[bool] = False
    # Why the rule cannot train torch.compile'd blocks (TrainConfig.compile, --compile); None: it can
    compile_refusal: ClassVar[str | None] = None
    # True: setup changes the net (attaches modules, converts layers or heads, freezes parameters), so no
    # other rule may train the same net after it (locallearn.prepare refuses).
    changes_net: ClassVar[bool] = False
    # True: transform_batch makes the batch the stages train on (schedules must hand it to every stage).
    transforms_batch: ClassVar[bool] = False
    # False: cannot train a transformer's token blocks; setup refuses them in one line.
    token_blocks: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "setup" in cls.__dict__:
            cls.setup = _once_per_net(cls.__dict__["setup"])

    def setup(self, net: LocalNet) -> None:
        """Prepare ``net`` once before training (attach ``stage.aux`` modules, freeze heads...).

        Idempotent by construction: every subclass's ``setup`` runs once per net and rule name
        (see ``_once_per_net``); a second rule of the same name is only bound to the net."""

    def bind(self, net: LocalNet) -> None:
        """Take the per-instance state ``setup`` would have set from ``net``, which a rule of the same
        name has already prepared (the net's changes are there; default: nothing to take)."""

    def transform_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch the forward pass runs on (default: as given); e.g. Forward-Forward's positive
        and negative data. Called by the engine once per step, before the first stage."""
        return x, y

    def block_forward(self, block: torch.nn.Module, h_in: torch.Tensor) -> torch.Tensor:
        """The stage's block on its input, as the engine runs it (``e2e:checkpoint=true`` recomputes it
        in the backward pass instead of keeping its activations)."""
        return block(h_in)

    def probe_exit(self, is_last: bool) -> bool:
        """Whether the engine computes this exit's logits on the block output cut from the graph
        (``h_out.detach()``): the head then learns as a probe that cannot shape the block, and the
        rule's loss reads ``StageOutput.logits`` instead of running the head a second time (default:
        no, the logits are in the block's graph)."""
        return False

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The rule's hyper-parameters, for logging a run's full config."""
        return get_params(self)


RULES: Registry[LocalRule] = Registry("rule", group="locallearn.rules")


def refuse_mixing(prepared: list[LocalRule], rule: LocalRule) -> None:
    """One rule per net when a setup changed it: after ``dfa`` (feedback layers) or ``fa-heads`` (frozen
    heads), another rule would silently train with those changes."""
    other = next((r for r in prepared if r.name != rule.name and (r.changes_net or rule.changes_net)), None)
    if other is not None:
        changer = other if other.changes_net else rule
        raise ValueError(
            f"This net was prepared for rule {other.name!r}; rule {rule.name!r} cannot train it too, since "
            f"{changer.name!r}'s setup changes the net (its layers, heads or parameters). Build a fresh net for each rule."
        )


def _once_per_net(setup: Callable[[LocalRule, LocalNet], None]) -> Callable[[LocalRule, LocalNet], None]:
    """``setup`` run at most once per net and rule name: the net lists the rules prepared on it
    (``LocalNet.prepared_rules``, state of the net, so a deep copy of the net is prepared too); the
    same instance again does nothing, another of the same name (a second trainer, other
    hyper-parameters) is bound (``LocalRule.bind``: the net's modules stay, the rule takes its state
    from them), and a rule of another name runs ``setup`` unless ``refuse_mixing`` refuses it."""

    @functools.wraps(setup)
    def once(self: LocalRule, net: LocalNet) -> None:
        prepared = getattr(net, "prepared_rules", None)
        if prepared is None:  # not a LocalNet: nothing to record on
            setup(self, net)
            return
        if any(r is self for r in prepared):
            return
        if any(r.name == self.name for r in prepared):
            self.bind(net)
        else:
            refuse_mixing(prepared, self)
            setup(self, net)
        if not any(r is self for r in prepared):  # a subclass's setup may have called its parent's
            prepared.append(self)

    return once
