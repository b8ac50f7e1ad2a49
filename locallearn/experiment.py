"""One run or a comparison of rules, from names: the layer under the CLI and the benchmarks.

Example:
    >>> from locallearn.experiment import RunSpec, run
    >>> result = run(RunSpec(data="synthetic", model="mlp", widths=(16, 16), epochs=1, progress=False))
    >>> len(result.final("test"))
    2
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Sequence

from locallearn import data as datasets
from locallearn._params import check_number
from locallearn import models
from locallearn.io import physical_memory
from locallearn.data import BatchData, Dataset
from locallearn.net import LocalNet
from locallearn.trainer import Callback, RunResult, TrainConfig, Trainer, seed_everything

@dataclass
class RunSpec(TrainConfig):
    """Everything that names one training run: the training configuration (every ``TrainConfig`` field,
    validated the same way) plus what it trains on and with: data, model, head, rule, schedule.

    Example:
        >>> spec = RunSpec(rule="predsim", optimizer="sgd", momentum=0.5)
        >>> spec.train_config().momentum, isinstance(spec, TrainConfig)
        (0.5, True)
    """

    data: str = field(default="digits", metadata={"help": "a registered dataset (locallearn datasets lists them)"})
    data_dir: str | None = field(default=None, metadata={
        "help": "the dataset's folder: IDX files (mnist, fashion-mnist), the unpacked archive (cifar10, cifar100, svhn, "
        "stl10) or a class-per-folder image tree (image-folder)"})
    train_size: int | None = field(default=None, metadata={
        "help": "train on the first N images of the training split only (default: all)"})
    val_size: int | None = field(default=None, metadata={
        "help": "training images held out for validation (default: the loader's; 0: none)"})
    eval_size: int | None = field(default=None, metadata={
        "help": "evaluate on the first N validation and N test images only (default: all)"})
    model: str = field(default="mlp", metadata={"help": "a registered model (locallearn models lists them)"})
    model_kw: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "a model hyper-parameter (locallearn models lists them), e.g. stages=4", "flag": "--model-opt"})
    widths: tuple[int, ...] = field(default=(256, 256, 256), metadata={"help": "mlp layer widths, one stage each"})
    channels: tuple[int, ...] = field(default=(32, 64, 64), metadata={"help": "cnn channels, one stage each"})
    activation: str = field(default="relu", metadata={"help": "mlp: relu, tanh, gelu or sigmoid"})
    dropout: float = field(default=0.0, metadata={"help": "mlp: dropout after each hidden layer"})
    head: str | None = field(default=None, metadata={
        "help": "a registered head (default: the model's own: linear for mlp, conv for cnn)"})
    head_kw: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "a head hyper-parameter, e.g. hidden=(128,) for the mlp head", "flag": "--head-opt"})
    rule: str = field(default="local", metadata={"help": "a registered rule (locallearn rules lists them)"})
    rule_kw: dict[str, Any] = field(default_factory=dict, metadata={"help": "a rule hyper-parameter", "flag": "--rule-opt"})
    schedule: str = field(default="simultaneous", metadata={"help": "a registered schedule"})
    schedule_kw: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "a schedule hyper-parameter, e.g. capacity=8 for decoupled", "flag": "--schedule-opt"})

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str) -> RunSpec:
        """The spec stored in ``values`` (e.g. a checkpoint's); an unknown field is one line naming ``source``."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{source} holds a run spec with unknown fields ({', '.join(unknown)}); was it written by another locallearn version?")
        return cls(**values)

    def train_config(self) -> TrainConfig:
        """The ``TrainConfig`` part of this spec (every one of its fields, ``momentum`` included)."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})


def model_family(spec: RunSpec) -> models.ModelFamily:
    """The model family a spec names, with its hyper-parameters (``widths`` and friends for
    ``mlp``, ``channels`` for ``cnn``, ``model_kw`` for every family)."""
    own = {
        "mlp": {"widths": spec.widths, "activation": spec.activation, "dropout": spec.dropout},
        "cnn": {"channels": spec.channels},
    }.get(spec.model, {})
    return models.create(spec.model, **{**own, "head": spec.head, "head_kw": spec.head_kw, **spec.model_kw})


def build_net(spec: RunSpec, ds: Dataset | BatchData) -> LocalNet:
    """The LocalNet a spec names, for the dataset's input shape."""
    return model_family(spec).build(ds.input_shape, ds.num_classes)


def training_subset(ds: Dataset | BatchData, train_size: int | None, eval_size: int | None = None) -> Dataset | BatchData:
    """``ds`` with only the first ``train_size`` images of its training split and the first ``eval_size``
    of its validation and test splits (``None``: all), for a smoke run on a CPU.

    The normalisation stays the full training split's.

    Example:
        >>> small = training_subset(datasets.load("synthetic"), 100, eval_size=50)
        >>> len(small.x_train), len(small.x_val), len(small.x_test)
        (100, 50, 50)
    """
    if train_size is None and eval_size is None:
        return ds
    if not isinstance(ds, Dataset):
        raise ValueError("train_size / eval_size need in-memory data (a Dataset); data given as loaders is used whole.")
    n = len(ds.x_train) if train_size is None else train_size
    check_number(n, name="train_size", owner="RunSpec", low=1, high=len(ds.x_train), integer=True)
    if eval_size is not None:
        check_number(eval_size, name="eval_size", owner="RunSpec", low=1, integer=True)
    m = slice(None, eval_size)
    return dataclasses.replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n], x_val=ds.x_val[m], y_val=ds.y_val[m],
                               x_test=ds.x_test[m], y_test=ds.y_test[m])


