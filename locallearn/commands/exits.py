"""``locallearn exits``: early-exit analysis of a trained checkpoint (calibrated on val, reported on test)."""

from __future__ import annotations

import argparse

from locallearn import data as datasets
from locallearn import io, plugins
from locallearn.commands.common import add_device_arguments
from locallearn.paths import check_outputs, inside
from locallearn.device import resolve_device
from locallearn.exits import EXIT_POLICIES, analyse_exits
from locallearn.experiment import RunSpec, make_trainer


#: What ``exits`` writes inside ``--out`` (``locallearn.exits.analyse_exits``).
OUTPUTS = ("report.json", "val_logits.pt", "test_logits.pt", "accuracy_cost.png", "exit_histogram.png")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("exits", help="calibrate early exits on validation, report accuracy and FLOPs on test")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `locallearn train --checkpoint`")
    p.add_argument("--policy", default="entropy", help=f"exit policy: {', '.join(EXIT_POLICIES.names())}")
    p.add_argument("--target-drop", type=float, default=0.5, help="largest accuracy drop vs the last exit on val, in points")
    p.add_argument("--data-dir", default=None, help="folder of IDX files, if not where the run found them")
    p.add_argument("--out", required=True, help="folder for report.json, figures and the logit caches")
    add_device_arguments(p)
    p.set_defaults(run=run)


def load_trained(path: str, data_dir: str | None = None, device: str = "cpu"):
    """The trained net (on ``device``) and its dataset, rebuilt from a checkpoint's run spec."""
    payload = io.load_checkpoint(path, required={"config": dict, "net": dict})
    spec_dict = payload["config"].get("spec")
    if spec_dict is None:
        raise ValueError(f"Checkpoint {path} has no run spec; write it with `locallearn train --checkpoint`.")
    try:
        spec = RunSpec.from_dict(source=f"Checkpoint {path}", values={**spec_dict, "data_dir": data_dir or spec_dict.get("data_dir"), "progress": False, "checkpoint_path": None, "device": device})
        ds = datasets.load(spec.data, data_dir=spec.data_dir)
        trainer = make_trainer(spec, ds)
    except ValueError as error:  # e.g. an unknown rule: say which plugins the run had loaded, if this process lacks them
        missing = [p for p in payload["config"].get("plugins", []) if p not in plugins.provenance()]
        if not missing:
            raise
        raise ValueError(f"{error} The run that wrote {path} had loaded plugins this command has not: "
                         f"{'; '.join(missing)}; give them with --plugin.") from None
    try:
        trainer.net.load_state_dict(payload["net"])
    except (RuntimeError, KeyError, TypeError) as error:
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"Checkpoint {path}: its weights do not fit the net its own run spec builds ({reason}).") from None
    return trainer.net, ds


def run(args: argparse.Namespace) -> int:
    check_outputs(folders={"--out": args.out}, files=inside("--out", args.out, OUTPUTS), inputs={"--checkpoint": args.checkpoint})
    if not 0 <= args.target_drop <= 100:
        raise ValueError(f"--target-drop must be in points between 0 and 100 (0.5 = half a point). Got {args.target_drop}.")
    EXIT_POLICIES.get(args.policy)
    net, ds = load_trained(args.checkpoint, args.data_dir, resolve_device(args.device).type)
    r = analyse_exits(net, ds.split("val"), ds.split("test"), policy=args.policy, max_drop=args.target_drop / 100, out_dir=args.out)
    print(f"policy {r['policy']}, thresholds {['%.4g' % t for t in r['thresholds']]} (calibrated on {r['calibrated_on']})")
    print(f"test accuracy {100 * r['accuracy']:.2f} % vs last exit {100 * r['last_exit_accuracy']:.2f} % (drop {r['accuracy_drop_pt']:.2f} pt)")
    print(f"FLOPs: {r['relative_cost']:.3f} of the full network ({100 * r['flops_saved_fraction']:.1f} % saved); exits {r['exit_histogram']}")
    print(f"overthinking {100 * r['overthinking_rate']:.2f} %, agreement with last exit {100 * r['agreement_with_last_exit']:.2f} %")
    print(f"runner agrees with offline policy: {r['runner']['agrees_with_offline']}; report in {args.out}")
    if not r["runner"]["agrees_with_offline"]:
        raise ValueError(f"The early-exit runner does not reproduce the offline analysis on {args.checkpoint} (its rule "
                         "computes the exits another way): the accuracy and FLOPs above are not what running it gives.")
    return 0
