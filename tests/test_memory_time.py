"""The memory-and-time program: local with K modules against e2e and e2e + checkpointing over the same K."""

from __future__ import annotations

import pytest
import torch

from locallearn.bench.programs import memory_time


def test_every_k_keeps_the_same_layers():
    for model in ("mlp", "cnn"):
        _, build = memory_time.builder(model)
        counts = {k: sum(p.numel() for s in build(k).stages for p in s.block.parameters()) for k in (1, 4, 16)}
        assert len(set(counts.values())) == 1, (model, counts)  # only the heads differ with K
    with pytest.raises(ValueError, match="Unknown model 'vgg'. Known models: mlp, cnn"):
        memory_time.builder("vgg")


def test_measure_gives_the_three_columns_and_local_holds_least():
    cell = {"model": "cnn", "stages": [4], "batch_size": 4, "steps": 1, "rounds": 1, "device": "cpu"}
    record = {"cell": cell, **memory_time.measure(cell)}
    rows = {(r["rule"], r["stages"]): r for r in record["rows"]}
    assert set(rows) == {("e2e", 1), ("e2e:checkpoint=true", 4), ("local", 4)}
    e2e, ckpt, local = rows[("e2e", 1)], rows[("e2e:checkpoint=true", 4)], rows[("local", 4)]
    # exact counts: checkpointing keeps the 4 segment inputs and one segment's recomputation, local one stage's graph
    assert local["saved_bytes"] < ckpt["saved_bytes"] < 0.6 * e2e["saved_bytes"]
    assert all(r["step_s"] > 0 for r in rows.values())
    lines = memory_time.table(record)
    assert lines[2].startswith("| – | e2e |") and len(lines) == 5
    assert memory_time.verdicts(record)[0].startswith("K = 4: local's saved bytes")
