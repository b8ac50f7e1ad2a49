"""``locallearn infoplane``: train one network and record every stage's information plane.

Example (shell):
    locallearn infoplane --data digits --rule local --activation tanh --estimator binning,kde,ksg --seeds 3 --out DIR

writes ``DIR/infoplane.json`` (the points, in bits; with several seeds the mean and standard
deviation over them, and each seed's points), ``DIR/infoplane.png`` (one panel per estimator)
and the training record ``DIR/run.json`` (one seed) or ``DIR/run_seed<S>.json`` (each of several).
Wide layers put every input in its own bin, so I(X;T) sits at log2(samples); narrow layers
(``--widths 10,7,5,4,3``, as Shwartz-Ziv & Tishby) show the dynamics.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from locallearn.commands.common import _option, add_run_arguments, spec_from_args
from locallearn.paths import check_outputs, inside
from locallearn.experiment import make_trainer
from locallearn.info import ESTIMATORS
from locallearn.info.plane import InformationPlane, average_planes, save_plane


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "infoplane", help="train and record (I(X;T), I(T;Y)) of every stage",
        description="Wide layers saturate I(X;T) at log2(samples) under binning; try --widths 10,7,5,4,3.")
    add_run_arguments(p, skip=("seed", "checkpoint_path"))  # its own --seed: the first of --seeds
    g = p.add_argument_group("information plane")
    g.add_argument("--estimator", default="binning",
                   help=f"comma-separated registered estimators, each recorded (one of: {', '.join(ESTIMATORS.names())})")
    g.add_argument("--estimator-opt", type=_estimator_option, action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="an option of one estimator, e.g. ksg:k=5 or neural:steps=200 (repeatable)")
    g.add_argument("--bins", type=int, default=30, help="binning: bins per unit")
    g.add_argument("--value-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="binning: fixed range of the equal-width bins (default: each epoch's min and max)")
    g.add_argument("--strategy", default="uniform", help="binning: uniform or quantile")
    g.add_argument("--noise-var", type=float, default=0.1, help="kde: variance of the added noise")
    g.add_argument("--every", type=int, default=1, help="record before training and every N epochs")
    g.add_argument("--max-samples", type=int, default=2000, help="size of the fixed evaluation subset")
    g.add_argument("--split", default="train", help="split the evaluation subset is drawn from")
    p.add_argument("--seed", type=int, default=0, help="the first seed (also draws the evaluation subset)")
    p.add_argument("--seeds", type=int, default=1, help="train seeds SEED..SEED+N-1 and average their planes")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=run)


def _estimator_option(text: str) -> tuple[str, str, Any]:
    name, sep, option = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE (e.g. ksg:k=5); got {text!r}")
    return (name, *_option(option))


def estimator_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each chosen estimator's options: the binning and KDE flags, then ``--estimator-opt``."""
    names = [n.strip() for n in args.estimator.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--estimator must name each estimator once, comma-separated; got {args.estimator!r}.")
    chosen: dict[str, dict[str, Any]] = {name: {} for name in names}
    if "binning" in chosen:
        chosen["binning"] = {"bins": args.bins, "strategy": args.strategy}
        if args.value_range is not None:
            chosen["binning"]["value_range"] = tuple(args.value_range)
    if "kde" in chosen:
        chosen["kde"] = {"noise_var": args.noise_var}
    for name, key, value in args.estimator_opt:
        if name not in chosen:
            raise ValueError(f"--estimator-opt {name}:{key}=... names an estimator not in --estimator {args.estimator}.")
        chosen[name][key] = value
    return chosen


def run(args: argparse.Namespace) -> int:
    runs = ("run.json",) if args.seeds == 1 else tuple(f"run_seed{seed}.json" for seed in range(args.seeds))
    check_outputs(folders={"--out": args.out}, files=inside("--out", args.out, ("infoplane.json", "infoplane.png", *runs)))
    if args.every < 1:
        raise ValueError(f"--every must be >= 1; got {args.every}.")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}.")
    estimators = estimator_options(args)
    InformationPlane(estimators=estimators)  # an unknown estimator or a bad option fails before any training
    planes, results = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        trainer = make_trainer(spec_from_args(args, seed=seed))
        epochs = range(0, trainer.total_epochs + 1, args.every)
        plane = InformationPlane(estimators=estimators, epochs=[*epochs, trainer.total_epochs], split=args.split,
                                 max_samples=args.max_samples, seed=args.seed)
        trainer.callbacks.append(plane)
        result = trainer.fit()
        name = "run.json" if args.seeds == 1 else f"run_seed{seed}.json"
        result.save(Path(args.out) / name)
        planes.append(plane.to_dict())
        results.append(result)
    plane = planes[0] if args.seeds == 1 else average_planes(planes)
    save_plane(plane, args.out, title=f"{planes[0]['run']['rule']['name']}"
               + ("" if args.seeds == 1 else f", mean over {args.seeds} seeds"))
    _print_last(plane, results)
    print(f"information plane written to {args.out}/infoplane.json and infoplane.png")
    return 0


def _print_last(plane: dict[str, Any], results: list) -> None:
    """Each stage's test accuracy (mean over seeds) and its last point per estimator (mean +- sd over seeds)."""
    finals = [result.final("test") for result in results]
    if len(results) > 1:
        print(f"mean +- standard deviation over n = {len(results)} seeds:")
    for k in range(len(finals[0])):
        accuracy = sum(f[k] for f in finals) / len(finals)
        parts = [f"stage {k + 1}: test {100 * accuracy:.2f} %"]
        for name, described in plane["estimators"].items():
            last = [p for p in plane["points"] if p["stage"] == k + 1 and p["estimator"] == name][-1]
            unit = described["units"]
            spread = lambda axis: "" if last.get(f"{axis}_sd") is None else f" +- {last[f'{axis}_sd']:.3f}"  # noqa: E731
            parts.append(f"{name}: I(X;T) {last['ixt']:.3f}{spread('ixt')} I(T;Y) {last['ity']:.3f}{spread('ity')} {unit}")
        print("  ".join(parts))
