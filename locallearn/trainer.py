"""The training loop: epochs, one optimiser per stage, evaluation of every exit, callbacks,
checkpoints and a results record. It knows nothing of any rule's or schedule's insides.

Example:
    >>> from locallearn import data, build_mlp, Trainer, TrainConfig
    >>> ds = data.load("synthetic")
    >>> net = build_mlp(ds.input_shape, (32, 32), ds.num_classes)
    >>> result = Trainer(net, ds, rule="local", config=TrainConfig(epochs=2, progress=False)).fit()
    >>> len(result.history), len(result.history[-1]["test_accuracy"])
    (2, 2)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

import locallearn
from locallearn import io
from locallearn._params import check_choice, check_number
from locallearn.data import Dataset
from locallearn.net import LocalNet
from locallearn.rules import RULES, LocalRule
from locallearn.schedules import SCHEDULES, Schedule, TrainState

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (the rule's and schedule's own live in their objects)."""

    epochs: int = 5  # per stage for schedules that train one stage at a time
    batch_size: int = 64
    optimizer: str = "adam"  # adam | adamw | sgd (one optimiser per stage)
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    lr_schedule: str = "none"  # none | cosine | step (x0.25 at 50 % and 75 % of a stage's epochs)
    seed: int = 0  # shuffling and dropout; build the net after seed_everything(seed) for its init
    eval_every: int = 1  # evaluate every exit on val and test every N epochs (0: only at the end)
    checkpoint_path: str | None = None  # saved atomically after every epoch when set
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        check_number(self.epochs, name="epochs", owner=owner, low=1, integer=True)
        check_number(self.batch_size, name="batch_size", owner=owner, low=1, integer=True)
        check_choice(self.optimizer, name="optimizer", owner=owner, choices=OPTIMIZERS)
        check_number(self.lr, name="lr", owner=owner, low=0.0, low_inclusive=False)
        check_number(self.weight_decay, name="weight_decay", owner=owner, low=0.0)
        check_choice(self.lr_schedule, name="lr_schedule", owner=owner, choices=("none", "cosine", "step"))
        check_number(self.eval_every, name="eval_every", owner=owner, low=0, integer=True)


