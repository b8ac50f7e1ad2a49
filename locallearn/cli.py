"""The ``locallearn`` command: a thin layer over the Python API.

Each subcommand lives in ``locallearn/commands/<name>.py``; add its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import os
import shlex
import sys
import warnings
from typing import Sequence

import torch

from locallearn.commands.plugin_option import load_from_command_line, plugin_parent
from locallearn.schedules import NonFiniteLossError
from locallearn.schedules.pipeline import PipelineWorkerError

COMMANDS = ("train", "compare", "exits", "infoplane", "bench", "listing")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, also of options given no help text."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings:
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locallearn", description="Block-wise local learning: train, compare, analyse.")
    # every subcommand's --help shows --plugin (main takes it out of the command line before parsing)
    with_defaults = functools.partial(argparse.ArgumentParser, formatter_class=DefaultsHelpFormatter, parents=[plugin_parent()])
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=with_defaults)
    for name in COMMANDS:
        importlib.import_module(f"locallearn.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest = load_from_command_line(argv)  # before parsing: the plugins' names exist for everything after
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"locallearn: error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(rest)
    args.command_line = shlex.join(["locallearn", *argv])  # recorded beside results
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            print(f"locallearn {args.command}: error: --threads must be >= 1; got {args.threads}.", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        with warnings.catch_warnings():  # a warning (e.g. a diverged run) is one line, like an error
            warnings.showwarning = lambda message, *_, **__: print(f"locallearn {args.command}: warning: {message}", file=sys.stderr)
            return args.run(args)
    except (ValueError, FileNotFoundError, ImportError, NonFiniteLossError, PipelineWorkerError) as error:
        print(f"locallearn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"locallearn {args.command}: interrupted (Ctrl-C); stopped.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


if __name__ == "__main__":
    sys.exit(main())
