"""Benchmark entry points: ``python -m benchmarks SUITE``; the harness lives in ``locallearn.bench``."""