class Callback:
    """Override any of these events; each receives the trainer."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: "Trainer") -> None: ...


@dataclass
class RunResult:
    """Per-epoch history of a run plus everything needed to reproduce it."""

    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def final(self, split: str = "test") -> list[float]:
        """Accuracy of every exit after the last evaluated epoch."""
        evaluated = [r for r in self.history if f"{split}_accuracy" in r]
        return evaluated[-1][f"{split}_accuracy"] if evaluated else []

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "history": self.history, "version": locallearn.__version__, "machine": io.machine()}

    def save(self, path: str | Path) -> None:
        io.write_json(path, self.to_dict())


def seed_everything(seed: int) -> None:
    """Seed torch (and Python's ``random``) so that building a net and training repeat exactly."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train a LocalNet with one rule and one schedule.

    ``rule`` and ``schedule`` are registered names or instances.
    """

    def __init__(
        self,
        net: LocalNet,
        data: Dataset,
        *,
        rule: str | LocalRule = "local",
        schedule: str | Schedule = "simultaneous",
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.config = config or TrainConfig()
        self.rule = RULES.create(rule)
        self.schedule = SCHEDULES.create(schedule)
        self.schedule.check(self.rule)
        self.data = data
        self.callbacks = list(callbacks)
        self.net = net.to(self.config.device)
        self.rule.setup(self.net)
        self.optimizers = [self._optimizer(stage) for stage in self.net.stages]
        self.total_epochs = self.schedule.total_epochs(num_stages=len(self.net.stages), epochs=self.config.epochs)
        self.lr_schedulers = [self._lr_scheduler(opt) for opt in self.optimizers]
        self.epoch = 0
        self.result = RunResult(config=self.describe())
        # each trainer keeps its own random stream (dropout...), so trainers advancing in turns
        # give the same results as trainers run one after the other
        self._rng_state = torch.Generator().manual_seed(self.config.seed).get_state()

    def describe(self) -> dict[str, Any]:
        """The run's full configuration, as written to results files and checkpoints."""
        return {
            "rule": {"name": self.rule.name, **self.rule.get_params()},
            "schedule": {"name": self.schedule.name, **self.schedule.get_params()},
            "train": dataclasses.asdict(self.config),
            "data": self.data.name,
            "net": {"stages": len(self.net.stages), "parameters": sum(p.numel() for p in self.net.parameters())},
        }

    def _optimizer(self, stage: torch.nn.Module) -> torch.optim.Optimizer | None:
        params = [p for p in stage.parameters() if p.requires_grad]
        if not params:
            return None
        c = self.config
        extra = {"momentum": c.momentum} if c.optimizer == "sgd" else {}
        return OPTIMIZERS[c.optimizer](params, lr=c.lr, weight_decay=c.weight_decay, **extra)

    def _lr_scheduler(self, optimizer: torch.optim.Optimizer | None) -> Any:
        if optimizer is None or self.config.lr_schedule == "none":
            return None
        epochs = self.config.epochs
        if self.config.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [epochs // 2, (3 * epochs) // 4], gamma=0.25)

    @torch.inference_mode()
    def evaluate(self, split: str, batch_size: int = 1024) -> list[float]:
        """Accuracy of every exit on ``split`` ("train", "val" or "test")."""
        x, y = self.data.split(split)
        was_training = self.net.training
        self.net.eval()
        correct = torch.zeros(len(self.net.stages))
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(self.config.device)
            yb = y[start : start + batch_size].to(self.config.device)
            for k, logits in enumerate(self.net(xb)):
                correct[k] += (logits.argmax(1) == yb).sum().item()
        self.net.train(was_training)
        return (correct / max(len(x), 1)).tolist()

    def fit(self, epochs: int | None = None) -> RunResult:
        """Train until ``total_epochs`` (continuing after a ``load_checkpoint``), or only
        ``epochs`` more epochs: several trainers can then advance in turns, so that a timing
        comparison sees the same machine conditions for every run."""
        stop = self.total_epochs if epochs is None else min(self.total_epochs, self.epoch + epochs)
        device = self.config.device
        state = TrainState(
            net=self.net,
            rule=self.rule,
            optimizers=self.optimizers,
            x_train=self.data.x_train.to(device),
            y_train=self.data.y_train.to(device),
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            epochs=self.config.epochs,
        )
        for cb in self.callbacks:
            cb.on_fit_start(self)
        bar = tqdm(total=self.total_epochs, initial=self.epoch, disable=not self.config.progress, desc=self.rule.name, leave=False)
        self.net.train()
        torch.set_rng_state(self._rng_state)
        while self.epoch < stop:
            state.epoch, state.stats = self.epoch, {}
            start = time.perf_counter()
            trained = self.schedule.train_epoch(state)
            record: dict[str, Any] = {"epoch": self.epoch, "epoch_time_s": time.perf_counter() - start}
            record.update(state.stats, stages_trained=trained)
            for k in trained:
                if self.lr_schedulers[k] is not None:
                    self.lr_schedulers[k].step()
            self.epoch += 1
            self._rng_state = torch.get_rng_state()
            every = self.config.eval_every
            if self.epoch == self.total_epochs or (every and self.epoch % every == 0):
                record["val_accuracy"] = self.evaluate("val")
                record["test_accuracy"] = self.evaluate("test")
                bar.set_postfix(loss=f"{record.get('train_loss', [float('nan')])[-1]:.3f}", val=f"{record['val_accuracy'][-1]:.3f}")
            self.result.history.append(record)
            if self.config.checkpoint_path:
                self.save_checkpoint(self.config.checkpoint_path)
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
            bar.update(1)
        bar.close()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.result

    def save_checkpoint(self, path: str | Path) -> None:
        """Everything needed to resume exactly: weights, optimiser and LR states, RNG, history."""
        io.save_checkpoint(
            path,
            {
                "format": 1,
                "version": locallearn.__version__,
                "config": self.result.config,
                "epoch": self.epoch,
                "net": self.net.state_dict(),
                "optimizers": [None if o is None else o.state_dict() for o in self.optimizers],
                "lr_schedulers": [None if s is None else s.state_dict() for s in self.lr_schedulers],
                "torch_rng": self._rng_state,
                "history": self.result.history,
            },
        )

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by ``save_checkpoint``; ``fit`` then continues from it."""
        payload = io.load_checkpoint(path)
        if payload.get("format") != 1:
            raise ValueError(f"Checkpoint {path} is not a locallearn training checkpoint (format 1).")
        saved, mine = payload["config"], self.result.config
        for key in ("rule", "schedule", "net"):
            if saved[key] != mine[key]:
                raise ValueError(f"Checkpoint {path} was made with {key} {saved[key]}, this trainer has {mine[key]}.")
        self.net.load_state_dict(payload["net"])
        for opt, s in zip(self.optimizers, payload["optimizers"]):
            if opt is not None:
                opt.load_state_dict(s)
        for sched, s in zip(self.lr_schedulers, payload["lr_schedulers"]):
            if sched is not None:
                sched.load_state_dict(s)
        self._rng_state = payload["torch_rng"]
        self.epoch = payload["epoch"]
        self.result.history = list(payload["history"])


def train(
    net: LocalNet,
    data: Dataset,
    *,
    rule: str | LocalRule = "local",
    schedule: str | Schedule = "simultaneous",
    callbacks: Sequence[Callback] = (),
    **config: Any,
) -> RunResult:
    """Functional twin of ``Trainer(...).fit()``; keyword arguments fill a ``TrainConfig``.

    Example:
        >>> from locallearn import data, build_mlp, train
        >>> ds = data.load("synthetic")
        >>> result = train(build_mlp(ds.input_shape, (16,), ds.num_classes), ds, epochs=1, progress=False)
        >>> len(result.final("test"))
        1
    """
    return Trainer(net, data, rule=rule, schedule=schedule, config=TrainConfig(**config), callbacks=callbacks).fit()
