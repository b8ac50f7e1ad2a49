"""benchmarks/authors_3ep.py: the paper-3ep seeds against the authors' train.py, its statistics written out."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from scipy import stats

from benchmarks.authors_3ep import AUTHORS, MODEL_LABEL, compare, main, welch
from locallearn.bench.suites import SUITES
from locallearn.store import ResultsStore


def test_welch_is_the_written_out_formula_and_scipys():
    ma, sa, na, mb, sb, nb = 83.9, 0.3, 3, 84.49, 0.93, 3
    va, vb = sa ** 2 / na, sb ** 2 / nb
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))  # Welch-Satterthwaite
    got = welch(ma, sa, na, mb, sb, nb)
    assert got[:2] == pytest.approx((t, df)) and got[2] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert got[2] == pytest.approx(stats.ttest_ind_from_stats(ma, sa, na, mb, sb, nb, equal_var=False).pvalue)


def test_the_verdict_follows_the_numbers():
    assert compare([84.2, 84.0, 84.4], AUTHORS["e2e"])["verdict"].startswith("within 0.5 point: -0.29 pt")
    noisy = compare([83.2, 83.5, 83.4], AUTHORS["e2e"])  # -1.12 pt, but their sd is 0.93 over 3 seeds
    assert noisy["verdict"].startswith("seed noise") and noisy["p"] > 0.05
    gap = compare([82.0, 82.1, 81.9], AUTHORS["e2e"])
    assert gap["verdict"].startswith("a real gap") and gap["p"] <= 0.05
    # one seed of theirs: is it one more draw of our spread? t = d / (s sqrt(1 + 1/n)), n - 1 df
    single = compare([83.0, 83.2, 83.1], AUTHORS["predsim"])
    t = (83.1 - 84.28) / (0.1 * math.sqrt(1 + 1 / 3))
    assert single["p"] == pytest.approx(2 * stats.t.sf(abs(t), 2)) and single["verdict"].startswith("a real gap")
    assert compare([], AUTHORS["e2e"])["verdict"] == "no finished seed yet"
    assert compare([83.0], AUTHORS["e2e"])["verdict"].startswith("undecided")


def test_cells_are_counted_per_recipe_and_others_listed(tmp_path):
    current = [c for c in SUITES["paper-3ep"].cells() if c.model_label == MODEL_LABEL]
    records = [{"key": c.key, "model_label": c.model_label, "rule": c.spec.rule, "seed": c.spec.seed,
                "test_accuracy": [0.5, 0.8400 + 0.001 * c.spec.seed]} for c in current]
    predsim = next(c for c in current if c.spec.rule == "predsim")
    assert predsim.spec.head_kw == {"zero_weight": True}
    plain = dataclasses.replace(predsim, spec=dataclasses.replace(predsim.spec, head_kw={}))  # the earlier recipe
    records += [{**records[0], "key": plain.key, "rule": "predsim", "seed": 0, "test_accuracy": [0.5, 0.8431]},
                {**records[0], "key": "older code", "test_accuracy": [0.5, 0.7]}]
    ResultsStore(tmp_path / "cells.json", kind="runs").append(records)
    assert main(["--results", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "comparison.json").read_text())
    rows = {(r["rule"], r["recipe"].split(" ")[0]): r for r in out["rows"]}
    assert [acc for _, acc in rows["e2e", "as"]["seeds"]] == pytest.approx([84.0, 84.1, 84.2])
    assert rows["e2e", "as"]["mean"] == pytest.approx(84.1) and rows["predsim", "zero-weight"]["n"] == 3
    assert rows["predsim", "nn.Linear"]["n"] == 1 and rows["predsim", "nn.Linear"]["mean"] == pytest.approx(84.31)
    assert len(out["not_counted"]) == 1 and "70.00 %" in out["not_counted"][0]
    assert "| e2e | as train.py | 84.10 ± 0.10 (3: 84.00, 84.10, 84.20)" in (tmp_path / "comparison.md").read_text()
