"""The non-grid benchmarks as programs of the harness: resumable cells, provenance, one report shape, and
their committed results regenerate from the store alone (``--report-only``)."""

from __future__ import annotations

import shutil

import pytest

from locallearn.bench import readme
from locallearn.bench.main import main
from locallearn.bench.programs import PROGRAMS
from locallearn.store import read_store

RESULTS = readme.ROOT / readme.RESULTS


def test_a_program_runs_resumes_and_records_its_provenance(tmp_path, capsys):
    args = ["ksg_speed", "--n", "300", "--n-small", "200", "--dim", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    cells = read_store(tmp_path).records
    assert len(cells) == 1 and cells[0]["cell"] == {"program": "ksg_speed", "n": 300, "n_small": 200, "dim": 2, "k": 3}
    assert cells[0]["estimate_gap_nats"] < 1e-9  # the KD-tree estimator equals the naive one on the same data
    runs = read_store(tmp_path).runs
    assert runs[0]["command"] == "python -m benchmarks " + " ".join(args) and runs[0]["git"] and runs[0]["machine"]
    report = (tmp_path / "results.md").read_text()
    assert report.startswith("# KSG speed") and "## Provenance" in report
    assert main(args) == 0  # finished: nothing runs again
    assert len(read_store(tmp_path).runs) == 1
    assert main(["ksg_speed", "--n", "400", "--out", str(tmp_path), "--report-only"]) == 2  # other settings: no cells
    assert "No finished cells of 'ksg_speed'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_committed_results_regenerate_from_their_store(name, tmp_path):
    out = tmp_path / name
    shutil.copytree(RESULTS / name, out)
    before = (out / "results.md").read_text()
    (out / "results.md").unlink()
    assert main([name, "--report-only", "--out", str(out)]) == 0
    after = (out / "results.md").read_text()
    assert after == before.replace(str(RESULTS / name), str(out))
    notes = out / "notes.md"
    assert not notes.is_file() or notes.read_text() in after  # the hand-written reading stays with the numbers


def test_infoplane_program_end_to_end_on_a_short_run(tmp_path):
    assert main(["infoplane", "--epochs", "1", "--seeds", "0", "--out", str(tmp_path)]) == 0
    cells = read_store(tmp_path).records
    assert len(cells) == 4  # tanh / relu x local / e2e
    assert {p["stage"] for p in cells[0]["points"]["kde"]} == {1, 2, 3, 4, 5}  # stages numbered from 1
    assert cells[0]["hy_bits"] == pytest.approx(3.32, abs=0.01)  # ten nearly balanced digit classes
    for name in ("panel_binning_s0.png", "panel_kde_s0.png", "tanh_local_kde_s0.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| tanh | local | binning | 1 |" in (tmp_path / "results.md").read_text()


def test_locallearn_bench_passes_a_program_its_own_options(tmp_path, capsys):
    from locallearn.cli import main as cli_main

    assert cli_main(["bench", "ksg_speed", "--n", "300", "--n-small", "200", "--dim", "2", "--out", str(tmp_path)]) == 0
    runs = read_store(tmp_path).runs
    assert runs[0]["command"].startswith("locallearn bench ksg_speed --n 300")
