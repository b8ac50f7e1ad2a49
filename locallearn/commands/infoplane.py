"""``locallearn infoplane``: train one network and record every stage's information plane.

Example (shell):
    locallearn infoplane --data digits --rule local --activation tanh --estimator binning --out DIR

writes ``DIR/infoplane.json`` (the points, in bits), ``DIR/infoplane.png`` and ``DIR/run.json``.
Wide layers put every input in its own bin, so I(X;T) sits at log2(samples); narrow layers
(``--widths 10,7,5,4,3``, as Shwartz-Ziv & Tishby) show the dynamics.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from locallearn.commands.common import add_run_arguments, spec_from_args
from locallearn.commands.paths import check_outputs
from locallearn.experiment import make_trainer
from locallearn.info.plane import PLANE_ESTIMATORS, InformationPlane


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "infoplane", help="train and record (I(X;T), I(T;Y)) of every stage",
        description="Wide layers saturate I(X;T) at log2(samples) under binning; try --widths 10,7,5,4,3.")
    add_run_arguments(p)
    g = p.add_argument_group("information plane")
    g.add_argument("--estimator", default="binning", help=f"one of: {', '.join(PLANE_ESTIMATORS)}")
    g.add_argument("--bins", type=int, default=30, help="binning: bins per unit")
    g.add_argument("--value-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="binning: fixed range of the equal-width bins (default: each epoch's min and max)")
    g.add_argument("--strategy", default="uniform", help="binning: uniform or quantile")
    g.add_argument("--noise-var", type=float, default=0.1, help="kde: variance of the added noise")
    g.add_argument("--every", type=int, default=1, help="record before training and every N epochs")
    g.add_argument("--max-samples", type=int, default=2000, help="size of the fixed evaluation subset")
    g.add_argument("--split", default="train", help="split the evaluation subset is drawn from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(folders={"--out": args.out})
    if args.every < 1:
        raise ValueError(f"--every must be >= 1; got {args.every}.")
    if args.estimator == "binning":
        kw = {"bins": args.bins, "strategy": args.strategy}
        if args.value_range is not None:
            kw["value_range"] = tuple(args.value_range)
    else:
        kw = {"noise_var": args.noise_var}
    trainer = make_trainer(spec_from_args(args, seed=args.seed))
    epochs = range(0, trainer.total_epochs + 1, args.every)
    plane = InformationPlane(estimator=args.estimator, estimator_kw=kw, epochs=[*epochs, trainer.total_epochs],
                             split=args.split, max_samples=args.max_samples, seed=args.seed, out_dir=args.out)
    trainer.callbacks.append(plane)
    result = trainer.fit()
    result.save(Path(args.out) / "run.json")
    for k, acc in enumerate(result.final("test")):
        last = [p for p in plane.points if p["stage"] == k + 1][-1]
        print(f"stage {k + 1}: test {100 * acc:.2f} %  I(X;T) {last['ixt']:.3f} bits  I(T;Y) {last['ity']:.3f} bits")
    print(f"information plane written to {args.out}/infoplane.json and infoplane.png")
    return 0
