"""The field's published grids as suites: InfoPro's ResNet table and the local-loss VGG table.

``infopro-resnet32`` / ``infopro-resnet110``: InfoPro's Table 2 (Wang et al., ICLR 2021) on
CIFAR-10: end-to-end (K = 1), greedy supervised (``local`` with the ``0c1f`` head), DGL-headed
``local`` and ``infopro`` at K = 2, 4, 8, 16, with the authors' recipe (train.py,
``training_configurations``, comand.sh): SGD, Nesterov momentum 0.9, weight decay 1e-4, batch
1024, lr 0.8, cosine schedule, 160 epochs, 4-pixel reflect-padded crop + flip; InfoPro's
``lambda`` pairs per K from comand.sh (``--ixx_1 --ixy_1 --ixx_2 --ixy_2``), contrastive
supervision (``local_loss_mode contrast``).

``localloss-vgg``: the local-loss CIFAR-10 rows (Nøkland & Eidnes 2019, run_experiments.sh):
VGG8b (dropout 0.2, lr 5e-4) under BP, pred, sim and predsim, and VGG11b x3 (dropout 0.3,
lr 3e-4) under predsim with cutout 16; Adam, batch 128, 400 epochs, step decays x0.25.

``infopro-fashion``: the same cells on Fashion-MNIST at K = 2 and 4 with ResNet-20 (the
cheapest of He et al.'s CIFAR nets: a 2-core CPU runs it), the authors' batch-128 recipe (lr 0.1, their setting for data other than CIFAR-10 / SVHN), for a
CPU run with ``--epochs`` and ``--train-size``.

Example:
    >>> from locallearn.bench.suites import SUITES
    >>> cells = SUITES["infopro-resnet32"].cells(seeds=1)
    >>> sorted({c.model_label for c in cells})[:3], len(cells)
    (['resnet32-K1', 'resnet32-K16-dgl', 'resnet32-K16-greedy'], 13)
    >>> {c.spec.rule_kw.get("lambda1") for c in cells if c.model_label == "resnet32-K4-infopro"}
    {6.0}
"""

from __future__ import annotations

from typing import Any

from locallearn.bench.suites import Suite, _add
from locallearn.experiment import RunSpec

# comand.sh, CIFAR-10: (ixx_1, ixy_1, ixx_2, ixy_2) = (lambda1, lambda2, lambda1_end, lambda2_end) per K
INFOPRO_LAMBDAS = {
    32: {2: (5, 1, 0, 0), 4: (6, 0, 1, 2), 8: (5, 0, 0, 2), 16: (5, 0.05, 0.2, 0.5)},
    110: {2: (5, 0.5, 0, 0), 4: (1, 0, 0, 1), 8: (5, 0, 0, 1), 16: (5, 0, 0.5, 1)},
}
METHOD_HEADS = {"greedy": ("conv", {"grid": 1}), "dgl": ("dgl", {}), "infopro": ("infopro", {})}


def _infopro_entry(lambdas: tuple[float, float, float, float]) -> str:
    names = ("lambda1", "lambda2", "lambda1_end", "lambda2_end")
    return "infopro:" + ":".join(f"{n}={float(v)}" for n, v in zip(names, lambdas)) + ":supervision=contrast"


def infopro_grid(depth: int, ks: tuple[int, ...]) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, ...]]]:
    """Model labels (with their RunSpec overrides) and each label's rule: E2E at K = 1, then per K
    greedy and DGL-headed ``local`` and ``infopro`` with the authors' lambdas (ResNet-32's for
    other depths)."""
    name = f"resnet{depth}"
    models: dict[str, dict[str, Any]] = {f"{name}-K1": {"model": name, "model_kw": {"stages": 1}}}
    rules = {f"{name}-K1": ("e2e",)}
    for k in ks:
        for method, (head, head_kw) in METHOD_HEADS.items():
            label = f"{name}-K{k}-{method}"
            models[label] = {"model": name, "model_kw": {"stages": k}, "head": head, "head_kw": head_kw}
            lambdas = INFOPRO_LAMBDAS.get(depth, INFOPRO_LAMBDAS[32])[k]
            rules[label] = (_infopro_entry(lambdas),) if method == "infopro" else ("local",)
    return models, rules


