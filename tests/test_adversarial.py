"""Adversarial input, kept fixed (issue 12): bad files, bad paths, bad checkpoints, bad configs.

Every case here once failed silently or with a trace; each now gets one clear line.
"""

from __future__ import annotations

import os
import re
import signal
import warnings
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn import cli, io
from locallearn.data import Dataset, IdxFormatError, read_idx
from locallearn.divergence import DivergenceWarning
from locallearn.exits import EXIT_POLICIES, Thresholds

TRAIN = ["train", "--data", "synthetic", "--widths", "16,16", "--no-progress"]


def _one_line_error(capsys, code: int, *, expected_code: int = 2) -> str:
    """The command's stderr, checked to be one line and no trace."""
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "run.pt"
    assert cli.main([*TRAIN, "--epochs", "2", "--checkpoint", str(path)]) == 0
    return path


def _flip_tensor_bytes(source: Path, target: Path, count: int = 40) -> None:
    """Copy ``source`` to ``target`` with ``count`` bytes inverted in the middle of its largest tensor record."""
    with zipfile.ZipFile(source) as archive:
        tensors = [info for info in archive.infolist() if "/data/" in info.filename]  # not data.pkl, the pickle
        record = max(tensors, key=lambda info: info.file_size)
    raw = bytearray(source.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[record.header_offset + 26 : record.header_offset + 30])
    start = record.header_offset + 30 + name_len + extra_len + record.file_size // 2 - count // 2
    raw[start : start + count] = bytes(b ^ 0xFF for b in raw[start : start + count])
    target.write_bytes(bytes(raw))


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
    return [t for item in items for t in _tensors(item)]


# -- bad checkpoints -------------------------------------------------------------------------


@pytest.mark.slow
def test_flipped_bytes_in_a_tensor_record_are_detected(checkpoint, tmp_path, capsys):
    bad = tmp_path / "flipped.pt"
    _flip_tensor_bytes(checkpoint, bad)
    damaged, intact = (_tensors(torch.load(p, weights_only=True)) for p in (bad, checkpoint))  # torch alone loads it
    assert sum(not torch.equal(a, b) for a, b in zip(damaged, intact)) == 1
    with pytest.raises(ValueError, match=r"flipped.pt is corrupt: its contents do not match the checksum"):
        io.load_checkpoint(bad)
    err = _one_line_error(capsys, cli.main([*TRAIN, "--epochs", "2", "--checkpoint", str(bad), "--resume"]))
    assert "is corrupt" in err
    err = _one_line_error(capsys, cli.main(["exits", "--checkpoint", str(bad), "--out", str(tmp_path / "exits")]))
    assert "is corrupt" in err


def test_a_changed_number_outside_the_tensors_is_detected_too(tmp_path):
    path = tmp_path / "c.pt"
    io.save_checkpoint(path, {"w": torch.ones(3), "history": [{"loss": 0.25}]})
    payload = torch.load(path, weights_only=True)
    payload["history"][0]["loss"] = 0.5
    torch.save(payload, path)  # keeps the old checksum
    with pytest.raises(ValueError, match="is corrupt"):
        io.load_checkpoint(path)


@pytest.mark.parametrize(
    "payload, message",
    [
        (torch.zeros(3), "is not a locallearn checkpoint: it holds a Tensor"),
        ({"format": 1}, "has no checksum"),
        ([1, 2], "is not a locallearn checkpoint: it holds a list"),
    ],
    ids=["bare-tensor", "format-only", "list"],
)
def test_malformed_checkpoints_that_unpickle_get_one_line(tmp_path, capsys, synthetic, payload, message):
    path = tmp_path / "odd.pt"
    torch.save(payload, path)
    trainer = ll.Trainer(ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes), synthetic)
    with pytest.raises(ValueError, match=message):
        trainer.load_checkpoint(path)
    assert message in _one_line_error(capsys, cli.main([*TRAIN, "--checkpoint", str(path), "--resume"]))
    assert message in _one_line_error(capsys, cli.main(["exits", "--checkpoint", str(path), "--out", str(tmp_path / "x")]))


