"""``make gpu-check`` (``python -m locallearn.bench.gpu_check``): the CUDA tests and the memory/time
benchmark on one GPU, and a report naming the card. Designed to finish in under 8 minutes.

Runs ``pytest -m cuda tests/test_cuda.py`` (every rule's backward against CPU, no host read per batch,
AMP float16 + GradScaler, bfloat16, pinned loaders, the early-exit runner, data-parallel over gloo),
then ``python -m benchmarks memory_time --device cuda`` (peak memory there is
``torch.cuda.max_memory_allocated``, time is synchronised wall time), each under its own time limit,
and writes ``OUT/report.md`` (default ``benchmarks/results/gpu_check``). Without a GPU it says so and
exits with status 2, running nothing.

Example:
    >>> build_parser().parse_args([]).out
    'benchmarks/results/gpu_check'
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from locallearn import io
from locallearn.bench.report import write_text

TESTS_S, BENCH_S = 240, 210  # time limits of the two parts: together under 8 minutes with start-up


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m locallearn.bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/gpu_check", help="folder of the report")
    return parser


def _run(command: list[str], limit_s: int) -> tuple[int | str, float, str]:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = f"timed out after {limit_s} s", str(expired.stdout or "") + str(expired.stderr or "")
    return code, time.perf_counter() - start, output


def _models() -> str:
    from locallearn import models

    return ",".join(["mlp", "cnn", *[m for m in ("resnet32",) if m in models.names()]])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); nothing was run.", file=sys.stderr)
        return 2
    out = Path(args.out)
    card = torch.cuda.get_device_properties(0)
    tests = _run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "-rs", "tests/test_cuda.py"],
                 TESTS_S)
    bench_command = [sys.executable, "-m", "benchmarks", "memory_time", "--device", "cuda", "--models", _models(),
                     "--steps", "5", "--out", str(out / "memory_time")]
    bench = _run(bench_command, BENCH_S)
    lines = [
        "# GPU check", "",
        f"Card: **{card.name}** ({card.total_memory / 2**30:.0f} GiB, compute capability {card.major}.{card.minor}); "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", "",
        "Command: `make gpu-check` (`python -m locallearn.bench.gpu_check`).", "",
        f"## CUDA tests: exit status {tests[0]} in {tests[1]:.0f} s", "",
        "`python -m pytest -q -m cuda tests/test_cuda.py`", "", "```", tests[2].strip()[-3000:], "```", "",
        f"## Memory and time per step on the GPU: exit status {bench[0]} in {bench[1]:.0f} s", "",
        f"`{' '.join(['python', *bench_command[1:]])}`: [memory_time/results.md](memory_time/results.md)", "",
        f"Machine: `{io.machine()}`", "",
    ]
    write_text(out / "report.md", "\n".join(lines))
    print("\n".join(lines))
    return 0 if tests[0] == 0 and bench[0] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