def data_options(spec: RunSpec) -> dict[str, Any]:
    """The loader options a spec names (``val_size`` when set)."""
    return {} if spec.val_size is None else {"val_size": spec.val_size}


#: Share of this machine's memory that a net's parameters, gradients and optimiser state may take.
MEMORY_SHARE = 0.5


def check_spec(spec: RunSpec, ds: Dataset | BatchData, *, label: str | None = None) -> None:
    """Refuse, in one line, a spec whose net cannot be built or would not fit in memory, before any training.

    The net is built on the ``meta`` device (shapes only, no memory); parameters, gradients and two
    optimiser moments (4 floats per parameter) must fit in ``MEMORY_SHARE`` of the machine's memory.

    Example:
        >>> ds = datasets.load("synthetic")
        >>> check_spec(RunSpec(widths=(10**9,)), ds, label="mlp:widths=(1000000000,)")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: mlp:widths=(1000000000,): the net has ... parameters (...
    """
    import torch

    name = label or f"{spec.model} run spec"
    shape = types.SimpleNamespace(input_shape=ds.input_shape, num_classes=ds.num_classes)  # read outside "meta"
    try:
        spec.train_config()  # epochs, lr, batch size...
        with torch.device("meta"):
            net = build_net(spec, shape)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: {error}") from None
    count = sum(p.numel() for p in net.parameters())
    need = 4 * 4 * count
    have = physical_memory()
    if need > MEMORY_SHARE * have:
        raise ValueError(f"{name}: the net has {count:.2g} parameters ({need / 2**30:.1f} GiB with gradients and the "
                         f"optimiser's state), more than half of this machine's {have / 2**30:.1f} GiB; use smaller layers.")


def make_trainer(spec: RunSpec, ds: Dataset | BatchData | None = None, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Seed, load the data (unless given: a ``Dataset`` or, for data as loaders, a ``BatchData``),
    build the net and its trainer."""
    ds = training_subset(ds or datasets.load(spec.data, data_dir=spec.data_dir, **data_options(spec)), spec.train_size, spec.eval_size)
    check_spec(spec, ds)
    seed_everything(spec.seed)
    net = build_net(spec, ds)
    from locallearn import rules, schedules

    splits = {"data": ds} if isinstance(ds, Dataset) else {"data": ds.train, "val_data": ds.val, "test_data": ds.test}
    trainer = Trainer(
        net,
        **splits,
        rule=rules.create(spec.rule, **spec.rule_kw),
        schedule=schedules.create(spec.schedule, **spec.schedule_kw),
        config=spec.train_config(),
        callbacks=callbacks,
    )
    trainer.result.config["spec"] = dataclasses.asdict(spec)
    trainer.result.config["data"] = ds.name
    if trainer.result.config.get("data_fingerprint") and spec.data_dir:
        trainer.result.config["data_fingerprint"]["data_dir"] = str(Path(spec.data_dir).resolve())
    return trainer


def run(spec: RunSpec, ds: Dataset | BatchData | None = None, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train one run and return its result."""
    return make_trainer(spec, ds, callbacks).fit()