def test_a_checkpoint_holding_code_is_refused_in_one_line_without_unsafe_advice(tmp_path, capsys):
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), path)
    with pytest.raises(ValueError) as info:
        io.load_checkpoint(path)
    message = str(info.value)
    assert "holds a Python object (torch.nn.modules.linear.Linear)" in message
    assert "\n" not in message and "weights_only" not in message and info.value.__cause__ is None
    err = _one_line_error(capsys, cli.main(["exits", "--checkpoint", str(path), "--out", str(tmp_path / "x")]))
    assert "weights_only" not in err


def test_a_folder_given_as_a_checkpoint_is_named_a_folder(tmp_path):
    with pytest.raises(ValueError, match="is a folder; expected a checkpoint file"):
        io.load_checkpoint(tmp_path)


def test_a_required_entry_of_the_wrong_type_is_named(tmp_path):
    path = tmp_path / "c.pt"
    io.save_checkpoint(path, {"net": [1, 2]})
    with pytest.raises(ValueError, match="its 'net' entry is a list"):
        io.load_checkpoint(path, required={"net": dict})
    with pytest.raises(ValueError, match="its 'epoch' entry is missing"):
        io.load_checkpoint(path, required={"epoch": int})


# -- resuming with another configuration ------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        (["--lr", "0.5"], "train.lr is 0.001 there, 0.5 now"),
        (["--seed", "1"], "train.seed is 0 there, 1 now"),
        (["--batch-size", "16"], "train.batch_size is 32 there, 16 now"),
        (["--activation", "tanh"], "net.architecture is"),
        (["--optimizer", "sgd"], "train.optimizer is 'adam' there, 'sgd' now"),
        (["--lr-schedule", "cosine"], "train.lr_schedule is 'none' there, 'cosine' now"),
        (["--epochs", "1"], "train.epochs is 2 there, 1 now (a resumed run may only add epochs)"),
        (["--rule", "joint"], "rule.name is 'local' there, 'joint' now"),
    ],
)
def test_resume_refuses_a_changed_config_naming_the_field(checkpoint, tmp_path, capsys, change, field):
    before = checkpoint.read_bytes()
    out = tmp_path / "r.json"
    args = [*TRAIN, "--epochs", "2", "--checkpoint", str(checkpoint), "--resume", "--out", str(out), *change]
    err = _one_line_error(capsys, cli.main(args))
    assert "was made with another configuration: " in err and field in err
    assert not out.exists() and checkpoint.read_bytes() == before


def test_more_epochs_resume_exactly_and_the_change_is_recorded(checkpoint, tmp_path):
    resumed, straight = tmp_path / "resumed.pt", tmp_path / "straight.pt"
    resumed.write_bytes(checkpoint.read_bytes())
    out = tmp_path / "r.json"
    assert cli.main([*TRAIN, "--epochs", "3", "--checkpoint", str(resumed), "--resume", "--out", str(out)]) == 0
    assert cli.main([*TRAIN, "--epochs", "3", "--checkpoint", str(straight)]) == 0
    record = io.read_json(out)
    moved = [str(checkpoint), str(resumed)]  # the copy resumes under another path: recorded, allowed
    changes = {"train.epochs": [2, 3], "train.checkpoint_path": moved, "spec.epochs": [2, 3], "spec.checkpoint_path": moved}
    assert record["config"]["resumed"] == [{"epoch": 2, "changes": changes}]
    assert record["config"]["train"]["epochs"] == 3 and len(record["history"]) == 3
    for a, b in zip(io.load_checkpoint(resumed)["net"].values(), io.load_checkpoint(straight)["net"].values()):
        assert torch.equal(a, b)


