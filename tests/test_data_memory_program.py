"""The data-loading memory program measures a real load in a fresh process and records what it returned."""

from __future__ import annotations

import pytest

from locallearn.bench.main import main
from locallearn.store import read_store


@pytest.mark.slow
def test_data_memory_program_loads_each_layout_in_a_fresh_process(tmp_path):
    assert main(["data_memory", "--n-train", "300", "--n-test", "40", "--val-size", "30", "--out", str(tmp_path)]) == 0
    records = read_store(tmp_path).records
    assert [r["cell"]["layout"] for r in records] == ["python", "binary"]
    for r in records:
        assert r["sizes"] == [270, 30, 40]
        assert r["tensor_bytes"] == 340 * 3 * 32 * 32 * 4 + 340 * 8  # float32 images + int64 labels
        assert r["peak_growth_bytes"] > 0 and r["growth_over_tensors"] == r["peak_growth_bytes"] / r["tensor_bytes"]
    assert "| python | 270 / 30 / 40 |" in (tmp_path / "results.md").read_text()
