"""Suite definitions: a grid of rules x schedules x models x datasets x seeds.

A suite names its models (a label and the ``RunSpec`` fields that build it),
its datasets, and for each schedule the rules it runs (``None``: every rule
registered when the suite runs, so rules added later join without an edit).
Combinations a schedule refuses (``sequential`` with a global rule) are left
out of the grid.

Example:
    >>> suite = SUITES["quick"]
    >>> cells = suite.cells(seeds=1, epochs=1)
    >>> {c.spec.rule for c in cells} >= {"local", "e2e"}
    True
    >>> all(c.spec.data == "digits" for c in cells)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from locallearn import models, rules, schedules
from locallearn.compare import Entry
from locallearn.experiment import RunSpec, model_family

# RunSpec fields that do not change a cell's result; left out of its key.
_NOT_IN_KEY = ("progress", "checkpoint_path", "data_dir", "device")
# Fields added after results were committed: left out of the key while at their default.
_DEFAULT_NOT_IN_KEY = {"augment": "none", "amp": False, "nesterov": False, "momentum": 0.9, "train_size": None, "eval_size": None, "val_size": None}


@dataclass(frozen=True)
class Cell:
    """One run of a suite: the model's label and the full ``RunSpec``."""

    model_label: str
    spec: RunSpec

    @property
    def key(self) -> str:
        """The cell's identity in a results store: its full spec as canonical JSON."""
        spec = {
            k: v for k, v in dataclasses.asdict(self.spec).items()
            if k not in _NOT_IN_KEY and not (k in _DEFAULT_NOT_IN_KEY and v == _DEFAULT_NOT_IN_KEY[k])
        }
        return json.dumps({"model_label": self.model_label, **spec}, sort_keys=True, default=list)

    def units(self) -> int:
        """Work in stage-epochs (epochs x stages), the progress bar's unit."""
        return self.spec.epochs * model_family(self.spec).num_stages()


@dataclass(frozen=True)
class Suite:
    """A named grid; ``cells(seeds, epochs)`` expands it in run order."""

    name: str
    description: str
    base: RunSpec
    datasets: tuple[str, ...]
    models: Mapping[str, Mapping[str, Any]]  # label -> RunSpec overrides
    schedules: Mapping[str, tuple[str, ...] | None]  # schedule -> rule entries such as ib:variant=kde (None: every registered rule)
    seeds: int = 3
    notes: tuple[str, ...] = ()
    per_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model label -> its own rule entries
    rule_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # rule entry -> RunSpec fields

    def rules_for(self, schedule: str, model_label: str | None = None) -> list[str]:
        """The rules run under ``schedule`` (for ``model_label``, its ``per_model`` entries where it has
        them): registered now, and accepted by the schedule."""
        chosen = self.per_model.get(model_label, self.schedules[schedule]) if model_label else self.schedules[schedule]
        names = rules.names() if chosen is None else [r for r in chosen if Entry.parse(r).rule in rules.names()]
        sched = schedules.create(schedule)
        accepted = []
        for name in names:
            entry = Entry.parse(name)
            try:
                sched.check(rules.create(entry.rule, **entry.rule_kw))
            except ValueError:
                continue
            accepted.append(name)
        # e2e first: every other rule is measured against it
        return sorted(accepted, key=lambda r: (r != "e2e", r))

    def cells(self, *, seeds: int | None = None, epochs: int | None = None, train_size: int | None = None,
              eval_size: int | None = None, first_seed: int = 0, rule_entries: Sequence[str] | None = None) -> list[Cell]:
        """Every cell, seed-major so that each seed runs every rule back to back (time drift hits all alike),
        seeds ``first_seed ..``; ``epochs``, ``train_size`` (the first N training images) and ``eval_size``
        (the first N validation and test images) override the suite's, for a smoke run; ``rule_entries`` keeps only
        the cells of those rule entries (a part of the suite; its cells keep the keys of the whole suite's)."""
        if rule_entries is not None:
            known = sorted({name for schedule in self.schedules for label in self.models
                            for name in self.rules_for(schedule, label)})
            unknown = [r for r in rule_entries if r not in known]
            if unknown:
                raise ValueError(f"Suite {self.name!r} has no rule entry {', '.join(map(repr, unknown))}; "
                                 f"its entries are: {', '.join(known)}.")
        out = []
        for seed in range(first_seed, first_seed + (self.seeds if seeds is None else seeds)):
            for data in self.datasets:
                for label, overrides in self.models.items():
                    for schedule in self.schedules:
                        for name in self.rules_for(schedule, label):
                            if rule_entries is not None and name not in rule_entries:
                                continue
                            rule = Entry.parse(name)
                            if _refuses_model(rule.rule, overrides.get("model", self.base.model)):
                                continue
                            spec = dataclasses.replace(
                                self.base, data=data, rule=rule.rule, rule_kw=rule.rule_kw, schedule=schedule,
                                seed=seed, progress=False,
                                eval_every=0,  # evaluate once, after the last epoch
                                **{**overrides, **self.rule_overrides.get(name, {})},
                            )
                            if epochs is not None:
                                spec = dataclasses.replace(spec, epochs=epochs)
                            if train_size is not None or eval_size is not None:
                                spec = dataclasses.replace(spec, train_size=train_size, eval_size=eval_size)
                            out.append(Cell(label, spec))
        return out


