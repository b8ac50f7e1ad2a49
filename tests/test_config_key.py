"""The configuration key holds the data: two subsets of one data set are two configurations, never one."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib
import warnings

import torch

from locallearn import data
from locallearn.compare import NOT_IN_KEY, compare, config_key, data_notes, format_table, summarise
from locallearn.experiment import RunSpec

fp = importlib.import_module("locallearn.data.fingerprint")  # the package exports the function of that name
BASE = RunSpec(data="synthetic", widths=(8,), epochs=1, batch_size=64, progress=False)


def _sha256(x: torch.Tensor, y: torch.Tensor) -> str:
    """The content hash written out: dtype and shape, then the raw bytes, of the inputs, then of the labels."""
    h = hashlib.sha256()
    for t in (x, y):
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def _subset(ds: data.Dataset, rows: slice) -> data.Dataset:
    return dataclasses.replace(ds, x_train=ds.x_train[rows], y_train=ds.y_train[rows])


def test_runs_on_two_subsets_of_one_data_set_are_two_configurations():
    full = data.load("synthetic")
    first, second = _subset(full, slice(0, 200)), _subset(full, slice(200, 400))  # same name, same size
    records = [*compare(BASE, rules=["local"], seeds=[0], data=first), *compare(BASE, rules=["local"], seeds=[1], data=second)]
    rows = summarise(records)
    assert len(rows) == 2 and [r["seeds"] for r in rows] == [1, 1]
    assert [r["data_content"]["train_sha256"] for r in rows] == [_sha256(first.x_train, first.y_train),
                                                                  _sha256(second.x_train, second.y_train)]
    assert rows[0]["data_content"]["train"] == rows[1]["data_content"]["train"] == 200
    # the control: the same subset under two seeds is one configuration with two seeds
    again = [*compare(BASE, rules=["local"], seeds=[0], data=first), *compare(BASE, rules=["local"], seeds=[1], data=first)]
    assert [r["seeds"] for r in summarise(again)] == [1 + 1]


def test_a_train_size_subset_and_the_full_split_are_two_configurations():
    records = compare(BASE, rules=["local"], seeds=[0], models=["mlp:train_size=100", "mlp"])
    rows = summarise(records)
    assert len(rows) == 2
    full = data.load("synthetic")
    assert rows[0]["data_content"] == {"name": "synthetic", "train": 100, "val": len(full.x_val), "test": len(full.x_test),
                                       "train_sha256": _sha256(full.x_train[:100], full.y_train[:100])}
    assert rows[1]["data_content"]["train_sha256"] == _sha256(full.x_train, full.y_train)
    # the key's hash is the one the trainer records for the data it trained on
    assert [r["config"]["data_fingerprint"]["train_sha256"] for r in records] == [
        r["data_content"]["train_sha256"] for r in rows]


def test_the_key_is_every_field_but_the_seed_and_what_changes_no_result():
    key = config_key(BASE, data.load("synthetic"))
    assert set(key) == {f.name for f in dataclasses.fields(RunSpec)} - set(NOT_IN_KEY) | {"data_content"}
    assert set(NOT_IN_KEY) == {"seed", "progress", "checkpoint_path", "data_dir"}
    assert config_key(dataclasses.replace(BASE, seed=5, progress=True, checkpoint_path="c.pt", data_dir="/x")) == config_key(BASE)
    for change in ({"lr": 0.01}, {"momentum": 0.5}, {"activation": "tanh"}, {"train_size": 10}, {"val_size": 0},
                   {"eval_size": 5}, {"head_kw": {"hidden": (4,)}}, {"model_kw": {"batch_norm": True}}):
        assert config_key(dataclasses.replace(BASE, **change)) != config_key(BASE), change


def test_the_training_split_is_hashed_once_per_loaded_data_set(monkeypatch):
    ds = data.load("synthetic")
    calls = []
    real = fp.tensor_sha256
    monkeypatch.setattr(fp, "tensor_sha256", lambda *t: calls.append(len(t[0])) or real(*t))
    first = config_key(BASE, ds)
    assert config_key(BASE, ds) == first and calls == [len(ds.x_train)]  # the second key reads the hash back
    config_key(dataclasses.replace(BASE, train_size=50), ds)
    assert calls == [len(ds.x_train), 50]
    ds.x_train[0, 0] += 1.0  # changed in place: hashed again, and the key changes
    assert config_key(BASE, ds) != first and calls == [len(ds.x_train), 50, len(ds.x_train)]


def test_records_without_a_data_hash_are_read_as_unknown_and_said_so():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = compare(BASE, rules=["local", "e2e"], seeds=[0])
    old = [{**r, "key": {k: v for k, v in r["key"].items() if k != "data_content"}} for r in records[:1]]  # as written before
    rows = summarise([*old, *records])
    full = data.load("synthetic")
    known = f"data_content=synthetic {len(full.x_train)} {_sha256(full.x_train, full.y_train)[:8]}"
    assert [r["label"] for r in rows] == ["local@simultaneous data_content=unknown", f"local@simultaneous {known}",
                                          f"e2e@simultaneous {known}"]
    assert rows[0]["data_content"] is None and rows[1]["data_content"] is not None
    (note,) = data_notes(rows)
    assert note.startswith("Data content unknown (no hash of the training split in the key) for 1 of 3 configurations")
    assert data_notes(rows[1:]) == []


# --- labels and columns name every field that varies ---


def test_an_lr_sweep_gives_two_labelled_rows_and_an_lr_column_in_the_table_and_the_csv(tmp_path):
    from locallearn.compare_report import write_outputs

    records = compare(BASE, rules=["local"], seeds=[0], models=["mlp:lr=0.001", "mlp:lr=0.01"])
    rows = summarise(records)
    assert [r["label"] for r in rows] == ["local@simultaneous lr=0.001", "local@simultaneous lr=0.01"]
    assert [r["varying"] for r in rows] == [{"lr": "0.001"}, {"lr": "0.01"}]
    header, _, *lines = format_table(rows).splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:5] == ["configuration", "model", "data", "lr", "epochs"]
    assert [[c.strip() for c in line.strip("|").split("|")][3] for line in lines] == ["0.001", "0.01"]
    write_outputs(records, tmp_path / "r.json")
    with open(tmp_path / "r.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert "lr" in table[0] and {(t["label"], t["lr"]) for t in table} == {
        ("local@simultaneous lr=0.001", "0.001"), ("local@simultaneous lr=0.01", "0.01")}
    assert "lr=0.01" in (tmp_path / "r.md").read_text()


def test_activation_appears_in_labels_when_it_varies_and_nothing_when_nothing_does():
    records = compare(BASE, rules=["local", "e2e"], seeds=[0], models=["mlp:activation=tanh", "mlp"])
    assert [r["label"] for r in summarise(records)] == [
        "local@simultaneous activation=tanh", "e2e@simultaneous activation=tanh",
        "local@simultaneous activation=relu", "e2e@simultaneous activation=relu"]
    plain = compare(BASE, rules=["local", "e2e"], seeds=[0])
    assert [r["label"] for r in summarise(plain)] == ["local@simultaneous", "e2e@simultaneous"]
    assert "activation" not in format_table(summarise(plain)).splitlines()[0]


def test_two_subsets_are_told_apart_in_labels_by_their_content():
    full = data.load("synthetic")
    first, second = _subset(full, slice(0, 200)), _subset(full, slice(200, 400))
    records = [*compare(BASE, rules=["local"], seeds=[0], data=first), *compare(BASE, rules=["local"], seeds=[0], data=second)]
    labels = [r["label"] for r in summarise(records)]
    assert labels == [f"local@simultaneous data_content=synthetic 200 {_sha256(d.x_train, d.y_train)[:8]}" for d in (first, second)]
