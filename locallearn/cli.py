"""The ``locallearn`` command: a thin layer over the Python API.

Each subcommand lives in ``locallearn/commands/<name>.py``; add its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import io
import os
import shlex
import signal
import sys
import threading
import warnings
from typing import Any, Callable, Sequence, TextIO

import torch
import torch.distributed as dist

import locallearn
from locallearn.plugin_option import load_from_command_line, plugin_parent


from locallearn.schedules import NonFiniteLossError
from locallearn.schedules.pipeline import PipelineWorkerError

COMMANDS = ("train", "compare", "exits", "infoplane", "bench", "merge", "listing")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, also of options given no help text."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings:
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locallearn", description="Block-wise local learning: train, compare, analyse.")
    parser.add_argument("--version", action="version", version=f"locallearn {locallearn.__version__}")
    # every subcommand's --help shows --plugin (main takes it out of the command line before parsing)
    with_defaults = functools.partial(argparse.ArgumentParser, formatter_class=DefaultsHelpFormatter, parents=[plugin_parent()])
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=with_defaults)
    for name in COMMANDS:
        importlib.import_module(f"locallearn.commands.{name}").add_parser(subparsers)
    return parser


class _ReaderGone:
    """``sys.stdout`` that survives its reader going away (``| head``): once a write meets a broken pipe,
    the rest of the output goes to ``os.devnull`` and the work carries on, so the results are still
    written and the exit status still tells whether the run worked."""

    def __init__(self, stream: TextIO) -> None:
        self._stream, self.gone = stream, False

    def _guard(self, call: Callable[[], Any]) -> Any:
        if self.gone:
            return None
        try:
            return call()
        except BrokenPipeError:
            self.gone = True
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())  # no second error at exit
            except (OSError, ValueError, io.UnsupportedOperation):
                pass
            return None

    def write(self, text: str) -> int:
        self._guard(lambda: self._stream.write(text))
        return len(text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


class Terminated(Exception):
    """The process was asked to stop (SIGTERM): unwound like Ctrl-C, so every temporary is cleaned up."""


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
    stdout = sys.stdout
    sys.stdout = _ReaderGone(stdout)
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
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
    except Terminated as error:
        print(f"locallearn {args.command}: {error}.", file=sys.stderr)  # every output written is whole (locallearn.io)
        return 128 + signal.SIGTERM
    except (dist.DistError, OSError) as error:  # a broken connection, a device gone: our fault or not, one line
        print(f"locallearn {args.command}: error: {type(error).__name__}: {_first_line(str(error))}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


if __name__ == "__main__":
    sys.exit(main())
