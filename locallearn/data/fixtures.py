"""Write a CIFAR-shaped fixture folder of random images in the official on-disk format.

For smoke runs of the CIFAR suites on machines without the real data, and for tests:
``write_cifar_fixture(root, n_train=N)`` writes ``root/cifar-10-batches-py/`` (or the
CIFAR-100 / binary-version folder) holding ``N`` random training and ``n_test`` random
test images, in exactly the format of the official archives, and returns ``root`` to
pass as ``data_dir`` / ``--data-dir``.

The python version is written byte for byte the way the official files were made
(Python 2 ``cPickle``, protocol 2): a dict of Python 2 strings, label lists, and the
``data`` array as numpy's ``_reconstruct`` call with its raw uint8 bytes. So the
fixture exercises the same unpickling path as the real files, and the stock
``pickle.load(f, encoding="latin1")`` reads it too. The binary version is records of
label byte(s) + 3072 pixel bytes. Labels cycle through every class (shuffled), so
each class appears once ``n`` reaches the class count; CIFAR-100's coarse label of a
fine class ``k`` is ``k // 5`` here (the real mapping is not needed for a fixture), and
the meta files name the classes (CIFAR-10's real names; placeholders for CIFAR-100).

Example (one CPU epoch of a CIFAR suite on it: ``--data cifar10 --data-dir ROOT``):
    >>> import tempfile
    >>> from locallearn import data
    >>> root = write_cifar_fixture(tempfile.mkdtemp(), n_train=30, n_test=10, seed=1)
    >>> sorted(p.name for p in (root / "cifar-10-batches-py").iterdir())
    ['batches.meta', 'data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']
    >>> ds = data.load("cifar10", data_dir=root, val_size=5)
    >>> len(ds.x_train), len(ds.x_val), len(ds.x_test)
    (25, 5, 10)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from locallearn.data.cifar import CIFAR10, CIFAR100

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + value.to_bytes(2, "little")  # BININT2
    return b"J" + value.to_bytes(4, "little", signed=True)  # BININT


def _string(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING: a Python 2 str
    return b"T" + len(data).to_bytes(4, "little") + data  # BINSTRING


def _tuple(items: tuple[Any, ...]) -> bytes:
    body = b"".join(map(_py2, items))
    return body + {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)] if 1 <= len(items) <= 3 else b"(" + body + b"t"


def _array(array: np.ndarray) -> bytes:
    """A uint8 array as Python 2 numpy pickled it: _reconstruct(ndarray, (0,), 'b') then BUILD with its state."""
    if array.dtype != np.uint8:
        raise TypeError(f"the CIFAR fixture pickles uint8 arrays only; got {array.dtype}.")
    dtype = b"cnumpy\ndtype\n" + _tuple(("u1", 0, 1)) + b"R" + b"(" + _py2(3) + _py2("|") + b"NNN" + _py2(-1) + _py2(-1) + _py2(0) + b"tb"
    state = b"(" + _py2(1) + _tuple(tuple(array.shape)) + dtype + b"\x89" + _string(np.ascontiguousarray(array).tobytes()) + b"tb"
    return b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _tuple((0,)) + _string(b"b") + b"\x87R" + state


def _py2(obj: Any) -> bytes:
    """Protocol-2 opcodes for the few types a CIFAR batch holds, as Python 2 wrote them."""
    if isinstance(obj, dict):
        return b"}" + (b"(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u" if obj else b"")
    if isinstance(obj, list):
        return b"]" + (b"(" + b"".join(map(_py2, obj)) + b"e" if obj else b"")
    if isinstance(obj, tuple):
        return _tuple(obj)
    if isinstance(obj, np.ndarray):
        return _array(obj)
    if isinstance(obj, (bool, np.bool_)) or obj is None:
        raise TypeError(f"the CIFAR fixture writer has no opcode for {obj!r}.")
    if isinstance(obj, (int, np.integer)):
        return _int(int(obj))
    if isinstance(obj, str):
        return _string(obj.encode("latin1"))
    if isinstance(obj, bytes):
        return _string(obj)
    raise TypeError(f"the CIFAR fixture writer has no opcode for {type(obj).__name__}.")


def python2_pickle(obj: Any) -> bytes:
    """``obj`` pickled as Python 2's cPickle wrote the CIFAR files (protocol 2, Python 2 strings)."""
    return b"\x80\x02" + _py2(obj) + b"."


