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
import hashlib
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

import locallearn
from locallearn import distributed, io, plugins
from locallearn._params import check_choice, check_number
from locallearn.callbacks import BatchEnd, Callback
from locallearn.data import Dataset, augment
from locallearn.data.fingerprint import fingerprint
from locallearn.data.batches import LoaderBatches, TensorBatches, as_batches, iterate_quietly
from locallearn.device import resolve_device
from locallearn.divergence import warn_if_diverged
from locallearn.engine import _per_position, prepare
from locallearn.net import LocalNet
from locallearn.optim import LR_INTERVALS, OPTIMIZERS, OptimizerSpec, SchedulerFactory, describe_optimizer, describe_scheduler
from locallearn.optim import make_lr_schedulers, make_optimizers
from locallearn.resume import RESUME_LOG, check_resume
from locallearn.rules import RULES, LocalRule
from locallearn.schedules import SCHEDULES, Schedule, TrainState

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]

#: What a training checkpoint holds, and the type of each entry (checked before anything is loaded).
CHECKPOINT_ENTRIES = {
    "format": int, "config": dict, "epoch": int, "net": dict, "optimizers": list, "lr_schedulers": list,
    "torch_rng": torch.Tensor, "history": list,
}


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (the rule's and schedule's own live in their objects).

    The defaults (batch 32, Adam, lr 1e-3, 5 epochs) are this package's, for quick runs, not any one
    paper's: the local-loss recipe is batch 128, Adam lr 5e-4 (the ``paper`` benchmark suite), DGL's
    CIFAR buffer runs SGD lr 0.1 with momentum 0.9 and batch 128 (pass them to follow).
    """

    # Each field's ``help`` is its documentation and its command-line help (``locallearn.commands.fields``).
    epochs: int = field(default=5, metadata={"help": "epochs (per stage for schedules that train one stage at a time)"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    optimizer: str = field(default="adam", metadata={
        "help": "adam, adamw or sgd (one optimiser per stage; adam and adamw fused, see optim.FUSED)"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay"})
    momentum: float = field(default=0.9, metadata={"help": "sgd only: momentum"})
    nesterov: bool = field(default=False, metadata={"help": "sgd only: Nesterov momentum (InfoPro's recipe)"})
    lr_schedule: str = field(default="none", metadata={
        "help": "none, cosine, step (x0.25 at 50 and 75 % of a stage's epochs) or steps (also at 87.5 and 94 %)"})
    seed: int = field(default=0, metadata={
        "help": "shuffling and dropout; the net is built after seed_everything(seed) for its initialisation"})
    eval_every: int = field(default=1, metadata={"help": "evaluate every exit on val and test every N epochs (0: only at the end)"})
    checkpoint_path: str | None = field(default=None, metadata={
        "help": "checkpoint path, written atomically after every epoch", "flag": "--checkpoint"})
    augment: str = field(default="none", metadata={
        "help": "train-time batch augmentation of image data: none, or items such as crop2,flip"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, cuda:N or auto (cuda when available)"})
    amp: bool = field(default=False, metadata={"help": "mixed precision: float16 with loss scaling on cuda, bfloat16 on cpu"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile each stage's block (slow to start; refused by a rule or schedule that cannot, e.g. dfa)"})
    progress: bool = field(default=True, metadata={"help": "a progress bar, shown only when the output is a terminal"})

    def __post_init__(self) -> None:
        owner = type(self).__name__  # RunSpec, which extends this class, names itself
        check_number(self.epochs, name="epochs", owner=owner, low=1, integer=True)
        check_number(self.batch_size, name="batch_size", owner=owner, low=1, integer=True)
        check_choice(self.optimizer, name="optimizer", owner=owner, choices=OPTIMIZERS)
        check_number(self.lr, name="lr", owner=owner, low=0.0, low_inclusive=False)
        check_number(self.weight_decay, name="weight_decay", owner=owner, low=0.0)
        check_choice(self.lr_schedule, name="lr_schedule", owner=owner, choices=("none", "cosine", "step", "steps"))
        check_number(self.eval_every, name="eval_every", owner=owner, low=0, integer=True)
        check_number(self.momentum, name="momentum", owner=owner, low=0.0)
        augment.parse(self.augment)  # an unknown augmentation fails here, before any training
        check_choice(self.amp, name="amp", owner=owner, choices=(False, True))
        check_choice(self.nesterov, name="nesterov", owner=owner, choices=(False, True))
        check_choice(self.compile, name="compile", owner=owner, choices=(False, True))


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


def _forward_of(module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    return type(module).forward(module, *args, **kwargs)


_COMPILED_FORWARD = None  # one torch.compile'd function for every block: the module is its argument


def compile_blocks(net: LocalNet, rule: LocalRule, schedule: Schedule) -> None:
    """``torch.compile`` every stage's block in place, after the rule's setup: its ``forward`` becomes a
    compiled function bound to the block (the parameters and state-dict keys stay as they are, and a
    deep copy is bound to the copy). ``nn.Module.compile`` is not used: in torch 2.13 it compiles
    nothing (dynamo skips ``Module._call_impl``). A clear error if the rule or the schedule cannot run
    compiled blocks (``LocalRule.compile_refusal``)."""
    global _COMPILED_FORWARD
    if rule.compile_refusal:
        raise ValueError(f"Rule {rule.name!r} cannot train compiled blocks: {rule.compile_refusal}. Train it without compile.")
    if schedule.owns_process_group:
        raise ValueError(f"The {schedule.name!r} schedule runs its stages in worker processes that build their own blocks; "
                         "train it without compile.")
    if _COMPILED_FORWARD is None:
        _COMPILED_FORWARD = torch.compile(_forward_of)
    for stage in net.stages:
        stage.block.forward = types.MethodType(_COMPILED_FORWARD, stage.block)


def _check_progress(path: str | Path, payload: dict[str, Any], total_epochs: int) -> None:
    """A checkpoint's epoch, history and random state must be what ``save_checkpoint`` writes (a file edited and
    re-checksummed could hold anything): one line naming the entry, never a failure later inside ``fit``."""
    epoch, history = payload["epoch"], payload["history"]
    if not 0 <= epoch <= total_epochs:
        raise ValueError(f"Checkpoint {path} says {epoch} epochs were trained, outside 0..{total_epochs} for this run.")
    if len(history) != epoch or not all(isinstance(r, dict) and r.get("epoch") == k + 1 for k, r in enumerate(history)):
        raise ValueError(f"Checkpoint {path} has a history that does not match its {epoch} trained epochs "
                         "(one record per epoch, numbered from 1); it was edited after it was written.")
    try:
        torch.Generator().set_state(payload["torch_rng"])
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"Checkpoint {path} holds a random-number state torch cannot restore "
                         f"({payload['torch_rng'].dtype}, {tuple(payload['torch_rng'].shape)}); it was edited after it was written.") from None


def _check_eval_labels(split: str, y: torch.Tensor) -> None:
    """Evaluation labels must be 1-D integer class indices (their range is checked once per split, in ``evaluate``)."""
    if y.dim() != 1 or y.is_floating_point() or y.is_complex():
        raise ValueError(f"The {split} labels have shape {tuple(y.shape)} and dtype {y.dtype}; expected a 1-D tensor of "
                         "integer class indices" + (" (flatten them with y.view(-1))." if y.dim() == 2 and y.shape[1] == 1 else "."))


def seed_everything(seed: int) -> None:
    """Seed torch (and Python's ``random``) so that building a net and training repeat exactly."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train a LocalNet with one rule and one schedule.

    ``rule`` and ``schedule`` are registered names or instances. ``data`` is a
    ``locallearn.data.Dataset`` (in-memory splits; ``config.augment`` applies to its
    training split) or any iterable of ``(x, y)`` training batches such as a
    ``DataLoader``; ``val_data`` / ``test_data`` (iterables of batches) then give the
    splits to evaluate, and a split left out is not evaluated. A loader's sampler with
    ``set_epoch`` (``locallearn.data.SeededSampler``, ``DistributedSampler``) is told the
    epoch, so a seeded loader repeats its order on resume.

    ``optimizer`` and ``lr_scheduler`` take your own optimiser and LR schedule in place of
    ``config``'s names (``locallearn.optim``): a factory ``params -> Optimizer`` or one
    optimiser per stage, and a factory ``optimizer -> LRScheduler`` stepped every epoch
    (``lr_interval="epoch"``) or every update of its stage (``"batch"``). ``callbacks`` get the
    events of ``locallearn.callbacks``; their ``state_dict`` is saved in checkpoints.
    """

    def __init__(
        self,
        net: LocalNet,
        data: Dataset | Batches,
        *,
        rule: str | LocalRule = "local",
        schedule: str | Schedule = "simultaneous",
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        val_data: Batches | None = None,
        test_data: Batches | None = None,
        optimizer: OptimizerSpec = None,
        lr_scheduler: SchedulerFactory | None = None,
        lr_interval: str = "epoch",
    ) -> None:
        self.config = config or TrainConfig()
        self.lr_interval = check_choice(lr_interval, name="lr_interval", owner="Trainer", choices=LR_INTERVALS)
        self.device = resolve_device(self.config.device)
        self.rule = RULES.create(rule)
        self.schedule = SCHEDULES.create(schedule)
        self.schedule.check(self.rule)
        if lr_interval == "batch" and not self.schedule.batch_events:
            raise ValueError(f"lr_interval='batch' needs the updates in this process; the {self.schedule.name!r} schedule "
                             "runs them in worker processes. Use lr_interval='epoch'.")
        parallel = distributed.wanted(self.schedule)  # under torchrun: data-parallel (locallearn.distributed)
        if parallel:
            self.device = distributed.process_device(self.device)
        self.data = data
        self.train_source = self._train_source(data)
        self.eval_data: dict[str, Dataset | Batches | None] = {
            "val": val_data if val_data is not None or not isinstance(data, Dataset) else data,
            "test": test_data if test_data is not None or not isinstance(data, Dataset) else data,
        }
        self.callbacks = list(callbacks)
        self.net = net.to(self.device)
        prepare(self.net, self.rule)
        if self.config.compile:
            compile_blocks(self.net, self.rule, self.schedule)
        self.data_parallel = distributed.start(self.net, self.train_source, self.device) if parallel else None
        self.custom_optimizer, self.custom_lr_scheduler = optimizer is not None, lr_scheduler is not None
        self.optimizers = make_optimizers(self.net, optimizer, self.config)
        self.total_epochs = self.schedule.total_epochs(num_stages=len(self.net.stages), epochs=self.config.epochs)
        self.lr_schedulers = make_lr_schedulers(self.optimizers, lr_scheduler, self.config)
        amp_on_cuda = self.config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if amp_on_cuda else None
        self.autocast_dtype = (torch.float16 if amp_on_cuda else torch.bfloat16) if self.config.amp else None
        self.epoch = 0
        self.step = 0  # updates done (train_step calls), across epochs
        self.result = RunResult(config=self.describe())
        # each trainer keeps its own random stream (dropout...), so trainers advancing in turns
        # give the same results as trainers run one after the other
        self._rng_state = torch.Generator().manual_seed(self.config.seed).get_state()

    def _train_source(self, data: Dataset | Batches) -> TensorBatches | LoaderBatches:
        transform = augment.parse(self.config.augment)
        if isinstance(data, Dataset):
            if transform is not None:
                transform.check(data.input_shape)
            x = data.x_train.pin_memory() if self.device.type == "cuda" else data.x_train
            return TensorBatches(
                x, data.y_train, batch_size=self.config.batch_size, seed=self.config.seed, transform=transform, device=self.device
            )
        if transform is not None:
            raise ValueError(
                f"augment={self.config.augment!r} applies to in-memory datasets; with a DataLoader, augment in the "
                "loader or call a locallearn.data.augment transform on each batch in your own loop."
            )
        return as_batches(data, device=self.device)

    def describe(self) -> dict[str, Any]:
        """The run's full configuration, as written to results files and checkpoints."""
        data = self.data.name if isinstance(self.data, Dataset) else type(self.data).__name__
        train = {**dataclasses.asdict(self.config), "resolved_device": str(self.device)}
        if self.custom_optimizer:  # the config's names do not apply: record what runs instead
            for key in ("lr", "weight_decay", "momentum", "nesterov"):
                del train[key]
            train["optimizer"] = {"custom": True, **describe_optimizer(self.optimizers)}
        if self.custom_lr_scheduler:
            train["lr_schedule"] = {"custom": True, **describe_scheduler(self.lr_schedulers, self.lr_interval)}
        return {
            "rule": {"name": self.rule.name, **self.rule.get_params()},
            "schedule": {"name": self.schedule.name, **self.schedule.get_params()},
            "train": train,
            "data": data,
            "data_source": self.train_source.describe(),
            # what the training split was (a content hash): a resume on other data is refused
            "data_fingerprint": fingerprint(self.data) if isinstance(self.data, Dataset) else None,
            "net": {
                "stages": len(self.net.stages),
                "parameters": sum(p.numel() for p in self.net.parameters()),
                "architecture": hashlib.sha256(repr(self.net).encode()).hexdigest()[:16],  # layers, sizes, activations
            },
            "data_parallel": None if self.data_parallel is None else self.data_parallel.describe(),
            **({"plugins": outside} if (outside := plugins.provenance()) else {}),  # outside code the run loaded
        }

    def _batch_end(self, stages: Sequence[int], losses: Sequence[Any], size: int) -> None:
        """After every update (``TrainState.on_batch``): per-update LR steps, then ``on_batch_end``."""
        self.step += 1
        if self.lr_interval == "batch":
            for k in stages:
                if self.lr_schedulers[k] is not None:
                    self.lr_schedulers[k].step()
        if self.callbacks:
            batch = BatchEnd(step=self.step, epoch=self.epoch + 1, stages=tuple(k + 1 for k in stages), losses=losses, size=size)
            self._emit("on_batch_end", batch)

    def _emit(self, event: str, *args: Any) -> None:
        """Call ``event`` on every callback that has it (any object with some of the events is a callback)."""
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if method is not None:
                method(self, *args)

    def _eval_batches(self, split: str, batch_size: int = 1024) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if split not in ("train", "val", "test"):
            raise ValueError(f"Unknown split {split!r}; expected 'train', 'val' or 'test'.")
        source = self.data if split == "train" else self.eval_data[split]
        if source is None:
            raise ValueError(f"No {split} data: pass {split}_data= to the Trainer to evaluate the {split} split.")
        if isinstance(source, Dataset):
            x, y = source.split(split)
            for start in range(0, len(x), batch_size):
                yield x[start : start + batch_size].to(self.device), y[start : start + batch_size].to(self.device)
        else:
            for xb, yb in iterate_quietly(source):  # a Dataset's splits were checked when made; a loader's here
                if xb.is_floating_point() and not bool(torch.isfinite(xb).all()):
                    raise ValueError(f"The {split} data holds non-finite values (NaN or inf); expected finite inputs.")
                yield xb.to(self.device), yb.to(self.device)

    def split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All of ``split`` as two CPU tensors (a loader's batches concatenated)."""
        xs, ys = zip(*((x.cpu(), y.cpu()) for x, y in self._eval_batches(split)))
        return torch.cat(xs), torch.cat(ys)

    @torch.inference_mode()
    def evaluate(self, split: str, batch_size: int = 1024) -> list[float]:
        """Accuracy of every exit on ``split`` ("train", "val" or "test"); ``[]`` for an empty split."""
        was_training = self.net.training
        self.net.eval()
        correct = torch.zeros(len(self.net.stages), dtype=torch.long, device=self.device)  # counted on the device
        low = high = torch.zeros((), dtype=torch.long, device=self.device)  # label range, read back with the counts
        seen, classes = 0, None
        for xb, yb in self._eval_batches(split, batch_size):
            outputs = self.net(xb)
            if not _per_position(xb, yb):  # a language model's (B, T) labels are its own
                _check_eval_labels(split, yb)
                classes = outputs[-1].shape[-1]
                low, high = torch.minimum(low, yb.min()), torch.maximum(high, yb.max())
            correct += torch.stack([(logits.argmax(1) == yb).sum() for logits in outputs])
            seen += len(yb)
        self.net.train(was_training)
        if not seen:  # an empty split (a recipe with val_size=0, a loader of no batches): no accuracies
            return []
        *counts, low, high = torch.cat([correct, low[None], high[None]]).tolist()  # the one read back
        if classes is not None and (low < 0 or high >= classes):
            raise ValueError(f"Label {low if low < 0 else high} in the {split} data is outside the exits' class range "
                             f"[0, {classes - 1}]; expected labels 0..num_classes-1.")
        return [c / seen for c in counts]

    def _evaluated_splits(self) -> list[str]:
        """The splits evaluated after an epoch: those given, less an empty validation split (``val_size=0``)."""
        def given(split: str) -> bool:
            source = self.eval_data[split]
            return source is not None and not (isinstance(source, Dataset) and len(source.split(split)[1]) == 0)
        return [split for split in ("val", "test") if given(split)]

    def fit(self, epochs: int | None = None) -> RunResult:
        """Train until ``total_epochs`` (continuing after a ``load_checkpoint``), or only
        ``epochs`` more epochs: several trainers can then advance in turns, so that a timing
        comparison sees the same machine conditions for every run."""
        stop = self.total_epochs if epochs is None else min(self.total_epochs, self.epoch + epochs)
        state = TrainState(
            net=self.net,
            rule=self.rule,
            optimizers=self.optimizers,
            source=self.train_source,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            epochs=self.config.epochs,
            scaler=self.scaler,
            autocast_dtype=self.autocast_dtype,
            data_parallel=self.data_parallel,
            on_batch=self._batch_end if self.schedule.batch_events else None,
        )
        if not self.schedule.batch_events and any(
                getattr(type(cb), "on_batch_end", Callback.on_batch_end) is not Callback.on_batch_end for cb in self.callbacks):
            warnings.warn(f"The {self.schedule.name!r} schedule runs its updates in worker processes, so on_batch_end is "
                          "not called; the epoch's losses reach on_epoch_end.", stacklevel=2)
        self._emit("on_fit_start")
        # disable=None: tqdm shows the bar only when its output is a terminal (a log file gets no bar)
        bar = tqdm(total=self.total_epochs, initial=self.epoch, disable=None if self.config.progress else True,
                   desc=self.rule.name, leave=False)
        self.net.train()
        torch.set_rng_state(self._rng_state)
        while self.epoch < stop:
            state.epoch, state.stats = self.epoch, {}
            start = time.perf_counter()
            trained = self.schedule.train_epoch(state)
            # epochs and stages numbered from 1, as every output: "epoch" is this epoch's number (= epochs done)
            record: dict[str, Any] = {"epoch": self.epoch + 1, "epoch_time_s": time.perf_counter() - start}
            record.update(state.stats, stages_trained=[k + 1 for k in trained])
            if self.data_parallel is not None:
                record.update(self.data_parallel.end_epoch())
            for k in trained if self.lr_interval == "epoch" else ():
                if self.lr_schedulers[k] is not None:
                    self.lr_schedulers[k].step()
            self.epoch += 1
            self._rng_state = torch.get_rng_state()
            every = self.config.eval_every
            if self.epoch == self.total_epochs or (every and self.epoch % every == 0):
                for split in self._evaluated_splits():
                    record[f"{split}_accuracy"] = self.evaluate(split)
                    self._emit("on_evaluate", split, record[f"{split}_accuracy"])
                bar.set_postfix(loss=f"{record.get('train_loss', [float('nan')])[-1]:.3f}")
            self.result.history.append(record)
            if self.config.checkpoint_path and (self.data_parallel is None or self.data_parallel.rank == 0):
                self.save_checkpoint(self.config.checkpoint_path)
            self._emit("on_epoch_end", record)
            bar.update(1)
        bar.close()
        if self.epoch == self.total_epochs:  # a finished run that diverged or learned nothing says so
            warn_if_diverged(self.result.history, getattr(self.data, "num_classes", None))
        self._emit("on_fit_end")
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
                "scaler": None if self.scaler is None else self.scaler.state_dict(),
                "history": self.result.history,
                "step": self.step,
                "callbacks": [{"class": type(cb).__qualname__, "state": getattr(cb, "state_dict", dict)()}
                              for cb in self.callbacks],
            },
        )

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by ``save_checkpoint``; ``fit`` then continues from it.

        The checkpoint's config must match this trainer's, field by field (``locallearn.resume``):
        a change is refused in one line naming the field. The changes a resume may make (more
        epochs, another device or checkpoint path...) are recorded in ``result.config["resumed"]``."""
        payload = io.load_checkpoint(path, required=CHECKPOINT_ENTRIES)
        if payload["format"] != 1:
            raise ValueError(f"Checkpoint {path} is not a locallearn training checkpoint (format 1).")
        epochs_may_grow = (self.config.lr_schedule == "none" and not self.custom_lr_scheduler
                           and self.total_epochs == self.config.epochs and not self.schedule.plans_by_epoch_count)
        changes = check_resume(payload["config"], self.result.config, path=path, epochs_may_grow=epochs_may_grow)
        _check_progress(path, payload, self.total_epochs)
        try:
            self.net.load_state_dict(payload["net"])
            for opt, s in zip(self.optimizers, payload["optimizers"], strict=True):
                if opt is not None:
                    opt.load_state_dict(s)
            for sched, s in zip(self.lr_schedulers, payload["lr_schedulers"], strict=True):
                if sched is not None:
                    sched.load_state_dict(s)
            if self.scaler is not None and payload.get("scaler") is not None:
                self.scaler.load_state_dict(payload["scaler"])
            self._load_callbacks(payload.get("callbacks", []), path)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ValueError(f"Checkpoint {path} does not fit this run: {type(error).__name__}: {reason}") from None
        self._rng_state = payload["torch_rng"]
        self.epoch = payload["epoch"]
        self.step = payload.get("step", 0)
        self.result.history = list(payload["history"])
        self.result.config[RESUME_LOG] = [*payload["config"].get(RESUME_LOG, []), {"epoch": self.epoch, "changes": changes}]


    def _load_callbacks(self, saved: list[dict[str, Any]], path: str | Path) -> None:
        """Hand each callback its state from the checkpoint; the callbacks must be the same, in order."""
        mine = [type(cb).__qualname__ for cb in self.callbacks]
        theirs = [entry["class"] for entry in saved]
        if any(entry["state"] for entry in saved) and mine != theirs:
            raise ValueError(f"Checkpoint {path} holds the state of callbacks {theirs}; this trainer has {mine}. "
                             "Resume with the same callbacks, in the same order.")
        for cb, entry in zip(self.callbacks, saved):
            if hasattr(cb, "load_state_dict"):
                cb.load_state_dict(entry["state"])


def train(
    net: LocalNet,
    data: Dataset | Batches,
    *,
    rule: str | LocalRule = "local",
    schedule: str | Schedule = "simultaneous",
    callbacks: Sequence[Callback] = (),
    val_data: Batches | None = None,
    test_data: Batches | None = None,
    optimizer: OptimizerSpec = None,
    lr_scheduler: SchedulerFactory | None = None,
    lr_interval: str = "epoch",
    **config: Any,
) -> RunResult:
    """Functional twin of ``Trainer(...).fit()``; keyword arguments fill a ``TrainConfig``.
    ``data`` is a Dataset or an iterable of ``(x, y)`` batches (see ``Trainer``).

    Example:
        >>> from locallearn import data, build_mlp, train
        >>> ds = data.load("synthetic")
        >>> result = train(build_mlp(ds.input_shape, (16,), ds.num_classes), ds, epochs=1, progress=False)
        >>> len(result.final("test"))
        1
    """
    return Trainer(
        net, data, rule=rule, schedule=schedule, config=TrainConfig(**config), callbacks=callbacks,
        val_data=val_data, test_data=test_data, optimizer=optimizer, lr_scheduler=lr_scheduler, lr_interval=lr_interval,
    ).fit()
