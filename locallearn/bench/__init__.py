"""The benchmark harness: suites of rules x schedules x models x datasets x seeds, resumable, measured
for accuracy of every exit, time and memory, written as CSV, Markdown (with published anchors) and plots;
programs (``locallearn.bench.programs``) for the benchmarks that are not a training grid, with the same
resumable store, provenance and report shape; and the READMEs' generated numbers (``readme``).

Run it as ``locallearn bench NAME`` or ``python -m benchmarks NAME`` (see benchmarks/README.md).

Example:
    >>> from locallearn.bench import SUITES, SavedTensorMeter
    >>> {"quick", "engine", "fashion", "bio"} <= set(SUITES)
    True
"""

from locallearn.bench.cell import run_cell, step_memory
from locallearn.bench.measure import SavedTensorMeter, peak_rss_bytes
from locallearn.bench.runner import open_store, run_suite
from locallearn.bench.suites import SUITES, Cell, Suite
from locallearn.provenance import load_average

__all__ = ["SUITES", "Cell", "SavedTensorMeter", "Suite", "load_average", "peak_rss_bytes", "open_store", "run_cell",
           "run_suite", "step_memory"]
