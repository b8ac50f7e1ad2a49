"""``locallearn rules`` / ``schedules`` / ``heads`` / ``policies`` / ``estimators``, and defaults in ``--help``."""

from __future__ import annotations

import json

import pytest

from locallearn._registry import Registry
from locallearn.cli import main
from locallearn.commands.listing import LISTINGS, describe, registry


def test_rules_lists_predsim_beta_with_its_default(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("\npredsim  "):].split("\n")
    assert "    beta: float = 0.99" in block[2:4]
    for name in registry("rules").names():
        assert f"{name}  " in out


@pytest.mark.parametrize("kind", list(LISTINGS))
def test_every_registered_name_is_listed_with_its_parameters(kind, capsys):
    assert main([kind, "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    reg = registry(kind)
    assert sorted(listed) == reg.names()
    for name, entry in listed.items():
        assert entry["description"] and entry["description"] != "(no description)", name
        if kind not in ("heads", "datasets"):  # heads need an input shape, datasets load files; the others build from defaults
            built = reg.create(name)
            for p in entry["parameters"]:  # the listed default is the one an instance gets
                if hasattr(built, p["name"]):
                    assert json.loads(json.dumps(getattr(built, p["name"]), default=repr)) == p["default"], (name, p)


@pytest.mark.parametrize("kind", ["rules", "schedules", "heads", "policies", "estimators"])
def test_every_registered_name_states_its_source_in_the_listing_and_its_docstring(kind, capsys):
    import re
    import sys

    assert main([kind, "--json"]) == 0
    for entry in json.loads(capsys.readouterr().out):
        cls = registry(kind).get(entry["name"])
        source = cls.__dict__.get("source", "")  # its own, not one inherited from a parent class
        assert source and entry["source"] == source, entry["name"]
        assert re.search(r"\b(19|20)\d\d\b", source) or source.startswith("no single paper"), entry["name"]
        docs = (cls.__doc__ or "") + (sys.modules[cls.__module__].__doc__ or "")
        assert "Source:" in docs or source.split(",")[0] in docs, entry["name"]  # the docstring says it too


def test_a_newly_registered_class_is_listed_without_an_edit():
    reg = Registry("widget")

    @reg.register("spinner")
    class Spinner:
        """Spins.

        More words that are not the summary."""

        def __init__(self, *, speed: float = 2.5, label: str) -> None:
            self.speed, self.label = speed, label

    assert describe(reg, "spinner").splitlines() == ["spinner  Spins.", "    source: (no source stated)", "    speed: float = 2.5",
                                                     "    label: str (required)"]


def test_unknown_name_is_a_clean_error(capsys):
    assert main(["schedules", "nope"]) == 2
    assert "Unknown schedule 'nope'. Known schedules:" in capsys.readouterr().err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: local,e2e,joint)" in out and "(default: 3)" in out
