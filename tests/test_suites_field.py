"""The field's grids as suites: cells, the authors' recipes, the published number beside each cell,
and the --epochs / --train-size overrides of a CPU smoke run. Nothing here trains a ResNet."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from locallearn import data
from locallearn.bench.anchors import anchors_for
from locallearn.bench.main import build_parser, command_line
from locallearn.bench.suites import SUITES
from locallearn.experiment import RunSpec, make_trainer, training_subset

# InfoPro-Pytorch comand.sh, CIFAR-10 ResNet-32: --ixx_1 --ixy_1 --ixx_2 --ixy_2 per K
COMAND_SH_RESNET32 = {2: (5, 1, 0, 0), 4: (6, 0, 1, 2), 8: (5, 0, 0, 2), 16: (5, 0.05, 0.2, 0.5)}
# InfoPro Table 2, CIFAR-10 ResNet-32 test error %: greedy / DGL / InfoPro at K = 2, 4, 8, 16
TABLE2 = {"greedy": (10.30, 16.07, 21.19, 24.59), "dgl": (8.69, 11.48, 14.17, 16.21), "infopro": (7.76, 8.58, 11.13, 12.75)}


def test_infopro_grid_is_table_2_with_the_authors_recipe():
    cells = SUITES["infopro-resnet32"].cells(seeds=1)
    by_label = {c.model_label: c.spec for c in cells}
    assert len(cells) == 1 + 3 * 4
    assert by_label["resnet32-K1"].rule == "e2e" and by_label["resnet32-K1"].model_kw == {"stages": 1}
    for spec in by_label.values():
        assert (spec.data, spec.optimizer, spec.nesterov, spec.lr, spec.batch_size, spec.epochs, spec.weight_decay,
                spec.lr_schedule) == ("cifar10", "sgd", True, 0.8, 1024, 160, 1e-4, "cosine")
    for k, lambdas in COMAND_SH_RESNET32.items():
        greedy, dgl, infopro = (by_label[f"resnet32-K{k}-{m}"] for m in ("greedy", "dgl", "infopro"))
        assert (greedy.rule, greedy.head, greedy.head_kw) == ("local", "conv", {"grid": 1})
        assert (dgl.rule, dgl.head) == ("local", "dgl")
        assert infopro.rule == "infopro" and infopro.head == "infopro"
        kw = infopro.rule_kw
        assert (kw["lambda1"], kw["lambda2"], kw["lambda1_end"], kw["lambda2_end"]) == lambdas
        assert kw["supervision"] == "contrast"
        assert {s.model_kw["stages"] for s in (greedy, dgl, infopro)} == {k}


def test_every_infopro_cell_has_its_published_number_beside_it():
    for i, k in enumerate((2, 4, 8, 16)):
        for method, errors in TABLE2.items():
            rule = "infopro" if method == "infopro" else "local"
            (anchor,) = anchors_for("cifar10", "resnet32", rule, f"resnet32-K{k}-{method}")
            assert anchor.accuracy == pytest.approx(100 - errors[i])
    (e2e,) = anchors_for("cifar10", "resnet32", "e2e", "resnet32-K1")
    assert e2e.accuracy == pytest.approx(100 - 7.37)
    assert not anchors_for("cifar10", "resnet32", "local", "resnet32-K3-dgl")  # no published cell, no anchor


def test_localloss_vgg_grid_is_the_papers_cifar10_rows():
    cells = SUITES["localloss-vgg"].cells(seeds=1)
    rows = {(c.model_label, c.spec.rule): c.spec for c in cells}
    assert set(rows) == {("vgg8b", r) for r in ("e2e", "local", "sim", "predsim")} | {("vgg11b-x3", "predsim")}
    vgg8 = rows[("vgg8b", "predsim")]
    assert (vgg8.optimizer, vgg8.lr, vgg8.batch_size, vgg8.epochs, vgg8.lr_schedule) == ("adam", 5e-4, 128, 400, "steps")
    assert vgg8.model_kw == {"dropout": 0.2}
    big = rows[("vgg11b-x3", "predsim")]
    assert big.model_kw["width"] == 3 and big.lr == 3e-4 and big.augment == "cutout16"
    (anchor,) = anchors_for("cifar10", "vgg11b", "predsim", "vgg11b-x3")
    assert anchor.accuracy == pytest.approx(100 - 3.97)


def test_smoke_overrides_reach_every_cell_and_the_recorded_command():
    cells = SUITES["infopro-fashion"].cells(seeds=1, epochs=1, train_size=500)
    assert {c.spec.epochs for c in cells} == {1} and {c.spec.train_size for c in cells} == {500}
    full = SUITES["infopro-fashion"].cells(seeds=1, epochs=1)
    assert {c.key for c in cells}.isdisjoint(c.key for c in full)  # a subset run is another cell
    args = build_parser().parse_args(["infopro-fashion", "--epochs", "2", "--train-size", "5000", "--device", "cuda"])
    assert command_line("python -m benchmarks", args) == (
        "python -m benchmarks infopro-fashion --epochs 2 --train-size 5000 --threads 1 --device cuda"
    )


def test_train_size_keeps_the_first_training_images_and_the_other_splits():
    ds = data.load("synthetic")
    sub = training_subset(ds, 40)
    assert torch.equal(sub.x_train, ds.x_train[:40]) and torch.equal(sub.y_test, ds.y_test)
    with pytest.raises(ValueError, match="'train_size' parameter of RunSpec must be an int >= 1"):
        training_subset(ds, 0)
    trainer = make_trainer(RunSpec(data="synthetic", widths=(8,), epochs=1, train_size=40, progress=False), ds)
    assert len(trainer.data.x_train) == 40


def test_nesterov_reaches_the_sgd_optimisers():
    spec = RunSpec(data="synthetic", widths=(8, 8), epochs=1, optimizer="sgd", nesterov=True, progress=False)
    trainer = make_trainer(spec)
    assert all(opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9 for opt in trainer.optimizers)
    off = make_trainer(dataclasses.replace(spec, nesterov=False))
    assert not any(opt.param_groups[0]["nesterov"] for opt in off.optimizers)
