"""Peak memory of loading a full-size CIFAR-10 from disk, against the bytes of the float32 tensors it returns.

Command: ``python -m benchmarks data_memory``. For each on-disk layout (python pickles, binary) a
CIFAR-10-shaped fixture of the real size (50,000 training and 10,000 test random images, written by
``locallearn.data.write_cifar_fixture`` into a temporary folder) is loaded by ``locallearn.data.load``
in a fresh process; the process's peak resident memory growth over the load (``ru_maxrss`` after,
less the resident size just before) is divided by the bytes of the returned float32 train / val / test
tensors. A ratio near 1 means the loader keeps no extra full-size copy beyond the uint8 file contents
(a quarter of the float32 size) and its chunked conversion. Also the load's CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from locallearn.data import write_cifar_fixture

TITLE = "Data-loading memory"
DESCRIPTION = "Peak RSS growth of loading a full-size CIFAR-10 (python and binary layouts) over the float32 tensors returned"

_MEASURE = """
import json, resource, sys, time
import locallearn.data as data
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024
before = rss_kib()
cpu = time.process_time()
ds = data.load("cifar10", data_dir=sys.argv[1], val_size=int(sys.argv[2]))
cpu = time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
tensors = sum(t.numel() * t.element_size() for t in (ds.x_train, ds.x_val, ds.x_test, ds.y_train, ds.y_val, ds.y_test))
print(json.dumps({"rss_before_kib": before, "peak_kib": peak, "tensor_bytes": tensors, "load_cpu_s": cpu,
                  "sizes": [len(ds.x_train), len(ds.x_val), len(ds.x_test)]}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-train", type=int, default=50_000, help="training images of the fixture (CIFAR-10: 50,000)")
    parser.add_argument("--n-test", type=int, default=10_000, help="test images of the fixture (CIFAR-10: 10,000)")
    parser.add_argument("--val-size", type=int, default=5_000, help="validation images drawn from the training set")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"dataset": "cifar10", "layout": layout, "n_train": args.n_train, "n_test": args.n_test, "val_size": args.val_size}
            for layout in ("python", "binary")]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    for cell in todo:
        root = Path(tempfile.mkdtemp(prefix="ll-data-memory-"))
        try:
            write_cifar_fixture(root, n_train=cell["n_train"], n_test=cell["n_test"], layout=cell["layout"])
            file_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
            load_start = os.getloadavg()[0]
            done = subprocess.run([sys.executable, "-c", _MEASURE, str(root), str(cell["val_size"])],
                                  check=True, capture_output=True, text=True)
            measured = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(root, ignore_errors=True)
        growth = (measured["peak_kib"] - measured["rss_before_kib"]) * 1024
        add(cell, {**measured, "file_bytes": file_bytes, "peak_growth_bytes": growth,
                   "growth_over_tensors": growth / measured["tensor_bytes"], "load_1min": [load_start, os.getloadavg()[0]]})


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    mib = 1024 * 1024
    lines = [
        "Each load runs in a fresh process; peak growth = `ru_maxrss` after the load less the resident size just "
        "before it (after the imports). The fixture holds random bytes of the real size and format.",
        "",
        "| layout | train / val / test images | files MiB | float32 + label tensors MiB | peak RSS growth MiB | growth / tensors | load CPU s | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['cell']['layout']} | {' / '.join(map(str, r['sizes']))} | {r['file_bytes'] / mib:.0f} | "
            f"{r['tensor_bytes'] / mib:.0f} | {r['peak_growth_bytes'] / mib:.0f} | {r['growth_over_tensors']:.2f} | "
            f"{r['load_cpu_s']:.1f} | {r['load_1min'][0]:.1f} |"
        )
    return lines
