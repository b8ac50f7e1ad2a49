"""Arguments shared by the subcommands that train: data, model, rule, schedule, optimisation."""

from __future__ import annotations

import argparse
import ast
import re
from typing import Any

from locallearn.device import resolve_device
from locallearn.experiment import RunSpec


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,256,256; got {text!r}")


def _device(text: str) -> str:
    if re.fullmatch(r"cpu|cuda|cuda:\d+|auto", text):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N (such as cuda:0) or auto; got {text!r}")


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. beta=0.99); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_run_arguments(parser: argparse.ArgumentParser, *, rule: bool = True) -> None:
    """The options that fill a ``RunSpec``."""
    d = RunSpec()
    g = parser.add_argument_group("data and model")
    g.add_argument("--data", default=d.data, help="digits (embedded), fashion-mnist, mnist, mnist1d, synthetic, "
                   "cifar10, cifar100, svhn, stl10, image-folder")
    g.add_argument("--data-dir", default=None, help="the dataset's folder: IDX files (mnist, fashion-mnist), the unpacked "
                   "archive (cifar10, cifar100, svhn, stl10) or a class-per-folder image tree (image-folder)")
    g.add_argument("--model", default=d.model, help="a registered model (locallearn models lists them)")
    g.add_argument("--model-opt", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter (locallearn models lists them), e.g. stages=4")
    g.add_argument("--widths", type=_ints, default=d.widths, help="mlp layer widths, one stage each")
    g.add_argument("--channels", type=_ints, default=d.channels, help="cnn channels, one stage each")
    g.add_argument("--activation", default=d.activation, help="relu, tanh, gelu or sigmoid (mlp)")
    g.add_argument("--dropout", type=float, default=d.dropout)
    g.add_argument("--head", default=d.head, help="a registered head (default: the model's own: linear for mlp, conv for cnn)")
    g.add_argument("--augment", default=d.augment, help="train-time augmentation of image data: none, or items such as crop2,flip")
    g = parser.add_argument_group("learning")
    if rule:
        g.add_argument("--rule", default=d.rule, help="a registered rule name")
    g.add_argument("--rule-opt", type=_option, action="append", default=[], metavar="KEY=VALUE", help="rule hyper-parameter")
    g.add_argument("--schedule", default=d.schedule, help="a registered schedule name")
    g.add_argument("--schedule-opt", type=_option, action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--workers", type=int, default=None, help="processes of the pipeline schedule (= --schedule-opt workers=N)")
    g.add_argument("--epochs", type=int, default=d.epochs, help="epochs (per stage for sequential)")
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--optimizer", default=d.optimizer, help="adam, adamw or sgd")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--lr-schedule", default=d.lr_schedule, help="none, cosine or step")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_arguments(parser)
    g.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: on small models, and on a busy machine, more threads stall; "
        "a digits predsim run took 50x longer with 2 threads on a loaded 2-core machine)",
    )


def add_device_arguments(parser: argparse.ArgumentParser, *, amp: bool = True) -> None:
    """``--device`` (and ``--amp`` for training), for every command that runs a network."""
    g = parser.add_argument_group("device")
    g.add_argument("--device", default="cpu", type=_device, help="cpu, cuda, cuda:N or auto (cuda when available)")
    if amp:
        g.add_argument("--amp", action="store_true", help="mixed precision (float16 with loss scaling on cuda, bfloat16 on cpu)")
        g.add_argument("--compile", action="store_true",
                       help="torch.compile each stage's block (slow to start; refused by rules that cannot, e.g. dfa)")


def spec_from_args(args: argparse.Namespace, **overrides: Any) -> RunSpec:
    """A ``RunSpec`` from parsed arguments."""
    resolve_device(args.device)  # a GPU asked for and missing fails before the data is loaded
    schedule_kw = dict(args.schedule_opt)
    if args.workers is not None:
        if args.schedule != "pipeline":
            raise ValueError(f"--workers applies to --schedule pipeline only; got --schedule {args.schedule}.")
        schedule_kw["workers"] = args.workers
    values = dict(
        data=args.data, data_dir=args.data_dir, model=args.model, model_kw=dict(args.model_opt), widths=args.widths, channels=args.channels,
        activation=args.activation, dropout=args.dropout, head=args.head, rule=getattr(args, "rule", "local"),
        rule_kw=dict(args.rule_opt), schedule=args.schedule, schedule_kw=schedule_kw, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule, progress=not args.no_progress, augment=args.augment,
        device=args.device, amp=args.amp, compile=getattr(args, "compile", False),
    )
    values.update(overrides)
    return RunSpec(**values)