def test_more_epochs_are_refused_when_the_lr_schedule_depends_on_them(tmp_path, capsys):
    path = tmp_path / "run.pt"
    assert cli.main([*TRAIN, "--epochs", "2", "--lr-schedule", "cosine", "--checkpoint", str(path)]) == 0
    err = _one_line_error(capsys, cli.main([*TRAIN, "--epochs", "3", "--lr-schedule", "cosine", "--checkpoint", str(path), "--resume"]))
    assert "train.epochs is 2 there, 3 now (the schedule or the LR schedule depends on the epoch count" in err


def test_resume_through_the_api_names_a_changed_optimizer(synthetic, tmp_path):
    def trainer(**config):
        ll.seed_everything(0)
        net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
        return ll.Trainer(net, synthetic, config=ll.TrainConfig(epochs=1, progress=False, **config))

    trainer().save_checkpoint(tmp_path / "a.pt")
    with pytest.raises(ValueError, match="train.optimizer is 'adam' there, 'sgd' now; train.momentum"):
        trainer(optimizer="sgd", momentum=0.5).load_checkpoint(tmp_path / "a.pt")
    with pytest.raises(ValueError, match="train.lr_schedule is 'none' there, 'step' now"):
        trainer(lr_schedule="step").load_checkpoint(tmp_path / "a.pt")


def test_a_checkpoint_with_a_valid_checksum_but_missing_entries_is_named(synthetic, tmp_path):
    path = tmp_path / "c.pt"
    io.save_checkpoint(path, {"format": 1})
    trainer = ll.Trainer(ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes), synthetic)
    with pytest.raises(ValueError, match="is not a locallearn training checkpoint: its 'config' entry is missing"):
        trainer.load_checkpoint(path)


def test_a_checkpoint_whose_weights_do_not_fit_the_net_is_one_line(synthetic, tmp_path):
    def trainer():
        ll.seed_everything(0)
        return ll.Trainer(ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes), synthetic,
                          config=ll.TrainConfig(epochs=1, progress=False))

    path = tmp_path / "c.pt"
    trainer().save_checkpoint(path)
    payload = io.load_checkpoint(path)
    first = next(iter(payload["net"]))
    payload["net"][first] = torch.zeros(3, 3)
    path.unlink()
    io.save_checkpoint(path, payload)
    with pytest.raises(ValueError, match=r"c.pt does not fit this run: RuntimeError: Error\(s\) in loading state_dict"):
        trainer().load_checkpoint(path)


def test_a_run_spec_with_an_unknown_field_is_named(checkpoint, tmp_path, capsys):
    payload = io.load_checkpoint(checkpoint)
    payload["config"]["spec"]["colour"] = "blue"
    path = tmp_path / "odd.pt"
    io.save_checkpoint(path, payload)
    err = _one_line_error(capsys, cli.main(["exits", "--checkpoint", str(path), "--out", str(tmp_path / "x")]))
    assert "holds a run spec with unknown fields (colour)" in err


# -- bad files --------------------------------------------------------------------------------