_INFOPRO_RECIPE = dict(optimizer="sgd", nesterov=True, weight_decay=1e-4, lr_schedule="cosine")
_INFOPRO_NOTES = (
    "Differs from the authors' code: the cosine schedule has no 10-epoch warm-up (theirs blends in from 0.01); "
    "the contrastive projection of our infopro rule is 0c2f (theirs 1c2f), and each exit is read out by its head "
    "trained on detached features; the input is mapped to [0, 1] by the batch's min and max for reconstruction.",
    "Greedy supervised = local with InfoPro's 0c1f head (pool + linear); DGL = local with locallearn's dgl head.",
)


def _infopro_suite(depth: int, ks: tuple[int, ...]) -> Suite:
    models, rules = infopro_grid(depth, ks)
    return Suite(
        name=f"infopro-resnet{depth}",
        description=(
            f"InfoPro's Table 2 grid, CIFAR-10 ResNet-{depth}: E2E and, at K = {', '.join(map(str, ks))}, greedy, "
            "DGL-headed local and InfoPro; the authors' recipe (SGD + Nesterov, cosine, 160 epochs, batch 1024, lr 0.8)"
        ),
        base=RunSpec(epochs=160, batch_size=1024, lr=0.8, augment="crop4reflect,flip", **_INFOPRO_RECIPE),
        datasets=("cifar10",),
        models=models,
        schedules={"simultaneous": ()},
        per_model=rules,
        seeds=1,
        notes=_INFOPRO_NOTES,
    )


_add(_infopro_suite(32, (2, 4, 8, 16)))
_add(_infopro_suite(110, (2, 4, 8, 16)))

_fashion_models, _fashion_rules = infopro_grid(20, (2, 4))
_add(
    Suite(
        name="infopro-fashion",
        description=(
            "InfoPro's grid on Fashion-MNIST (1 channel), ResNet-20 at K = 2 and 4: E2E, greedy and DGL-headed local, "
            "InfoPro; SGD + Nesterov, cosine, batch 128, lr 0.1 (the authors' recipe for data other than CIFAR-10 / SVHN)"
        ),
        base=RunSpec(epochs=3, batch_size=128, lr=0.1, **_INFOPRO_RECIPE),
        datasets=("fashion-mnist",),
        models=_fashion_models,
        schedules={"simultaneous": ()},
        per_model=_fashion_rules,
        seeds=3,
        notes=(*_INFOPRO_NOTES, "No augmentation; InfoPro's CIFAR-10 lambdas for ResNet-32; ResNet-20 is cut evenly "
               "(K = 2 ends module 1 after group 2 block 0; K = 4 after the first block of each group: even_cuts)."),
    )
)

_VGG_RECIPE = dict(epochs=400, batch_size=128, lr_schedule="steps")
_add(
    Suite(
        name="localloss-vgg",
        description=(
            "The local-loss CIFAR-10 VGG rows (Noekland & Eidnes 2019): VGG8b under BP (e2e), pred (local), sim and "
            "predsim; VGG11b x3 under predsim with cutout; Adam, batch 128, 400 epochs, step decays x0.25"
        ),
        base=RunSpec(lr=5e-4, **_VGG_RECIPE),
        datasets=("cifar10",),
        models={
            "vgg8b": {"model": "vgg8b", "model_kw": {"dropout": 0.2}},
            "vgg11b-x3": {"model": "vgg11b", "model_kw": {"width": 3, "dropout": 0.3, "activation": "leaky-relu"},
                          "lr": 3e-4, "augment": "cutout16"},
        },
        schedules={"simultaneous": ()},
        per_model={"vgg8b": ("e2e", "local", "sim", "predsim"), "vgg11b-x3": ("predsim",)},
        seeds=1,
        notes=(
            "Decays at 50 / 75 / 87.5 / 94 % of the epochs (the authors' 200 / 300 / 350 / 375 of 400). Their sim and "
            "predsim rows use leaky ReLU (VGG11b x3 here; VGG8b runs ReLU for every rule). predsim / sim project "
            "with locallearn's rules' defaults; the pred heads read at most 2048 pooled features (dim_in_decoder).",
        ),
    )
)
