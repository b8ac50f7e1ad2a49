"""Command-line flags generated from a dataclass's fields, so that every field of a run is reachable.

A field ``batch_size`` becomes ``--batch-size`` (its metadata's ``flag`` when it names another,
``checkpoint_path`` -> ``--checkpoint``), typed from its annotation, with its metadata's ``help``:

- ``int``, ``float``, ``str`` (and ``X | None``: default None) read one value;
- ``bool`` gives ``--name`` and ``--no-name`` (``--no-progress`` hides the progress bar);
- ``tuple[int, ...]`` reads comma-separated integers (``--widths 256,256``);
- ``dict[str, Any]`` is repeated ``KEY=VALUE`` (``--rule-opt beta=0.5``), the value a Python literal when it is one.

Example:
    >>> import argparse
    >>> from locallearn.experiment import RunSpec
    >>> parser = argparse.ArgumentParser()
    >>> add_field_arguments(parser, RunSpec, only=("lr", "momentum", "widths", "rule_kw", "progress"))
    >>> args = parser.parse_args(["--momentum", "0.5", "--widths", "8,8", "--rule-opt", "beta=2", "--no-progress"])
    >>> field_values(args, RunSpec)
    {'lr': 0.001, 'momentum': 0.5, 'progress': False, 'widths': (8, 8), 'rule_kw': {'beta': 2}}
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import types
import typing
from typing import Any, Callable, Collection, Mapping


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,256,256; got {text!r}")


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. beta=0.99); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def flag(f: dataclasses.Field) -> str:
    """The command-line flag of a field: its metadata's ``flag``, else ``--`` and its name with dashes."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _kind(annotation: Any) -> Any:
    """The annotation without ``| None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _argument(f: dataclasses.Field, annotation: Any, parse: Callable[[str], Any] | None) -> dict[str, Any]:
    """``add_argument``'s keywords for one field."""
    help_text = f.metadata.get("help")
    if not help_text:
        raise TypeError(f"The field {f.name!r} has no help text (metadata={{'help': ...}}); every flag needs one.")
    out: dict[str, Any] = {"dest": f.name, "help": help_text.replace("%", "%%"), "default": _default(f),
                           "metavar": flag(f)[2:].upper().replace("-", "_")}
    kind = _kind(annotation)
    origin = typing.get_origin(kind)
    if kind is bool:
        return {**{k: v for k, v in out.items() if k != "metavar"}, "action": argparse.BooleanOptionalAction}
    if origin is dict:
        return {**out, "type": _option, "action": "append", "default": [], "metavar": "KEY=VALUE"}
    if origin is tuple and typing.get_args(kind) == (int, Ellipsis):
        return {**out, "type": parse or _ints, "metavar": "N,N,..."}
    if kind in (int, float, str):
        return {**out, "type": parse or kind}
    raise TypeError(f"The field {f.name!r} has type {annotation!r}, which has no command-line form yet.")


def _fields(cls: type, skip: Collection[str], only: Collection[str] | None) -> list[dataclasses.Field]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(skip) | set(only or ())) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {', '.join(unknown)}.")
    return [f for f in dataclasses.fields(cls) if f.name not in skip and (only is None or f.name in only)]


def add_field_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Collection[str] = (),
    only: Collection[str] | None = None,
    parsers: Mapping[str, Callable[[str], Any]] | None = None,
) -> None:
    """One flag per field of the dataclass ``cls`` (but ``skip``; only ``only`` when given), in groups by the
    class that declares the field (``RunSpec``'s own, then those it has from ``TrainConfig``). ``parsers``
    replaces the type parser of a field (e.g. a device name checked when it is read)."""
    hints = typing.get_type_hints(cls)
    chosen = _fields(cls, skip, only)
    for owner in (c for c in cls.__mro__ if dataclasses.is_dataclass(c)):
        own = [f for f in chosen if f.name in vars(owner).get("__annotations__", {})]
        if own:
            group = parser.add_argument_group(f"{owner.__name__} fields")
            for f in own:
                group.add_argument(flag(f), **_argument(f, hints[f.name], (parsers or {}).get(f.name)))


def field_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s fields that ``args`` holds (a repeated ``KEY=VALUE`` flag as a dict)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            out[f.name] = dict(value) if typing.get_origin(_kind(hints[f.name])) is dict else value
    return out
