"""Adversarial output paths, for every command that writes (issue 24): a table of output options, each tried
with every kind of bad path; the one writer (``locallearn.io``) under non-regular files, kills and umasks.

A new command or output option is checked the same way by adding a row to ``FILE_OUTPUTS`` or ``INSIDE``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import locallearn as ll
from locallearn import cli, io
from tests._adversarial import (COMPARE, INFOPLANE, TRAIN, char_device, fifo, is_char_device, is_fifo, no_training,  # noqa: F401
                                one_line_error, temporaries)

#: Options naming an output file: command line for a path.
FILE_OUTPUTS = {
    "train --out": lambda p: [*TRAIN, "--out", p],
    "train --checkpoint": lambda p: [*TRAIN, "--checkpoint", p],
    "compare --out": lambda p: [*COMPARE, "--out", p],
}
#: Files a command writes inside (or beside) its --out: (command line for a folder, the file's name).
INSIDE = {
    "exits report.json": (lambda d, ckpt: ["exits", "--checkpoint", ckpt, "--out", d], "report.json"),
    "exits test_logits.pt": (lambda d, ckpt: ["exits", "--checkpoint", ckpt, "--out", d], "test_logits.pt"),
    "infoplane run.json": (lambda d, ckpt: [*INFOPLANE, "--out", d], "run.json"),
    "compare r.csv": (lambda d, ckpt: [*COMPARE, "--out", os.path.join(d, "r.json")], "r.csv"),
    "compare r_learning_curves.png": (lambda d, ckpt: [*COMPARE, "--out", os.path.join(d, "r.json")], "r_learning_curves.png"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("run") / "run.pt"
    assert cli.main([*TRAIN, "--checkpoint", str(path)]) == 0
    return str(path)


# -- bug 1: never rename over a path that is not a regular file --------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "character device"])
@pytest.mark.parametrize("option", list(FILE_OUTPUTS))
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_as_it_is(option, kind, tmp_path, no_training, capsys):
    """`--out /dev/null` and `--checkpoint /dev/null` as root replaced /dev/null with a file; a stand-in here."""
    path = tmp_path / "null.json"
    (fifo if kind == "fifo" else char_device)(path)
    err = one_line_error(capsys, cli.main(FILE_OUTPUTS[option](str(path))))
    assert ("named pipe (FIFO)" if kind == "fifo" else "character device") in err and "not a regular file" in err, err
    assert (is_fifo if kind == "fifo" else is_char_device)(path)
    assert temporaries(tmp_path) == []


WRITERS = {
    "write_json": lambda p: io.write_json(p, {"a": 1}),
    "write_text": lambda p: io.write_text(p, "a,b\n"),
    "save_checkpoint": lambda p: io.save_checkpoint(p, {"w": torch.ones(2)}),
    "save_tensors": lambda p: io.save_tensors(p, {"logits": torch.ones(2)}),
    "write_figure": lambda p: io.write_figure(p, __import__("matplotlib.figure", fromlist=["Figure"]).Figure()),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_the_writer_never_replaces_a_device_or_a_fifo(writer, tmp_path):
    device, pipe = char_device(tmp_path / "null.png"), fifo(tmp_path / "pipe.png")
    for path, kind in [(device, "character device"), (pipe, "named pipe")]:
        with pytest.raises(ValueError, match=f"is a {kind}.*not a regular file; locallearn never replaces one"):
            WRITERS[writer](path)
    assert is_char_device(device) and is_fifo(pipe) and temporaries(tmp_path) == []


def test_a_symlink_loop_as_an_output_is_one_line(tmp_path, no_training, capsys):
    loop = tmp_path / "loop.json"
    os.symlink(loop, loop)
    err = one_line_error(capsys, cli.main([*TRAIN, "--out", str(loop)]))
    assert "cannot be written: Too many levels of symbolic links" in err


# -- bug 13: every output path, inside and beside --out too, checked before any work ----------------


@pytest.mark.parametrize("case", list(INSIDE))
def test_a_folder_in_place_of_a_file_inside_or_beside_out_is_refused_before_training(case, tmp_path, checkpoint, no_training, capsys):
    command, name = INSIDE[case]
    folder = tmp_path / "out"
    (folder / name).mkdir(parents=True)
    err = one_line_error(capsys, cli.main(command(str(folder), checkpoint)))
    assert f"--out's {name} {folder / name} is a folder; expected a file path" in err


@pytest.mark.parametrize("option", list(FILE_OUTPUTS))
def test_a_file_path_ending_in_a_slash_is_refused_and_writes_nothing(option, tmp_path, no_training, capsys):
    err = one_line_error(capsys, cli.main(FILE_OUTPUTS[option](str(tmp_path / "newdir") + "/")))
    assert "ends with a slash, which names a folder; expected a file path" in err or "must end in .json" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", list(FILE_OUTPUTS))
def test_a_name_over_the_length_limit_is_one_line(option, tmp_path, no_training, capsys):
    err = one_line_error(capsys, cli.main(FILE_OUTPUTS[option](str(tmp_path / ("x" * 300 + ".json")))))
    assert "cannot be written: File name too long" in err


# -- bug 4: compare's outputs never overwrite each other or the grid -------------------------------


@pytest.mark.parametrize("name", ["r.csv", "r.md", "r_history.csv"])
def test_compare_out_naming_one_of_its_siblings_is_refused(name, tmp_path, no_training, capsys):
    err = one_line_error(capsys, cli.main([*COMPARE, "--out", str(tmp_path / name)]))
    assert f"--out {tmp_path / name} must end in .json" in err


def test_compare_out_naming_the_grid_is_refused_and_the_grid_kept(tmp_path, no_training, capsys):
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"rules": ["local"], "seeds": 1}))
    err = one_line_error(capsys, cli.main([*COMPARE, "--grid", str(grid), "--out", str(grid)]))
    assert f"--out names the file {grid} that --grid reads" in err
    assert json.loads(grid.read_text()) == {"rules": ["local"], "seeds": 1}


# -- bug 13 and the 0600 files: everything through the one writer, 0644 -----------------------------


@pytest.fixture
def written(monkeypatch) -> list[Path]:
    """Every path the one writer writes."""
    paths: list[Path] = []
    replace = io._atomic_replace

    def spy(path, write):
        paths.append(Path(path))
        replace(path, write)

    monkeypatch.setattr(io, "_atomic_replace", spy)
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("command", ["exits", "infoplane", "compare"])
def test_every_file_a_command_writes_goes_through_the_writer_with_mode_0644(command, tmp_path, checkpoint, written):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        line = {"exits": ["exits", "--checkpoint", checkpoint, "--out", str(out)],
                "infoplane": [*INFOPLANE, "--out", str(out)],
                "compare": [*COMPARE, "--out", str(out / "r.json")]}[command]
        assert cli.main(line) == 0
    finally:
        os.umask(old)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files and set(files) <= {p for p in written}, sorted(set(files) - set(written))
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o644" for p in files}


# -- temporaries: removed on failure and on the next start ----------------------------------------------


def test_a_failed_write_leaves_no_temporary_and_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    io.write_json(path, {"a": 1})

    def fail(f):
        f.write(b"{half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io._atomic_replace(path, fail)
    assert io.read_json(path) == {"a": 1} and temporaries(tmp_path) == []


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_the_next_run_removes_the_temporaries_a_killed_run_left(tmp_path, capsys):
    out, ckpt = tmp_path / "r.json", tmp_path / "run.pt"
    dead, alive = _dead_pid(), os.getpid()
    stale = [tmp_path / f".r.json.{dead}.abc123.tmp", tmp_path / f".run.pt.{dead}.def456.tmp"]
    live = tmp_path / f".r.json.{alive}.xyz.tmp"  # a writer still running (this process): left alone
    for p in [*stale, live]:
        p.write_bytes(b"half a file")
    assert cli.main([*TRAIN, "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    assert temporaries(tmp_path) == [live.name]


@pytest.mark.slow
def test_a_run_killed_at_any_point_leaves_old_or_new_outputs_and_no_temporaries_after_the_next(tmp_path):
    """SIGKILL at several moments of a run that writes a checkpoint every epoch and results at the end: every
    output is absent or whole (a JSON that parses, a checkpoint whose checksum holds); the next run resumes and
    leaves no temporary behind."""
    out, ckpt = tmp_path / "r.json", tmp_path / "run.pt"
    line = [sys.executable, "-m", "locallearn.cli", *TRAIN[:-3], "--epochs", "40", "--no-progress",
            "--out", str(out), "--checkpoint", str(ckpt)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    epochs_seen = set()
    for delay in [0.0, 0.005, 0.02, 0.05, 0.1, 0.2]:  # after a checkpoint was written: into the next epoch or write
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        run = subprocess.Popen([*line, *(["--resume"] if ckpt.exists() else [])], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
                break
            time.sleep(0.002)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        if ckpt.exists():
            epochs_seen.add(io.load_checkpoint(ckpt)["epoch"])  # whole: its checksum holds
        if out.exists():
            assert "history" in io.read_json(out)
    assert epochs_seen, "no kill came after the first checkpoint"
    done = subprocess.run([*line, "--resume"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert io.read_json(out)["history"][-1]["epoch"] == 40
    assert temporaries(tmp_path) == []
