"""The ``locallearn`` command: a thin layer over the Python API.

Each subcommand lives in ``locallearn/commands/<name>.py``; add its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

import torch

from locallearn.schedules import NonFiniteLossError

COMMANDS = ("train", "compare", "exits", "infoplane", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locallearn", description="Block-wise local learning: train, compare, analyse.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"locallearn.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        if args.threads < 1:
            print(f"locallearn {args.command}: error: --threads must be >= 1; got {args.threads}.", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ImportError, NonFiniteLossError) as error:
        print(f"locallearn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