def test_idx_header_whose_size_overflows_64_bits_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + (2**16).to_bytes(4, "big") * 4)  # 2**64 bytes: wraps to 0 in int64
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: .*declares shape \(65536, 65536, 65536, 65536\) "
                                             r"\(18446744073709551616 bytes of data\) but the file holds 0 bytes"):
        read_idx(path)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_results_and_checkpoints_get_the_mode_open_would_give(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        io.write_json(tmp_path / "r.json", {"a": 1})
        io.save_checkpoint(tmp_path / "c.pt", {"w": torch.ones(1)})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == mode


def _with(ds: Dataset, **changes) -> Dataset:
    fields = {k: getattr(ds, k) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    return Dataset("odd", **{**fields, **changes}, num_classes=ds.num_classes)


@pytest.mark.parametrize("split", ["val", "test", "train"])
def test_nan_inputs_in_any_split_are_refused(synthetic, split):
    x = getattr(synthetic, f"x_{split}").clone()
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=f"odd: the {split} inputs hold 1 non-finite values \\(NaN or inf\\)"):
        _with(synthetic, **{f"x_{split}": x})


def test_an_empty_training_split_is_refused(synthetic):
    with pytest.raises(ValueError, match="odd: the training split is empty"):
        _with(synthetic, x_train=synthetic.x_train[:0], y_train=synthetic.y_train[:0])


def test_a_loader_that_gives_no_training_batch_is_named(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    with pytest.raises(ValueError, match=r"The training data \(list\) gave no batch in epoch 1; expected at least one"):
        ll.train(net, [], val_data=[(synthetic.x_val, synthetic.y_val)], epochs=1, progress=False)


def test_nan_in_a_validation_loader_is_refused(synthetic):
    x = synthetic.x_val.clone()
    x[0, 0] = float("nan")
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    with pytest.raises(ValueError, match=r"The val data holds non-finite values \(NaN or inf\)"):
        ll.train(net, [(synthetic.x_train, synthetic.y_train)], val_data=[(x, synthetic.y_val)], epochs=1, progress=False)


def _idx(path: Path, array: np.ndarray) -> None:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}[array.dtype]
    dims = b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(bytes([0, 0, code, array.ndim]) + dims + array.tobytes())


def test_an_idx_folder_with_too_few_training_images_is_named(tmp_path, capsys):
    images, labels = np.zeros((5000, 28, 28), np.uint8), np.zeros(5000, np.uint8)
    for stem, array in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images[:10]), ("t10k-labels-idx1-ubyte", labels[:10])]:
        _idx(tmp_path / stem, array)
    with pytest.raises(ValueError, match="holds 5000 training images; expected more than 5000, since 5000 of them form the validation split"):
        ll.data.load("mnist", data_dir=tmp_path)
    err = _one_line_error(capsys, cli.main([*TRAIN, "--data", "mnist", "--data-dir", str(tmp_path)]))
    assert "5000 training images" in err


