"""Arguments shared by the subcommands that train: one flag per ``RunSpec`` field (``locallearn.commands.fields``)."""

from __future__ import annotations

import argparse
import re
from typing import Any, Collection

from locallearn.commands.fields import _option, add_field_arguments, field_values
from locallearn.device import resolve_device
from locallearn.experiment import RunSpec

__all__ = ["_option", "add_device_arguments", "add_run_arguments", "spec_from_args"]


def _device(text: str) -> str:
    if re.fullmatch(r"cpu|cuda|cuda:\d+|auto", text):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N (such as cuda:0) or auto; got {text!r}")


#: Fields whose flag reads its value with its own parser.
PARSERS = {"device": _device}


def add_run_arguments(parser: argparse.ArgumentParser, *, skip: Collection[str] = ()) -> None:
    """A flag for every ``RunSpec`` field but ``skip`` (``compare`` has ``--rules`` and ``--seeds`` instead of
    ``--rule`` and ``--seed``), plus ``--workers`` and ``--threads``."""
    add_field_arguments(parser, RunSpec, skip=skip, parsers=PARSERS)
    g = parser.add_argument_group("processes")
    g.add_argument("--workers", type=int, default=None, help="processes of the pipeline schedule (= --schedule-opt workers=N)")
    g.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: on small models, and on a busy machine, more threads stall; "
        "a digits predsim run took 50x longer with 2 threads on a loaded 2-core machine)",
    )


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` alone, for a command that runs a trained network (``exits``)."""
    add_field_arguments(parser, RunSpec, only=("device",), parsers=PARSERS)


def spec_from_args(args: argparse.Namespace, **overrides: Any) -> RunSpec:
    """A ``RunSpec`` from parsed arguments (a field without a flag keeps its default), then ``overrides``."""
    resolve_device(args.device)  # a GPU asked for and missing fails before the data is loaded
    values = field_values(args, RunSpec)
    if args.workers is not None:
        if args.schedule != "pipeline":
            raise ValueError(f"--workers applies to --schedule pipeline only; got --schedule {args.schedule}.")
        values["schedule_kw"] = {**values["schedule_kw"], "workers": args.workers}
    return RunSpec(**{**values, **overrides})
