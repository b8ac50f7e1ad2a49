"""Adversarial checkpoints and resumes (issue 24): overwritten runs, other data, tampered files with a
recomputed checksum, non-files, code-carrying pickles. Every case is one line, and nothing is lost.

A new checkpoint entry or resume rule is checked by adding a row to ``TAMPERED``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import locallearn as ll
from locallearn import cli, io
from tests._adversarial import TRAIN, fifo, one_line_error


@pytest.fixture(scope="module")
def run2(tmp_path_factory) -> Path:
    """A 2-epoch checkpoint of TRAIN."""
    path = tmp_path_factory.mktemp("run") / "run.pt"
    assert cli.main([*TRAIN[:-3], "--epochs", "2", "--no-progress", "--checkpoint", str(path)]) == 0
    return path


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


# -- bug 6: a new run never overwrites a checkpoint ---------------------------------------------------


def test_a_new_run_without_resume_refuses_an_existing_checkpoint_and_keeps_it(run2, tmp_path, capsys):
    path = _copy(run2, tmp_path / "run.pt")
    err = one_line_error(capsys, cli.main([*TRAIN, "--checkpoint", str(path)]))
    assert f"--checkpoint {path} exists already: pass --resume to continue that run" in err
    assert io.load_checkpoint(path)["epoch"] == 2


# -- bug 7: resume knows what the data was, and freezeout's epochs -------------------------------------


def _idx(path: Path, array: np.ndarray) -> None:
    dims = b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(bytes([0, 0, 0x08, array.ndim]) + dims + array.astype(np.uint8).tobytes())


def _mnist_folder(folder: Path, seed: int) -> Path:
    """A tiny MNIST-format folder (5000 validation + 20 training images, 20 test images) drawn from ``seed``."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    labels = np.arange(5020) % 10
    _idx(folder / "train-images-idx3-ubyte", rng.integers(0, 255, (5020, 28, 28)))
    _idx(folder / "train-labels-idx1-ubyte", labels)
    _idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)))
    _idx(folder / "t10k-labels-idx1-ubyte", labels[:20])
    return folder


def test_resume_on_other_data_is_refused_and_the_same_files_moved_are_accepted(tmp_path, capsys):
    a, b = _mnist_folder(tmp_path / "a", 0), _mnist_folder(tmp_path / "b", 1)
    ckpt = tmp_path / "run.pt"
    line = ["train", "--data", "mnist", "--widths", "8", "--no-progress", "--checkpoint", str(ckpt)]
    assert cli.main([*line, "--epochs", "1", "--data-dir", str(a)]) == 0
    capsys.readouterr()  # random images: the run's chance-level warning
    err = one_line_error(capsys, cli.main([*line, "--epochs", "2", "--data-dir", str(b), "--resume"]))
    assert "the training data's train_sha256 is" in err and "(other data than the run was trained on)" in err
    moved = shutil.copytree(a, tmp_path / "moved")
    assert cli.main([*line, "--epochs", "2", "--data-dir", str(moved), "--resume"]) == 0
    resumed = io.load_checkpoint(ckpt)["config"]
    assert resumed["data_fingerprint"]["data_dir"] == str(moved.resolve())
    assert "data_fingerprint.data_dir" in resumed["resumed"][-1]["changes"]


def test_resume_through_the_api_refuses_another_dataset(synthetic, digits, tmp_path):
    def trainer(ds):
        ll.seed_everything(0)
        return ll.Trainer(ll.build_mlp((1, 4, 4), (8,), 10), _as_16(ds), config=ll.TrainConfig(epochs=1, progress=False))

    trainer(digits).save_checkpoint(tmp_path / "a.pt")
    other = _as_16(digits, shift=1.0)
    t = ll.Trainer(ll.build_mlp((1, 4, 4), (8,), 10), other, config=ll.TrainConfig(epochs=1, progress=False))
    with pytest.raises(ValueError, match="the training data's train_sha256 is"):
        t.load_checkpoint(tmp_path / "a.pt")


def _as_16(ds: ll.data.Dataset, shift: float = 0.0) -> ll.data.Dataset:
    pool = lambda x: torch.nn.functional.avg_pool2d(x, 2) + shift  # noqa: E731  (1, 4, 4) images
    return ll.data.Dataset(ds.name, pool(ds.x_train), ds.y_train, pool(ds.x_val), ds.y_val, pool(ds.x_test), ds.y_test,
                           num_classes=ds.num_classes)


def test_resuming_freezeout_with_more_epochs_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    line = [*TRAIN[:-3], "--no-progress", "--schedule", "freezeout", "--checkpoint", str(ckpt)]
    assert cli.main([*line, "--epochs", "1"]) == 0
    capsys.readouterr()
    err = one_line_error(capsys, cli.main([*line, "--epochs", "3", "--resume"]))
    assert "train.epochs is 1 there, 3 now (the schedule or the LR schedule depends on the epoch count" in err


