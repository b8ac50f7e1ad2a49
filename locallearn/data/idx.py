"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import math
import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from locallearn.io import physical_memory

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxFormatError(ValueError):
    """An IDX file is truncated, corrupt or not an IDX file at all."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into an array of its declared shape.

    Example:
        >>> import gzip, tempfile, os
        >>> raw = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])
        >>> path = os.path.join(tempfile.mkdtemp(), "t-labels-idx1-ubyte.gz")
        >>> with gzip.open(path, "wb") as f:
        ...     _ = f.write(raw)
        >>> read_idx(path).tolist()
        [7, 8, 9]
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as error:
        raise IdxFormatError(f"{path}: cannot be read ({error.strerror or error}).") from None
    if not stat.S_ISREG(mode):  # a FIFO would block the run forever, a device would never end
        raise IdxFormatError(f"{path}: not a regular file (a FIFO, a device or a socket); expected an IDX file.")
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            return _read_idx(f, path, plain_size=None if path.suffix == ".gz" else os.fstat(f.fileno()).st_size)
    except (EOFError, OSError, zlib.error) as error:
        raise IdxFormatError(f"{path}: cannot decompress ({error}); the file is truncated or corrupt.") from error


def _read_idx(f: BinaryIO, path: Path, *, plain_size: int | None) -> np.ndarray:
    """Parse the header, then read exactly the bytes it declares (never more: a small gzip that inflates
    to far more data than its header says is refused after reading one byte past the declared size)."""
    raw = f.read(4)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IdxFormatError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
            "expected 00 00 <type> <ndim> as in the MNIST file format."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IdxFormatError(f"{path}: truncated IDX header ({4 + len(dims)} bytes, expected {header}).")
    shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot overflow
    if plain_size is not None and plain_size - header != expected:
        raise _size_mismatch(path, shape, expected, plain_size - header)
    if expected > physical_memory():
        raise IdxFormatError(f"{path}: the header declares shape {shape} ({expected} bytes of data), more than this "
                             "machine's memory; the file is corrupt or not an image set.")
    data = bytearray(expected)
    view, filled = memoryview(data), 0
    while filled < expected:
        n = f.readinto(view[filled:])
        if not n:
            raise _size_mismatch(path, shape, expected, filled)
        filled += n
    if f.read(1):
        raise IdxFormatError(f"{path}: truncated or corrupt IDX file: the header declares shape {shape} "
                             f"({expected} bytes of data) but the file holds more.")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array if dtype.byteorder in ("=", "|") else array.astype(dtype.newbyteorder("="))


def _size_mismatch(path: Path, shape: tuple[int, ...], expected: int, found: int) -> IdxFormatError:
    return IdxFormatError(
        f"{path}: truncated or corrupt IDX file: the header declares shape {shape} "
        f"({expected} bytes of data) but the file holds {found} bytes."
    )