@functools.lru_cache(maxsize=None)
def _refuses_model(rule: str, model: str) -> bool:
    """A rule whose ``setup`` refuses a small net of the model family (``dtp`` on a transformer's token
    blocks, say) is left out of that model's cells."""
    family = models.MODELS.get(model).tiny(2)
    try:
        rules.create(rule).setup(family.build(family.tiny_input_shape, 3))
    except ValueError:
        return True
    return False


_FASHION_MLP = {"model": "mlp", "widths": (1024, 1024, 1024)}

SUITES: dict[str, Suite] = {}


def _add(suite: Suite) -> None:
    SUITES[suite.name] = suite


_add(
    Suite(
        name="quick",
        description="digits (8x8, embedded), MLP 3x128 and CNN 16-32-32, every registered rule (and local under sequential), "
        "3 seeds, 10 epochs; a few minutes on one CPU core",
        base=RunSpec(epochs=10, batch_size=32, lr=1e-3),
        datasets=("digits",),
        models={"mlp-3x128": {"model": "mlp", "widths": (128, 128, 128)}, "cnn-16-32-32": {"model": "cnn", "channels": (16, 32, 32)}},
        schedules={"simultaneous": None, "sequential": ("local",)},
        seeds=3,
    )
)
_add(
    Suite(
        name="engine",
        description="Fashion-MNIST, MLP 3x1024, 5 epochs, local vs e2e under simultaneous (issue 2's engine benchmark)",
        base=RunSpec(epochs=5, batch_size=128, lr=1e-3),
        datasets=("fashion-mnist",),
        models={"mlp-3x1024": _FASHION_MLP},
        schedules={"simultaneous": ("e2e", "local")},
        seeds=1,
        notes=("Targets: local >= 87 % test accuracy on the last exit; local <= 1.05x e2e time per epoch.",),
    )
)
_add(
    Suite(
        name="fashion",
        description="Fashion-MNIST, MLP 3x1024 and CNN 16-32-32, every registered rule (simultaneous) and local under sequential, 3 seeds",
        base=RunSpec(epochs=3, batch_size=128, lr=1e-3),
        datasets=("fashion-mnist",),
        models={"mlp-3x1024": _FASHION_MLP, "cnn-16-32-32": {"model": "cnn", "channels": (16, 32, 32)}},
        schedules={"simultaneous": None, "sequential": ("local",)},
        seeds=3,
        notes=("No augmentation; Adam lr 1e-3, batch 128, constant learning rate.",),
    )
)
_PAPER_RECIPE = (
    "The local-loss Fashion-MNIST MLP recipe (Noekland & Eidnes 2019, anokland/local-loss run_experiments.sh and "
    "train.py): MLP 3x1024, each layer Linear -> BatchNorm1d -> ReLU (leaky ReLU, slope 0.01, for sim, predsim and "
    "predsim-bio, as their runs pass --nonlin leakyrelu) -> dropout 0.025, Adam lr 5e-4, batch 128, 2-pixel random "
    "crop + horizontal flip, step decays x0.25 at 50 / 75 / 87.5 / 94 % of the epochs, trained on all 60,000 "
    "training images (no validation split: the last exit is reported, no best-exit choice); sim and predsim "
    "match similarities of a full-width (1024) projection; the local rules' heads start with a zero weight "
    "(decoder_y and layer_out are zeroed in train.py unless --backprop)"
)
_LEAKY = {"activation": "leaky-relu"}
_ZERO_HEAD = {"head_kw": {"zero_weight": True}}  # train.py zeroes decoder_y / layer_out weights of local-loss runs
_LOCAL_RECIPE = {"local": _ZERO_HEAD, "sim": {**_LEAKY, **_ZERO_HEAD}, "predsim": {**_LEAKY, **_ZERO_HEAD},
                 "predsim-bio": {**_LEAKY, **_ZERO_HEAD}}
