"""``locallearn train``: one run; prints every exit's accuracy, writes results JSON and a checkpoint."""

from __future__ import annotations

import argparse
import os

from locallearn.commands.common import add_run_arguments, spec_from_args
from locallearn.compare import stage_epoch_times, whole_epoch_time
from locallearn.paths import check_outputs
from locallearn.experiment import make_trainer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one network with one rule and schedule")
    add_run_arguments(p)  # --seed and --checkpoint among them
    p.add_argument("--out", default=None, help="results JSON path")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--out": args.out, "--checkpoint": args.checkpoint_path})
    if args.resume and not args.checkpoint_path:
        raise ValueError("--resume needs --checkpoint PATH naming the checkpoint to continue from.")
    if args.checkpoint_path and not args.resume and os.path.lexists(args.checkpoint_path):
        raise ValueError(f"--checkpoint {args.checkpoint_path} exists already: pass --resume to continue that run, or give "
                         "another path (or remove the file) to start a new one; a new run never overwrites a checkpoint.")
    trainer = make_trainer(spec_from_args(args))
    if args.resume:
        trainer.load_checkpoint(args.checkpoint_path)
    result = trainer.fit()
    if trainer.data_parallel is not None and trainer.data_parallel.rank != 0:  # data-parallel: rank 0 reports, writes
        return 0
    val = result.final("val")  # empty without a validation split (val_size=0)
    for k, test in enumerate(result.final("test")):
        print(f"exit {k + 1}: " + (f"val {100 * val[k]:.2f} %  " if val else "") + f"test {100 * test:.2f} %")
    per_stage = stage_epoch_times(result.history, len(trainer.net.stages))
    print(f"time per epoch (whole network): {whole_epoch_time(result.history, trainer.config.epochs):.3f} s"
          + ("" if all(t is None for t in per_stage) else
             "; per stage-epoch: " + " / ".join("–" if t is None else f"{t:.3f}" for t in per_stage) + " s"))
    if args.out:
        result.save(args.out)
        print(f"results written to {args.out}")
    return 0
