"""``--plugin MODULE`` of every command: taken out of the command line and loaded before it is parsed.

It is taken out before parsing so that it works in any position, also among the options of a
``bench`` program (which has a parser of its own), and so that the plugins' names are
registered before anything looks them up.

Example:
    >>> split_plugins(["train", "--plugin", "my_rules", "--rule", "drtp", "--plugin=other.py"])
    (['my_rules', 'other.py'], ['train', '--rule', 'drtp'])
"""

from __future__ import annotations

import argparse
from typing import Sequence

from locallearn.plugins import load_plugins

OPTION = "--plugin"
HELP = ("import a module (a name, or the path of a .py file) that registers rules, schedules, heads, exit policies, "
        "estimators, models or datasets of its own; repeatable. Installed packages' entry points load by themselves")


def split_plugins(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(plugins, the other arguments)`` of a command line."""
    specs: list[str] = []
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word == OPTION:
            value = next(words, None)
            if value is None or value.startswith("-"):
                raise ValueError(f"{OPTION} needs a module name or the path of a .py file after it.")
            specs.append(value)
        elif word.startswith(OPTION + "="):
            specs.append(word.partition("=")[2])
        else:
            rest.append(word)
    return specs, rest


def load_from_command_line(argv: Sequence[str]) -> list[str]:
    """Load the command line's plugins; return its other arguments."""
    specs, rest = split_plugins(argv)
    load_plugins(specs)
    return rest


def plugin_parent() -> argparse.ArgumentParser:
    """A parent parser that only documents ``--plugin`` in a command's ``--help``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument_group("plugins").add_argument(OPTION, action="append", default=[], metavar="MODULE", help=HELP)
    return parser