def _labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % num_classes)


def _write_python(folder: Path, name: str, files: tuple[str, ...], x: np.ndarray, fine: np.ndarray) -> None:
    for file, xs, ys in zip(files, np.array_split(x, len(files)), np.array_split(fine, len(files))):
        batch: dict[str, Any] = {"batch_label": f"fixture batch {file}", "data": xs.reshape(len(xs), -1)}
        if name == "cifar10":
            batch["labels"] = ys.tolist()
        else:
            batch["fine_labels"], batch["coarse_labels"] = ys.tolist(), (ys // 5).tolist()
        batch["filenames"] = [f"fixture_{i:05d}.png" for i in range(len(xs))]
        (folder / file).write_bytes(python2_pickle(batch))


def _write_binary(folder: Path, name: str, files: tuple[str, ...], x: np.ndarray, fine: np.ndarray) -> None:
    labels = fine[:, None] if name == "cifar10" else np.stack([fine // 5, fine], axis=1)
    records = np.concatenate([labels.astype(np.uint8), x.reshape(len(x), -1)], axis=1)
    for file, part in zip(files, np.array_split(records, len(files))):
        (folder / file).write_bytes(part.tobytes())


def write_cifar_fixture(
    root: str | Path,
    *,
    n_train: int = 100,
    n_test: int = 20,
    variant: str = "cifar10",
    layout: str = "python",
    seed: int = 0,
) -> Path:
    """Write ``n_train`` + ``n_test`` random 32x32 RGB images as a CIFAR folder under ``root``; return ``root``.

    ``variant``: ``"cifar10"`` or ``"cifar100"``; ``layout``: ``"python"`` (the pickled
    batches) or ``"binary"``. The images are uniform random bytes from ``seed``.
    """
    variants = {"cifar10": CIFAR10, "cifar100": CIFAR100}
    if variant not in variants or layout not in ("python", "binary"):
        raise ValueError(f"write_cifar_fixture: variant must be 'cifar10' or 'cifar100' and layout 'python' or 'binary'; got {variant!r}, {layout!r}.")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"write_cifar_fixture: n_train and n_test must be >= 1; got {n_train}, {n_test}.")
    spec = variants[variant]
    num_classes = 10 if variant == "cifar10" else 100
    rng = np.random.default_rng(seed)
    folder = Path(root) / (spec.python_folder if layout == "python" else spec.binary_folder)
    folder.mkdir(parents=True, exist_ok=True)
    write = _write_python if layout == "python" else _write_binary
    files = spec.python_files if layout == "python" else spec.binary_files
    for split_files, n in zip(files, (n_train, n_test)):
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        write(folder, variant, split_files, x, _labels(rng, n, num_classes))
    _write_meta(folder, variant, layout)
    return Path(root)


def _write_meta(folder: Path, variant: str, layout: str) -> None:
    fine = list(CIFAR10_CLASSES) if variant == "cifar10" else [f"fine_{k:02d}" for k in range(100)]
    coarse = [f"coarse_{k:02d}" for k in range(20)]
    if layout == "binary":
        if variant == "cifar10":
            (folder / "batches.meta.txt").write_text("\n".join(fine) + "\n")
        else:
            (folder / "fine_label_names.txt").write_text("\n".join(fine) + "\n")
            (folder / "coarse_label_names.txt").write_text("\n".join(coarse) + "\n")
    elif variant == "cifar10":
        (folder / "batches.meta").write_bytes(python2_pickle({"num_cases_per_batch": 10000, "label_names": fine, "num_vis": 3072}))
    else:
        (folder / "meta").write_bytes(python2_pickle({"fine_label_names": fine, "coarse_label_names": coarse}))
