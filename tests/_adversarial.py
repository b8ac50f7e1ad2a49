"""Shared helpers of the adversarial test modules (``tests/test_adversarial_*.py``, one per surface).

Each surface module keeps its cases as tables (a command line, the bad input, the one line it must
get), so that a new command or option is checked the same way by adding a row.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

TRAIN = ["train", "--data", "synthetic", "--widths", "8,8", "--epochs", "1", "--no-progress"]
COMPARE = ["compare", "--data", "synthetic", "--rules", "local", "--seeds", "1", "--epochs", "1", "--widths", "8",
           "--no-progress"]
INFOPLANE = ["infoplane", "--data", "synthetic", "--widths", "8", "--epochs", "1", "--no-progress"]


def one_line_error(capsys, code: int, *, expected_code: int = 2) -> str:
    """The command's stderr, checked to be one line, no traceback, and the exit status ``expected_code``."""
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def fifo(path: Path) -> Path:
    """A named pipe at ``path``: a stand-in for a non-regular file such as ``/dev/null``."""
    os.mkfifo(path)
    return path


def char_device(path: Path) -> Path:
    """A character device equal to ``/dev/null`` (1, 3) at ``path``, made with mknod; skips unless root can."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as error:
        pytest.skip(f"cannot make a character device here ({error})")
    return path


def is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def temporaries(folder: Path) -> list[str]:
    """The writer's temporaries in ``folder`` (hidden ``.NAME....tmp`` files)."""
    return sorted(p.name for p in Path(folder).rglob(".*.tmp"))


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails the test: the commands must refuse their outputs first."""
    import locallearn as ll

    def fit(self, epochs=None):
        raise AssertionError("training started before the outputs were checked")

    monkeypatch.setattr(ll.Trainer, "fit", fit)