def test_an_all_nan_test_set_read_from_idx_files_is_refused_at_the_cli(tmp_path, capsys):
    images, labels = np.zeros((5010, 28, 28), np.uint8), (np.arange(5010) % 10).astype(np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte", images)
    _idx(tmp_path / "train-labels-idx1-ubyte", labels)
    _idx(tmp_path / "t10k-images-idx3-ubyte", np.full((20, 28, 28), np.nan, dtype=">f4"))
    _idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:20])
    err = _one_line_error(capsys, cli.main([*TRAIN, "--data", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"]))
    assert err == "locallearn train: error: mnist: the test inputs hold 15680 non-finite values (NaN or inf); expected finite numbers: clean or impute them first."


def test_a_file_given_as_the_data_folder_is_named_a_file(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="data folder .*images.gz is a file; expected a folder holding the four IDX files"):
        ll.data.load("fashion-mnist", data_dir=path)


def test_labels_of_shape_n_by_1_are_one_line(synthetic):
    with pytest.raises(ValueError, match=r"odd: the train labels have shape \(420, 1\).*flatten them with y.view\(-1\)"):
        _with(synthetic, y_train=synthetic.y_train[:, None])
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    batches = [(synthetic.x_train[:32], synthetic.y_train[:32, None])]  # a loader's batches reach the engine
    with pytest.raises(ValueError, match=r"Labels must be a 1-D tensor .* shape \(32, 1\).*Flatten them with y.view\(-1\)"):
        ll.train(net, batches, epochs=1, progress=False)


def test_a_net_with_fewer_outputs_than_classes_is_one_line(digits):
    net = ll.build_mlp(digits.input_shape, (8,), 3)
    with pytest.raises(ValueError, match="exit gives 3 scores per sample, but the labels reach 9; build the net with num_classes"):
        ll.train(net, digits, epochs=1, progress=False)


# -- runs that fail without an error ---------------------------------------------------------


def test_a_diverged_run_warns_visibly(digits, tmp_path, capsys):
    ll.seed_everything(0)
    net = ll.build_mlp(digits.input_shape, (64, 64), digits.num_classes)
    with pytest.warns(DivergenceWarning, match="the training loss reached .* the run diverged; lower the learning rate"):
        result = ll.train(net, digits, epochs=1, lr=1e6, progress=False)
    assert "diverged" in result.history[-1]["warning"]
    out = tmp_path / "r.json"
    code = cli.main(["train", "--data", "digits", "--widths", "64,64", "--epochs", "1", "--lr", "1e6", "--no-progress", "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("locallearn train: warning: the training loss reached") and "\n" not in err
    assert "diverged" in io.read_json(out)["history"][-1]["warning"]


def test_a_run_that_learned_nothing_warns_and_a_healthy_one_does_not(digits):
    ll.seed_everything(0)
    with pytest.warns(DivergenceWarning, match="is at chance level .*the run learned nothing"):
        ll.train(ll.build_mlp(digits.input_shape, (64,), digits.num_classes), digits, epochs=1, lr=1e-9, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        ll.train(ll.build_mlp(digits.input_shape, (64,), digits.num_classes), digits, epochs=2, progress=False)


# -- bad paths: refused before any training ----------------------------------------------------


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot create files in (a read-only folder; under root, sysfs)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no unwritable folder: running as root without sysfs")
    return Path("/sys/kernel")


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails the test: the commands must refuse their outputs first."""

    def fit(self, epochs=None):
        raise AssertionError("training started before the outputs were checked")

    monkeypatch.setattr(ll.Trainer, "fit", fit)


def _bad_output(case: str, tmp_path: Path, unwritable: Path) -> tuple[list[str], str]:
    """The command line of a bad-output case and the message it must get."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    ckpt = str(tmp_path / "run.pt")
    compare = ["compare", "--data", "synthetic", "--rules", "local", "--seeds", "1", "--epochs", "1", "--widths", "8", "--no-progress"]
    infoplane = ["infoplane", "--data", "synthetic", "--widths", "8", "--epochs", "1", "--no-progress"]
    return {
        "compare-read-only": ([*compare, "--out", str(unwritable / "r.json")], "--out .*r.json cannot be written: Permission denied"),
        "train-read-only": ([*TRAIN, "--out", str(unwritable / "r.json")], "--out .*r.json cannot be written: Permission denied"),
        "checkpoint-read-only": ([*TRAIN, "--checkpoint", str(unwritable / "run.pt")], "--checkpoint .*run.pt cannot be written: Permission denied"),
        "out-is-a-folder": ([*TRAIN, "--out", str(tmp_path)], "--out .* is a folder; expected a file path"),
        "train-out-empty": ([*TRAIN, "--out", ""], "--out is empty; expected a path"),
        "compare-out-empty": ([*compare, "--out", ""], "--out is empty; expected a path"),
        "out-is-the-checkpoint": ([*TRAIN, "--out", ckpt, "--checkpoint", ckpt], "--out and --checkpoint name the same file"),
        "file-above-out": ([*TRAIN, "--out", str(a_file / "r.json")], "cannot be written: .*a-file is a file, not a folder"),
        "exits-out-is-a-file": (["exits", "--checkpoint", ckpt, "--out", str(a_file)], "--out .*a-file is a file; expected a folder"),
        "exits-read-only": (["exits", "--checkpoint", ckpt, "--out", str(unwritable / "exits")], "cannot be written: Permission denied"),
        "infoplane-read-only": ([*infoplane, "--out", str(unwritable / "plane")], "cannot be written: Permission denied"),
        "bench-read-only": (["bench", "quick", "--out", str(unwritable / "bench")], "cannot be written: Permission denied"),
    }[case]


BAD_OUTPUTS = [
    "compare-read-only", "train-read-only", "checkpoint-read-only", "out-is-a-folder", "train-out-empty", "compare-out-empty",
    "out-is-the-checkpoint", "file-above-out", "exits-out-is-a-file", "exits-read-only", "infoplane-read-only", "bench-read-only",
]


@pytest.mark.parametrize("case", BAD_OUTPUTS)
def test_a_bad_output_path_is_refused_before_any_training(case, tmp_path, unwritable, no_training, capsys):
    args, message = _bad_output(case, tmp_path, unwritable)
    err = _one_line_error(capsys, cli.main(args))
    assert re.search(message, err), err
    assert not (tmp_path / "run.pt").exists()


# -- bad configs ------------------------------------------------------------------------------


def test_zero_classes_are_refused_by_every_builder():
    with pytest.raises(ValueError, match="The 'num_classes' parameter of build_mlp must be an int >= 2. Got 0 instead."):
        ll.build_mlp((4,), (8,), 0)
    with pytest.raises(ValueError, match="The 'num_classes' parameter of build_cnn must be an int >= 2. Got 0 instead."):
        ll.build_cnn((1, 8, 8), (4,), 0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="The 'num_classes' parameter of wrap must be an int >= 2. Got 0 instead."):
        ll.wrap(model, split=[3], num_classes=0, input_shape=(4,))


@pytest.mark.parametrize("value", [float("nan"), 2.0, -1.0])
@pytest.mark.parametrize("policy", ["entropy", "max-prob", "margin", "avg-pool"])
def test_meaningless_exit_thresholds_are_refused(policy, value):
    with pytest.raises(ValueError, match=rf"'thresholds' parameter of \w+Policy must be floats in \[0.0, 1.0\] or inf"):
        Thresholds.fixed(policy, [0.5, value])
    logits = torch.randn(3, 5, 4)
    with pytest.raises(ValueError, match="Got threshold 1 = "):
        EXIT_POLICIES.create(policy).decide(logits, [0.5, value])


def test_patience_thresholds_are_counts_and_inf_means_never():
    with pytest.raises(ValueError, match=r"PatiencePolicy must be floats in \[0.0, inf\]"):
        Thresholds.fixed("patience", [-1.0])
    with pytest.raises(ValueError, match="Got threshold 0 = nan"):
        Thresholds.fixed("patience", [float("nan")])
    logits = torch.randn(3, 5, 4)
    assert EXIT_POLICIES.create("patience").decide(logits, [float("inf"), 1.0]).exit.min() >= 1  # never exits at 0


def test_zero_threads_is_refused(capsys):
    err = _one_line_error(capsys, cli.main([*TRAIN, "--epochs", "1", "--threads", "0"]))
    assert "--threads must be >= 1; got 0" in err


def test_a_pipeline_worker_error_is_one_line_at_the_cli(monkeypatch, capsys):
    from locallearn.schedules.pipeline import Pipeline, PipelineWorkerError

    def fail(self, state):
        error = PipelineWorkerError("Pipeline worker 1 (stage 1) died during epoch 0: killed by signal SIGKILL.")
        error.add_note("Traceback in worker 1:\n  ...")
        raise error

    monkeypatch.setattr(Pipeline, "train_epoch", fail)
    err = _one_line_error(capsys, cli.main([*TRAIN, "--epochs", "1", "--schedule", "pipeline", "--workers", "2"]))
    assert err == "locallearn train: error: Pipeline worker 1 (stage 1) died during epoch 0: killed by signal SIGKILL."


@pytest.mark.slow
def test_ctrl_c_ends_the_command_with_one_line_and_code_130(tmp_path):
    checkpoint = tmp_path / "run.pt"
    script = textwrap.dedent(
        f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when launched where SIGINT is ignored
        from locallearn.cli import main
        sys.exit(main({[*TRAIN, "--epochs", "1000000", "--checkpoint", str(checkpoint)]!r}))
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert checkpoint.exists(), "the run never started"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert stderr.strip() == "locallearn train: interrupted (Ctrl-C); stopped."
