"""One optimiser and one LR scheduler per stage: by name (``TrainConfig``), or your own.

Your own optimiser is a factory ``params -> Optimizer`` (called once per stage with the
stage's trainable parameters) or one ready ``Optimizer`` (or ``None``) per stage, built over
that stage's parameters after ``locallearn.prepare(net, rule)`` (a rule may add parameters).
Your own LR schedule is a factory ``optimizer -> LRScheduler``, stepped after every epoch in
which the stage trained (``interval="epoch"``) or after every update of the stage
(``interval="batch"``, e.g. a warm-up or one-cycle schedule). ``TrainConfig``'s ``optimizer``,
``lr``, ``weight_decay``, ``momentum``, ``nesterov`` and ``lr_schedule`` then do not apply; the results
record the optimiser's class and hyper-parameters (``describe``) instead.

Example:
    >>> import torch
    >>> import locallearn as ll
    >>> net = ll.build_mlp((4,), (8, 8), 3)
    >>> opts = make_optimizers(net, lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.5), ll.TrainConfig())
    >>> [type(o).__name__ for o in opts], describe_optimizer(opts)["defaults"]["lr"]
    (['SGD', 'SGD'], 0.1)
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Protocol, Sequence, Union

import torch

from locallearn.net import LocalNet



class NamedSettings(Protocol):
    """What the named optimisers and schedules read (``TrainConfig`` has these fields); this module
    knows no Trainer."""

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    nesterov: bool
    lr_schedule: str
    epochs: int

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
#: Named optimisers run with torch's fused kernel (``fused=True``; float parameters on CPU or CUDA): the
#: same algorithm, its element-wise steps done in one pass instead of one pass per operation.
FUSED = ("adam", "adamw")
LR_INTERVALS = ("epoch", "batch")

OptimizerFactory = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]
OptimizerSpec = Union[OptimizerFactory, Sequence[Union[torch.optim.Optimizer, None]], None]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def _trainable(stage: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in stage.parameters() if p.requires_grad]


def make_optimizers(net: LocalNet, spec: OptimizerSpec, config: NamedSettings) -> list[torch.optim.Optimizer | None]:
    """One optimiser per stage (``None`` for a stage with nothing to train): ``config``'s when ``spec`` is None."""
    if spec is None:
        return [_named_optimizer(_trainable(stage), config) for stage in net.stages]
    if isinstance(spec, torch.optim.Optimizer) or isinstance(spec, str):
        raise ValueError(
            f"optimizer= takes a factory params -> Optimizer or one Optimizer (or None) per stage; got one "
            f"{type(spec).__name__}. For a named optimiser use TrainConfig(optimizer=...)."
        )
    if callable(spec):
        out = []
        for k, stage in enumerate(net.stages):
            params = _trainable(stage)
            optimizer = spec(params) if params else None
            if params and not isinstance(optimizer, torch.optim.Optimizer):
                raise ValueError(f"The optimizer factory returned {type(optimizer).__name__} for stage {k + 1}; "
                                 "expected a torch.optim.Optimizer over the parameters it was given.")
            out.append(optimizer)
        return out
    optimizers = list(spec)
    if len(optimizers) != len(net.stages):
        raise ValueError(f"optimizer= has {len(optimizers)} optimisers for a net of {len(net.stages)} stages; "
                         "expected one per stage (None for a stage with nothing to train).")
    for k, (stage, optimizer) in enumerate(zip(net.stages, optimizers)):
        _check_owns(k, stage, optimizer)
    return optimizers


def _check_owns(k: int, stage: torch.nn.Module, optimizer: Any) -> None:
    wanted = {id(p) for p in _trainable(stage)}
    if optimizer is None:
        if wanted:
            raise ValueError(f"Stage {k + 1} has parameters to train but its optimizer is None; give it one.")
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer= entry {k + 1} is a {type(optimizer).__name__}; expected a torch.optim.Optimizer or None.")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if held != wanted:
        missing, foreign = len(wanted - held), len(held - wanted)
        raise ValueError(
            f"The optimizer of stage {k + 1} must hold exactly that stage's trainable parameters: {missing} of them are "
            f"missing and {foreign} belong elsewhere. Build it after locallearn.prepare(net, rule) (a rule may add "
            "parameters), or pass a factory params -> Optimizer."
        )


def _named_optimizer(params: list[torch.nn.Parameter], config: NamedSettings) -> torch.optim.Optimizer | None:
    if not params:
        return None
    extra = {"momentum": config.momentum, "nesterov": config.nesterov} if config.optimizer == "sgd" else {}
    if config.optimizer in FUSED and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        extra["fused"] = True  # the same update in one pass per parameter: ~6x less optimiser time on a CPU
    return OPTIMIZERS[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay, **extra)


def make_lr_schedulers(
    optimizers: Sequence[torch.optim.Optimizer | None], spec: SchedulerFactory | None, config: NamedSettings
) -> list[Any]:
    """One LR scheduler per stage (``None`` where there is no optimiser or no schedule)."""
    if spec is not None and not callable(spec):
        raise ValueError(f"lr_scheduler= takes a factory optimizer -> LRScheduler; got {type(spec).__name__}.")
    factory = spec or (lambda optimizer: _named_scheduler(optimizer, config))
    return [None if optimizer is None else factory(optimizer) for optimizer in optimizers]


def _named_scheduler(optimizer: torch.optim.Optimizer, config: NamedSettings) -> Any:
    if config.lr_schedule == "none":
        return None
    epochs = config.epochs
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    fractions = (0.5, 0.75) if config.lr_schedule == "step" else (0.5, 0.75, 0.875, 0.94)  # steps: local-loss
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(f * epochs + 1e-9) for f in fractions], gamma=0.25)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """The entries a results file can hold: numbers, strings, booleans, None, and tuples of numbers."""
    def plain(v: Any) -> bool:
        return v is None or isinstance(v, (str, bool, numbers.Number)) or (
            isinstance(v, (tuple, list)) and all(isinstance(x, numbers.Number) for x in v))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if not k.startswith("_") and plain(v)}


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def describe_optimizer(optimizers: Sequence[torch.optim.Optimizer | None]) -> dict[str, Any]:
    """The class and hyper-parameters of a stage's own optimiser (the first stage that has one), for the results."""
    first = next((o for o in optimizers if o is not None), None)
    return {} if first is None else {"class": _class_name(first), "defaults": _plain(first.defaults)}


def describe_scheduler(schedulers: Sequence[Any], interval: str) -> dict[str, Any]:
    """The class and hyper-parameters of a stage's own LR scheduler, for the results."""
    first = next((s for s in schedulers if s is not None), None)
    if first is None:
        return {"interval": interval}
    state = {k: v for k, v in first.state_dict().items() if k not in ("last_epoch", "base_lrs", "_step_count")}
    return {"class": _class_name(first), "interval": interval, "settings": _plain(state)}
