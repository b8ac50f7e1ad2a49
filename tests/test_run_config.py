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
