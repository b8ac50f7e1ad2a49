"""Docstring examples run once: pytest's ``--doctest-modules`` over ``locallearn/`` (pyproject's
``addopts`` and ``testpaths``) runs every module's examples; no test runs them a second time. This file
checks that set-up, and that the modules whose examples are their documentation have some."""

from __future__ import annotations

import doctest
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WITH_EXAMPLES = [
    "locallearn.engine", "locallearn.net", "locallearn.distributed", "locallearn.testing",
    "locallearn.schedules.base", "locallearn.schedules.decoupled", "locallearn.schedules.pipeline",
    "locallearn.schedules._pipeline_supervisor", "locallearn.schedules._pipeline_worker",
    *(f"locallearn.feedback.{m}" for m in ("functional", "fa", "sign", "dfa", "convert")), "locallearn.feedback",
    *(f"locallearn.info.{m}" for m in ("_checks", "_estimator", "binning", "conformance", "hsic", "kde", "ksg", "neural", "plane")),
]


def test_the_suite_runs_the_package_doctests():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split() and "locallearn" in options["testpaths"]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_the_module_has_docstring_examples(name):
    examples = sum(len(test.examples) for test in doctest.DocTestFinder().find(importlib.import_module(name)))
    assert examples > 0, f"{name} has no docstring example"
