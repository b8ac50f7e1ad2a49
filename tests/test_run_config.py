"""One configuration: ``RunSpec`` embeds ``TrainConfig``, so every training field reaches a run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from locallearn import data
from locallearn.experiment import RunSpec, make_trainer
from locallearn.trainer import TrainConfig

# One value per TrainConfig field, each different from its default.
NOT_DEFAULT = {
    "epochs": 2, "batch_size": 16, "optimizer": "sgd", "lr": 0.05, "weight_decay": 1e-4, "momentum": 0.5,
    "nesterov": True, "lr_schedule": "cosine", "seed": 3, "eval_every": 0, "checkpoint_path": "ckpt.pt",
    "augment": "flip", "device": "auto", "amp": True, "compile": True, "progress": False,
}


def test_the_value_table_names_every_train_config_field_with_a_value_that_is_not_its_default():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(NOT_DEFAULT) == set(fields)  # a new TrainConfig field must be added here, and so is checked below
    assert all(NOT_DEFAULT[name] != f.default for name, f in fields.items())


def test_run_spec_is_the_train_config_plus_naming_fields():
    assert issubclass(RunSpec, TrainConfig)
    train = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [f.name for f in dataclasses.fields(RunSpec)][:len(train)] == train
    spec = RunSpec(**NOT_DEFAULT, rule="predsim")
    assert type(spec.train_config()) is TrainConfig
    assert dataclasses.asdict(spec.train_config()) == NOT_DEFAULT


def test_run_spec_checks_its_training_fields_as_train_config_does():
    with pytest.raises(ValueError, match="The 'lr' parameter of RunSpec must be a float > 0.0. Got -1 instead."):
        RunSpec(lr=-1)
    with pytest.raises(ValueError, match="The 'momentum' parameter of RunSpec must be a float >= 0.0. Got -0.5 instead."):
        RunSpec(momentum=-0.5)


def test_every_train_config_field_reaches_the_trainer_and_momentum_the_optimiser(tmp_path):
    values = {**NOT_DEFAULT, "checkpoint_path": str(tmp_path / "ckpt.pt")}
    trainer = make_trainer(RunSpec(data="digits", widths=(8, 8), **values))
    assert {name: getattr(trainer.config, name) for name in values} == values
    assert trainer.result.config["train"]["momentum"] == 0.5  # recorded with the results
    groups = [g for opt in trainer.optimizers if opt is not None for g in opt.param_groups]
    assert groups and {(g["momentum"], g["nesterov"], g["weight_decay"]) for g in groups} == {(0.5, True, 1e-4)}
    assert isinstance(trainer.optimizers[0], torch.optim.SGD)


def test_model_kw_and_head_kw_reach_the_net():
    spec = RunSpec(data="synthetic", model="mlp", widths=(8, 6), model_kw={"batch_norm": True},
                   head="mlp", head_kw={"hidden": (5,)}, epochs=1, progress=False)
    trainer = make_trainer(spec)
    norms = [m for m in trainer.net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [8, 6]  # model_kw: batch_norm=True adds one per stage
    for stage in trainer.net.stages:
        linears = [m for m in stage.head.modules() if isinstance(m, torch.nn.Linear)]
        assert linears[0].out_features == 5 and linears[-1].out_features == data.load("synthetic").num_classes
    assert trainer.result.config["spec"]["model_kw"] == {"batch_norm": True}
    assert trainer.result.config["spec"]["head_kw"] == {"hidden": (5,)}
    plain = make_trainer(dataclasses.replace(spec, model_kw={}, head_kw={}, head=None))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.net.modules())
    assert all(len([m for m in s.head.modules() if isinstance(m, torch.nn.Linear)]) == 1 for s in plain.net.stages)


# --- the command line: one flag per field, generated (locallearn.commands.fields) ---

from locallearn.cli import build_parser  # noqa: E402
from locallearn.commands.common import spec_from_args  # noqa: E402

# What each command leaves out, and why: compare runs a grid (--rules, --seeds) and infoplane several seeds
# (its own --seed, the first of --seeds); neither writes one checkpoint.
LEFT_OUT = {"train": set(), "compare": {"rule", "seed", "checkpoint_path"}, "infoplane": {"seed", "checkpoint_path"}}

# Each RunSpec field as typed on the command line, with the value it must become; none is the default.
ON_THE_COMMAND_LINE = {
    "epochs": (["--epochs", "2"], 2), "batch_size": (["--batch-size", "16"], 16),
    "optimizer": (["--optimizer", "sgd"], "sgd"), "lr": (["--lr", "0.05"], 0.05),
    "weight_decay": (["--weight-decay", "1e-4"], 1e-4), "momentum": (["--momentum", "0.5"], 0.5),
    "nesterov": (["--nesterov"], True), "lr_schedule": (["--lr-schedule", "cosine"], "cosine"),
    "seed": (["--seed", "3"], 3), "eval_every": (["--eval-every", "0"], 0),
    "checkpoint_path": (["--checkpoint", "c.pt"], "c.pt"), "augment": (["--augment", "flip"], "flip"),
    "device": (["--device", "auto"], "auto"), "amp": (["--amp"], True), "compile": (["--compile"], True),
    "progress": (["--no-progress"], False), "data": (["--data", "synthetic"], "synthetic"),
    "data_dir": (["--data-dir", "somewhere"], "somewhere"), "train_size": (["--train-size", "200"], 200),
    "val_size": (["--val-size", "0"], 0), "eval_size": (["--eval-size", "50"], 50), "model": (["--model", "cnn"], "cnn"),
    "model_kw": (["--model-opt", "batch_norm=False"], {"batch_norm": False}), "widths": (["--widths", "8,4"], (8, 4)),
    "channels": (["--channels", "4,8"], (4, 8)), "activation": (["--activation", "tanh"], "tanh"),
    "dropout": (["--dropout", "0.1"], 0.1), "head": (["--head", "mlp"], "mlp"),
    "head_kw": (["--head-opt", "hidden=(5,)", "--head-opt", "x=a"], {"hidden": (5,), "x": "a"}),
    "rule": (["--rule", "predsim"], "predsim"), "rule_kw": (["--rule-opt", "beta=0.5"], {"beta": 0.5}),
    "schedule": (["--schedule", "sequential"], "sequential"),
    "schedule_kw": (["--schedule-opt", "cache=False"], {"cache": False}),
}


def _flags(command: str) -> dict[str, list[str]]:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return {a.dest: a.option_strings for a in sub._actions}


@pytest.mark.parametrize("command", sorted(LEFT_OUT))
def test_every_run_spec_field_has_a_flag_with_help(command):
    flags = _flags(command)
    for f in dataclasses.fields(RunSpec):
        if f.name not in LEFT_OUT[command]:
            assert f.name in flags, f"{command} has no flag for RunSpec.{f.name}"
            assert f.metadata["help"], f.name
    assert "--momentum" in flags["momentum"] and "--train-size" in flags["train_size"] and "--val-size" in flags["val_size"]


def test_every_field_typed_on_the_command_line_reaches_the_run_spec():
    assert set(ON_THE_COMMAND_LINE) == {f.name for f in dataclasses.fields(RunSpec)}
    argv = [word for words, _ in ON_THE_COMMAND_LINE.values() for word in words]
    spec = spec_from_args(build_parser().parse_args(["train", *argv]))
    assert {name: getattr(spec, name) for name in ON_THE_COMMAND_LINE} == {k: v for k, (_, v) in ON_THE_COMMAND_LINE.items()}
    defaults = spec_from_args(build_parser().parse_args(["train"]))
    assert defaults == RunSpec()  # no flag given: the dataclass's defaults, nothing else


def test_compare_and_infoplane_flags_fill_the_same_fields():
    argv = ["--momentum", "0.5", "--optimizer", "sgd", "--train-size", "100", "--val-size", "30", "--no-progress"]
    for command, extra in (("compare", []), ("infoplane", ["--out", "x"])):
        spec = spec_from_args(build_parser().parse_args([command, *argv, *extra]))
        assert (spec.momentum, spec.optimizer, spec.train_size, spec.val_size, spec.progress) == (0.5, "sgd", 100, 30, False)


def test_a_bad_value_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--widths", "8,x"])
    assert "expected comma-separated integers such as 256,256,256; got '8,x'" in capsys.readouterr().err