_add(
    Suite(
        name="paper",
        description=_PAPER_RECIPE + "; BP (e2e), pred (local), sim, predsim and predsim-bio",
        base=RunSpec(epochs=30, batch_size=128, lr=5e-4, lr_schedule="steps", dropout=0.025, augment="crop2,flip",
                     model_kw={"batch_norm": True}, val_size=0),
        datasets=("fashion-mnist",),
        models={"mlp-3x1024-bn": _FASHION_MLP},
        schedules={"simultaneous": ("e2e", "local", "sim", "predsim", "predsim-bio")},
        rule_overrides=_LOCAL_RECIPE,
        seeds=3,
        notes=(
            "Differs from the paper: 30 epochs by default (--epochs: a CPU run's budget), not 200 (the decays are at "
            "the same fractions of the run); a linear head on each hidden layer, each an exit (the authors' hidden "
            "layers' prediction heads are exits too, the last is their output layer); sim's heads read out the "
            "detached features by cross-entropy; the similarity is taken of the features after dropout (the "
            "authors' before; dropout is 0.025).",
        ),
    )
)
_add(
    Suite(
        name="paper-3ep",
        description=(
            "Issue 23's side-by-side check: the paper recipe without BatchNorm for 3 epochs, e2e and predsim, 3 seeds, "
            "against the authors' train.py on the same torch (84.49 +- 0.93 % BP, 84.28 % predsim); the learning "
            "rate constant (the authors' milestones 100/150/175/188 are past epoch 3) or decayed at our fractions "
            "(steps: x0.25 after epoch 1, x0.25^3 after epoch 2)"
        ),
        base=RunSpec(epochs=3, batch_size=128, lr=5e-4, lr_schedule="none", dropout=0.025, augment="crop2,flip",
                     val_size=0),
        datasets=("fashion-mnist",),
        models={"mlp-3x1024-lr-constant": _FASHION_MLP, "mlp-3x1024-lr-steps": {**_FASHION_MLP, "lr_schedule": "steps"}},
        schedules={"simultaneous": ("e2e", "predsim")},
        rule_overrides={"predsim": _LOCAL_RECIPE["predsim"]},
        seeds=3,
        notes=("No BatchNorm, as the authors' numbers it is compared with; all 60,000 training images.",),
    )
)


_add(
    Suite(
        name="fg-digits",
        description=(
            "digits (8x8), MLP 3x128 (the quick suite's), 10 epochs, 3 seeds: forward-gradient with one perturbation "
            "per example (Ren et al. 2023, the default) against one per batch (the earlier estimator), beside "
            "local and e2e (issue 23: last exit >= 75 %)"
        ),
        base=RunSpec(epochs=10, batch_size=32, lr=1e-3),
        datasets=("digits",),
        models={"mlp-3x128": {"model": "mlp", "widths": (128, 128, 128)}},
        schedules={"simultaneous": ("e2e", "local", "forward-gradient", "forward-gradient:perturbation=batch")},
        seeds=3,
    )
)


