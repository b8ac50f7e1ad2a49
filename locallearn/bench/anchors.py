"""Published numbers to print beside ours (from ../shared/ANCHORS.md), as test accuracy in percent.

Each anchor names the dataset, our model kind and our rule it is compared with,
its source, and how its setting differs from a cell of ours. The local-loss
paper's similarity-only loss (9.70 % error) has no exact counterpart among our
rules, so it is not listed.

Example:
    >>> [a.accuracy for a in anchors_for("fashion-mnist", "mlp", "e2e")]
    [91.63, 88.33]
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    data: str
    model: str  # our model kind it is compared with: mlp | cnn
    rule: str  # our rule it is compared with
    accuracy: float  # test accuracy, percent
    source: str  # short label, with the original metric when it was an error rate
    setting: str  # how it differs from our cells
    model_label: str | None = None  # only the suite cells of this model label (a grid's cell), any rule options


_LOCAL_LOSS = "Noekland & Eidnes 2019, MLP 3x1024"
_LOCAL_LOSS_SETTING = "200 epochs, jitter + flip augmentation, dropout, step decays"
_BIOTORCH = "BioTorch LeNet"
_BIOTORCH_SETTING = "LeNet (not our CNN); error on the model-selection split"

_INFOPRO = "Wang et al. 2021 (InfoPro), Table 2, CIFAR-10"
_INFOPRO_SETTING = "CIFAR-10, 160 epochs, batch 1024, 5 runs"
_VGG = "Noekland & Eidnes 2019, CIFAR-10"
_VGG_SETTING = "400 epochs, cutout only in the VGG11b x3 cutout row"


def _grid_anchors() -> tuple[Anchor, ...]:
    """InfoPro's Table 2 (ResNet-32 and -110) and the local-loss VGG CIFAR-10 numbers, one anchor per grid cell."""
    out = [Anchor("cifar10", "resnet32", "e2e", round(100 - 7.37, 2), f"{_INFOPRO}, ResNet-32 E2E (7.37 % err)",
                  _INFOPRO_SETTING, "resnet32-K1"),
           Anchor("cifar10", "resnet110", "e2e", round(100 - 6.50, 2), f"{_INFOPRO}, ResNet-110 E2E (6.50 % err)",
                  _INFOPRO_SETTING, "resnet110-K1")]
    table = {  # (depth, method): {K: test error %}
        (32, "greedy"): {2: 10.30, 4: 16.07, 8: 21.19, 16: 24.59},
        (32, "dgl"): {2: 8.69, 4: 11.48, 8: 14.17, 16: 16.21},
        (32, "infopro"): {2: 7.76, 4: 8.58, 8: 11.13, 16: 12.75},
        (110, "infopro"): {2: 6.42, 16: 9.90},
        (110, "dgl"): {16: 13.80},
    }
    for (depth, method), errors in table.items():
        rule = "infopro" if method == "infopro" else "local"
        for k, error in errors.items():
            out.append(Anchor("cifar10", f"resnet{depth}", rule, round(100 - error, 2),
                              f"{_INFOPRO}, ResNet-{depth} {method} K={k} ({error} % err)", _INFOPRO_SETTING,
                              f"resnet{depth}-K{k}-{method}"))
    for label, rule, error, name in (("vgg8b", "e2e", 5.99, "BP"), ("vgg8b", "local", 8.40, "pred"),
                                     ("vgg8b", "sim", 7.16, "sim"), ("vgg8b", "predsim", 5.58, "predsim"),
                                     ("vgg11b-x3", "predsim", 3.97, "predsim")):
        out.append(Anchor("cifar10", label.split("-")[0], rule, round(100 - error, 2),
                          f"{_VGG}, {label} {name} ({error} % err)", _VGG_SETTING, label))
    return tuple(out)


ANCHORS: tuple[Anchor, ...] = (
    Anchor("fashion-mnist", "mlp", "e2e", round(100 - 8.37, 2), f"{_LOCAL_LOSS}, global BP (8.37 % err)", _LOCAL_LOSS_SETTING),
    Anchor("fashion-mnist", "mlp", "local", round(100 - 8.60, 2), f"{_LOCAL_LOSS}, pred (8.60 % err)", _LOCAL_LOSS_SETTING),
    Anchor("fashion-mnist", "mlp", "predsim", round(100 - 8.54, 2), f"{_LOCAL_LOSS}, predsim (8.54 % err)", _LOCAL_LOSS_SETTING),
    Anchor("fashion-mnist", "mlp", "sim", round(100 - 9.70, 2), f"{_LOCAL_LOSS}, sim (9.70 % err)", _LOCAL_LOSS_SETTING),
    Anchor("fashion-mnist", "mlp", "e2e", 88.33, "zalando README, MLP 256-128-100", "smaller MLP, own training recipe"),
    Anchor("fashion-mnist", "cnn", "e2e", round(100 - 9.2, 2), f"{_BIOTORCH}, BP (9.2 % err)", _BIOTORCH_SETTING),
    Anchor("fashion-mnist", "cnn", "fa", round(100 - 13.06, 2), f"{_BIOTORCH}, FA (13.06 % err)", _BIOTORCH_SETTING),
    Anchor("fashion-mnist", "cnn", "dfa", round(100 - 12.81, 2), f"{_BIOTORCH}, DFA (12.81 % err)", _BIOTORCH_SETTING),
    Anchor("fashion-mnist", "mlp", "forward-forward", round(100 - 1.36, 2), "Hinton 2022, supervised FF (1.36 % err)",
           "MNIST, not Fashion-MNIST; MLP 4x2000, 60 epochs; backprop on that net: about 1.4 % err"),
    *_grid_anchors(),
)

def anchors_for(data: str, model: str, rule: str, model_label: str | None = None) -> list[Anchor]:
    """The anchors comparable with our cell of ``rule`` on ``model`` (kind) and ``data`` (and, for an anchor
    of one grid cell, that cell's ``model_label``)."""
    return [a for a in ANCHORS if (a.data, a.model, a.rule) == (data, model, rule) and a.model_label in (None, model_label)]
