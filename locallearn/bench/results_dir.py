"""Where committed benchmark results live: ``benchmarks/results`` of the repository this package runs from,
whatever the current directory, so ``python -m benchmarks NAME`` writes to (and reports from) the same folder
from anywhere.

Example:
    >>> results_folder("quick").parts[-3:]
    ('benchmarks', 'results', 'quick')
    >>> (REPOSITORY / "locallearn" / "bench" / "results_dir.py").is_file()
    True
"""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
RESULTS = REPOSITORY / "benchmarks" / "results"


def results_folder(name: str) -> Path:
    """The default output folder of suite or program ``name``."""
    return RESULTS / name