# -- bug 14: a tampered checkpoint with a recomputed checksum is one line -----------------------------

TAMPERED = {  # name -> (change to the payload, the message)
    "rng-state": (lambda p: p.update(torch_rng=torch.zeros(7, dtype=torch.uint8)), "holds a random-number state torch cannot restore"),
    "rng-dtype": (lambda p: p.update(torch_rng=torch.zeros(5056)), "holds a random-number state torch cannot restore"),
    "junk-history": (lambda p: p.update(history=[{"x": 1}, "junk"]), "has a history that does not match its 2 trained epochs"),
    "short-history": (lambda p: p.update(history=p["history"][:1]), "has a history that does not match its 2 trained epochs"),
    "epoch-beyond": (lambda p: p.update(epoch=99), "says 99 epochs were trained, outside 0..2"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_checkpoint_with_a_recomputed_checksum_is_one_line_on_resume(case, run2, tmp_path, capsys):
    change, message = TAMPERED[case]
    payload = io.load_checkpoint(run2)
    change(payload)
    path = tmp_path / "t.pt"
    io.save_checkpoint(path, payload)  # a valid checksum over the edited payload
    err = one_line_error(capsys, cli.main([*TRAIN[:-3], "--epochs", "2", "--no-progress", "--checkpoint", str(path), "--resume"]))
    assert message in err, err


def test_exits_with_weights_that_do_not_fit_their_own_spec_is_one_line(run2, tmp_path, capsys):
    payload = io.load_checkpoint(run2)
    first = next(iter(payload["net"]))
    payload["net"][first] = torch.zeros(3, 3)
    path = tmp_path / "odd.pt"
    io.save_checkpoint(path, payload)
    err = one_line_error(capsys, cli.main(["exits", "--checkpoint", str(path), "--out", str(tmp_path / "x")]))
    assert f"Checkpoint {path}: its weights do not fit the net its own run spec builds" in err


# -- unclear messages: non-files, code in the pickle ------------------------------------------------------


def test_a_fifo_or_a_symlink_loop_as_a_checkpoint_is_named_for_what_it_is(tmp_path, capsys):
    pipe, loop = fifo(tmp_path / "pipe.pt"), tmp_path / "loop.pt"
    os.symlink(loop, loop)
    with pytest.raises(ValueError, match=r"pipe.pt is a named pipe \(FIFO\); expected a checkpoint file"):
        io.load_checkpoint(pipe)
    with pytest.raises(ValueError, match="loop.pt cannot be read: Too many levels of symbolic links"):
        io.load_checkpoint(loop)
    err = one_line_error(capsys, cli.main(["exits", "--checkpoint", str(pipe), "--out", str(tmp_path / "x")]))
    assert "is a named pipe (FIFO)" in err


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_code_carrying_checkpoint_is_refused_without_torchs_unsafe_advice(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "net": _RunsCode()}, path)
    with pytest.raises(ValueError) as info:
        io.load_checkpoint(path)
    message = str(info.value)
    assert "holds a Python object (posix.system) that a safe, weights-only load does not allow" in message
    assert "weights_only" not in message and "Re-running" not in message and "\n" not in message


# -- bug 10: exits on a collapsed net, and a report its own runner does not reproduce --------------------


@pytest.mark.parametrize("collapse", ["nan", "constant"])
def test_exits_on_a_collapsed_net_says_so_instead_of_a_leak(collapse, digits):
    from locallearn.exits import analyse_exits

    net = ll.build_mlp(digits.input_shape, (8, 8), digits.num_classes)
    with torch.no_grad():
        for stage in net.stages:
            for p in stage.head.parameters():
                p.fill_(float("nan") if collapse == "nan" else 0.0)
    message = "non-finite scores" if collapse == "nan" else "the net is collapsed"
    with pytest.raises(ValueError, match=message):
        analyse_exits(net, digits.split("val"), digits.split("test"))


def test_exits_fails_when_its_runner_does_not_reproduce_the_report(run2, tmp_path, monkeypatch, capsys):
    from locallearn.commands import exits as command

    real = command.analyse_exits

    def disagreeing(*args, **kwargs):
        report = real(*args, **kwargs)
        report["runner"]["agrees_with_offline"] = False  # as on a forward-forward checkpoint
        return report

    monkeypatch.setattr(command, "analyse_exits", disagreeing)
    assert cli.main(["exits", "--checkpoint", str(run2), "--out", str(tmp_path / "x")]) == 2
    assert "does not reproduce the offline analysis" in capsys.readouterr().err
