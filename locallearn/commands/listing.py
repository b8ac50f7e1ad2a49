"""``locallearn rules`` (and ``schedules``, ``heads``, ``policies``, ``estimators``, ``models``, ``datasets``):
every registered name with its source (the class's ``source`` attribute: paper, year, authors' code), its hyper-parameters,
their defaults and a one-line description, read from the registry, the constructor's signature and the
class docstring (so a newly registered class is listed without an edit).

Example:
    >>> from locallearn.rules import RULES
    >>> print(describe(RULES, "predsim"))  # doctest: +NORMALIZE_WHITESPACE
    predsim  Prediction (cross-entropy of the head) plus similarity matching of projected features.
        source: Nøkland & Eidnes, ICML 2019, 'Training Neural Networks with Local Error Signals' (anokland/local-loss)
        beta: float = 0.99
        sim_dim: int | None = None
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from typing import Any

from locallearn._registry import Registry

# subcommand -> (module holding the registry, its name, how the CLI passes options)
LISTINGS = {
    "rules": ("locallearn.rules", "RULES", "--rule-opt KEY=VALUE, or a compare entry RULE:KEY=VALUE"),
    "schedules": ("locallearn.schedules", "SCHEDULES", "--schedule-opt KEY=VALUE, or a compare entry @SCHEDULE:KEY=VALUE"),
    "heads": ("locallearn.heads", "HEADS", "--head NAME (the net supplies the input shape and classes)"),
    "policies": ("locallearn.exits", "EXIT_POLICIES", "locallearn exits --policy NAME"),
    "estimators": ("locallearn.info", "ESTIMATORS", "locallearn.info.ESTIMATORS.create(NAME, KEY=VALUE)"),
    "models": ("locallearn.models", "MODELS", "--model NAME --model-opt KEY=VALUE"),
    "datasets": ("locallearn.data", "DATASETS", "--data NAME --data-dir DIR"),
}


def registry(kind: str) -> Registry:
    """The registry a listing subcommand shows (its module imported, so every built-in class is registered)."""
    module, name, _ = LISTINGS[kind]
    return getattr(importlib.import_module(module), name)


def hyper_parameters(cls: type) -> list[dict[str, Any]]:
    """The keyword-only constructor parameters of ``cls``: name, type annotation (as written) and default."""
    out = []
    for p in inspect.signature(cls).parameters.values():
        if p.kind is p.KEYWORD_ONLY:
            annotation = "" if p.annotation is p.empty else (p.annotation if isinstance(p.annotation, str) else
                                                              getattr(p.annotation, "__name__", str(p.annotation)))
            out.append({"name": p.name, "type": annotation,
                        "default": None if p.default is p.empty else p.default, "required": p.default is p.empty})
    return out


def summary_line(cls: type) -> str:
    """The first paragraph of the class docstring, on one line."""
    paragraph = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
    return " ".join(paragraph.split()) or "(no description)"


def source_of(cls: type) -> str:
    """The class's ``source`` (paper, year, authors' code), or a note that it states none."""
    return getattr(cls, "source", "") or "(no source stated)"


def describe(reg: Registry, name: str) -> str:
    """One entry: the name and description, its source, then one line per hyper-parameter with its default."""
    cls = reg.get(name)
    lines = [f"{name}  {summary_line(cls)}", f"    source: {source_of(cls)}"]
    for p in hyper_parameters(cls):
        typed = f": {p['type']}" if p["type"] else ""
        lines.append(f"    {p['name']}{typed}" + (" (required)" if p["required"] else f" = {p['default']!r}"))
    if len(lines) == 2:
        lines.append("    (no hyper-parameters)")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    for kind, (_, _, usage) in LISTINGS.items():
        p = subparsers.add_parser(kind, help=f"list the registered {kind} with their hyper-parameters and defaults",
                                  description=f"Every registered name with its hyper-parameters (set with {usage}), "
                                  "their defaults, the source (paper, year, authors' code) and a one-line description.")
        p.add_argument("names", nargs="*", help="only these names (default: all)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.set_defaults(run=run, listing=kind)


def run(args: argparse.Namespace) -> int:
    reg = registry(args.listing)
    names = args.names or reg.names()
    for name in names:
        reg.get(name)  # an unknown name lists the known ones
    if args.json:
        print(json.dumps([{"name": n, "description": summary_line(reg.get(n)), "source": source_of(reg.get(n)),
                           "parameters": hyper_parameters(reg.get(n))}
                          for n in names], indent=2, default=repr))
    else:
        print("\n".join(describe(reg, n) for n in names))
    return 0