def _gap_suite(name: str, label: str, channels: tuple[int, ...]) -> Suite:
    """Issue 14's CNN benchmark, one suite per model so that the two can run side by side."""
    return Suite(
        name=name,
        description=(
            f"Fashion-MNIST, CNN {label} (conv head per stage), e2e against local and infopro "
            "(issue 14: does a local rule close the gap to e2e, with exits that improve with depth?), 3 seeds"
        ),
        base=RunSpec(epochs=2, batch_size=128, lr=1e-3),
        datasets=("fashion-mnist",),
        models={f"cnn-{label}": {"model": "cnn", "channels": channels}},
        schedules={"simultaneous": ("e2e", "local", "infopro")},
        seeds=3,
        notes=(
            "No augmentation; Adam lr 1e-3, batch 128, constant learning rate; 2 epochs for every rule, the most "
            "that fits issue 14's CPU budget of about 40 core-minutes for both CNNs; full training split.",
        ),
    )


_add(_gap_suite("gap-cnn", "16-32-32", (16, 32, 32)))
_add(_gap_suite("gap-cnn-wide", "32-64-128", (32, 64, 128)))
_add(
    Suite(
        name="ff-fg-mlp",
        description=(
            "Fashion-MNIST, MLP 4x500: forward-forward and forward-gradient beside e2e and local "
            "(issue 14; Hinton's Forward-Forward MLP is 4x2000 on MNIST, 60 epochs)"
        ),
        base=RunSpec(epochs=3, batch_size=128, lr=1e-3),
        datasets=("fashion-mnist",),
        models={"mlp-4x500": {"model": "mlp", "widths": (500, 500, 500, 500)}},
        schedules={"simultaneous": ("e2e", "local", "forward-forward", "forward-gradient", "forward-gradient:samples=16")},
        seeds=1,
        notes=(
            "No augmentation; Adam lr 1e-3, batch 128, constant learning rate, 3 epochs, one seed (CPU budget). "
            "Forward-Forward's exits score each label by goodness (exit 1: layer 1; exit k: layers 2..k summed), "
            "so its evaluation runs the net once per label. forward-gradient:samples=16 was added after the "
            "first four cells had run (its time ratio is against an e2e cell measured earlier, not in turns).",
        ),
    )
)
_add(
    Suite(
        name="bio",
        description=(
            "Biologically plausible rules on Fashion-MNIST at issue 3's size: MLP 3x1024, every bio rule (fa-heads, "
            "predsim, predsim-bio, dfa) against local and e2e under simultaneous, Adam lr 5e-4, batch 128, 10 epochs, "
            "3 seeds"
        ),
        base=RunSpec(epochs=10, batch_size=128, lr=5e-4),
        datasets=("fashion-mnist",),
        models={"mlp-3x1024": _FASHION_MLP},
        schedules={"simultaneous": ("e2e", "local", "fa-heads", "predsim", "predsim-bio", "dfa")},
        seeds=3,
        notes=(
            "No augmentation, no dropout, constant learning rate (the local-loss anchors: 200 epochs, jitter + flip, "
            "dropout, step decays; the BioTorch anchors: LeNet, error on the model-selection split).",
            "Replaces benchmarks/bio_rules.py; its committed results (benchmarks/results/bio_rules*.md, .json) stay "
            "as they were written, with their commands.",
        ),
    )
)
_add(
    Suite(
        name="ib-fashion",
        description=(
            "Fashion-MNIST, MLP 3x256 (ReLU, linear head per stage): the ib rule in its HSIC and KDE variants "
            "against local and e2e, Adam lr 1e-3, batch 128, 5 epochs, 3 seeds"
        ),
        base=RunSpec(epochs=5, batch_size=128, lr=1e-3),
        datasets=("fashion-mnist",),
        models={"mlp-3x256": {"model": "mlp", "widths": (256, 256, 256)}},
        schedules={"simultaneous": ("e2e", "local", "ib:variant=hsic", "ib:variant=kde")},
        seeds=3,
        notes=(
            "ib runs with its defaults of the day (`locallearn rules ib` lists them) apart from the variant.",
            "Replaces benchmarks/ib_fashion.py; its committed results (benchmarks/results/ib_fashion.md, .json) stay "
            "as they were written, with their command.",
        ),
    )
)


import locallearn.bench.suites_field  # noqa: E402,F401  (adds the field's grids: InfoPro, local-loss VGG)
import locallearn.bench.suites_rules  # noqa: E402,F401  (issue 26: auglocal and dtp beside the field's rules)
