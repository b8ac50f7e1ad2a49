"""``python -m benchmarks`` and ``python -m theory`` run from any directory: their default output folders are the
repository's, not the current directory's (issue 20, item 8)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import locallearn
from locallearn.bench.main import build_parser
from locallearn.bench.programs import PROGRAMS, build_parser as program_parser

REPOSITORY = Path(locallearn.__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_default_output_folders_are_the_repositorys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert program_parser("cuts", importlib.import_module(PROGRAMS["cuts"]), "python -m benchmarks").parse_args([]).out == str(
        REPOSITORY / "benchmarks" / "results" / "cuts")
    assert "benchmarks/results/SUITE" in " ".join(build_parser().format_help().split())


@pytest.mark.slow
def test_benchmarks_readme_check_and_theory_help_from_another_directory(tmp_path):
    check = _run(["-m", "benchmarks", "readme", "--check"], tmp_path)
    assert check.returncode == 0, check.stderr
    assert "every generated block matches" in check.stdout
    theory = _run(["-m", "theory", "--help"], tmp_path)
    assert theory.returncode == 0, theory.stderr
    assert "RESULTS.md" in theory.stdout
    assert not any(tmp_path.iterdir())  # nothing written where it was run
