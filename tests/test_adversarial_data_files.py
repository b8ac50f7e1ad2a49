"""Adversarial data files (issue 24): IDX files of the wrong type or rank, FIFOs, gzip bombs, a data folder
given to a dataset that reads none. Each is one line naming the file. A new file format gets a row in
``BAD_IDX``.
"""

from __future__ import annotations

import gzip
import os
import resource
import threading
from pathlib import Path

import numpy as np
import pytest

import locallearn as ll
from locallearn import cli
from locallearn.data import IdxFormatError, read_idx
from tests._adversarial import TRAIN, one_line_error

CODES = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}


def _idx(path: Path, array: np.ndarray) -> Path:
    dims = b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(bytes([0, 0, CODES[array.dtype], array.ndim]) + dims + array.tobytes())
    return path


def _folder(folder: Path, **override: np.ndarray) -> Path:
    """An MNIST-format folder (5010 training images), with any file replaced by ``override[key]``."""
    folder.mkdir(exist_ok=True)
    labels = (np.arange(5010) % 10).astype(np.uint8)
    arrays = {"train-images-idx3-ubyte": np.zeros((5010, 28, 28), np.uint8), "train-labels-idx1-ubyte": labels,
              "t10k-images-idx3-ubyte": np.zeros((20, 28, 28), np.uint8), "t10k-labels-idx1-ubyte": labels[:20]}
    for stem, array in {**arrays, **override}.items():
        _idx(folder / stem, array)
    return folder


BAD_IDX = {  # name -> (files replaced, message)
    "float labels": ({"train-labels-idx1-ubyte": (np.arange(5010) % 10 + 0.7).astype(">f4")},
                     r"train-labels-idx1-ubyte holds float32 labels of shape \(5010,\); expected one integer class index"),
    "rank-1 images": ({"train-images-idx3-ubyte": np.zeros(5010, np.uint8)},
                      r"train-images-idx3-ubyte holds images of shape \(5010,\); expected rank 3"),
    "rank-4 images": ({"t10k-images-idx3-ubyte": np.zeros((20, 1, 28, 28), np.uint8)},
                      r"t10k-images-idx3-ubyte holds images of shape \(20, 1, 28, 28\); expected rank 3"),
    "rank-2 labels": ({"t10k-labels-idx1-ubyte": np.zeros((20, 1), np.uint8)}, r"holds uint8 labels of shape \(20, 1\)"),
    "other image size": ({"t10k-images-idx3-ubyte": np.zeros((20, 14, 14), np.uint8)}, r"expected one image size"),
}


@pytest.mark.parametrize("case", list(BAD_IDX))
def test_an_idx_folder_with_a_wrong_file_is_one_line_naming_it(case, tmp_path, capsys):
    files, message = BAD_IDX[case]
    folder = _folder(tmp_path / "d", **files)
    with pytest.raises(ValueError, match=message):
        ll.data.load("mnist", data_dir=folder)
    err = one_line_error(capsys, cli.main([*TRAIN, "--data", "mnist", "--data-dir", str(folder)]))
    assert "mnist: " in err


def test_a_fifo_in_the_data_folder_is_refused_instead_of_hanging(tmp_path):
    folder = _folder(tmp_path / "d")
    (folder / "train-labels-idx1-ubyte").unlink()
    os.mkfifo(folder / "train-labels-idx1-ubyte")
    done: list = []
    reader = threading.Thread(target=lambda: done.append(_catch(lambda: ll.data.load("mnist", data_dir=folder))), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # the old reader blocks on the FIFO: open it for writing to free the thread
        with open(folder / "train-labels-idx1-ubyte", "wb"):
            pass
        pytest.fail("reading a FIFO in the data folder hung")
    assert isinstance(done[0], IdxFormatError) and "not a regular file (a FIFO" in str(done[0])


def _catch(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the test inspects it
        return error
    return None


def test_a_gzip_that_inflates_past_its_header_is_refused_reading_little(tmp_path):
    """A 1 MB gzip inflating to 1 GiB took 2.4 GB of RAM before it was refused; 64 MiB here, read against a 4-byte header."""
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, 1]) + (4).to_bytes(4, "big") + bytes(4))
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(zeros)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(IdxFormatError, match=r"declares shape \(4,\) \(4 bytes of data\) but the file holds more"):
        read_idx(path)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 32 * 1024, grown_kib  # far less than the 64 MiB the file inflates to


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_a_data_folder_given_to_a_dataset_that_reads_none_is_refused(name, tmp_path, capsys):
    err = one_line_error(capsys, cli.main([*TRAIN, "--data", name, "--data-dir", str(tmp_path)]))
    assert f"{name} is not read from a folder" in err and "would be ignored" in err
