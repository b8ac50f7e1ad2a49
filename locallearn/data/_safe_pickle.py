"""Reading the pickled CIFAR batches without ever running code from the file.

A pickle can name any importable callable and have it called while loading
(``os.system``, ``builtins.exec`` ...). ``RefusingUnpickler`` resolves a name only if
it is on a short allow-list of what a CIFAR python-version batch holds: numpy's
array reconstructor, ``numpy.ndarray`` and ``numpy.dtype``; every other name is
refused before anything is called. Even the admitted ones are narrowed: the
reconstructor builds plain ``ndarray`` objects only, and ``dtype`` admits numeric
dtypes only (no ``object`` arrays, which could hold arbitrary objects).
Persistent ids are refused too (``pickle.Unpickler``'s default).

Example:
    >>> import io, pickle
    >>> class Payload:
    ...     def __reduce__(self):
    ...         return (exec, ("print('never printed')",))
    >>> RefusingUnpickler(io.BytesIO(pickle.dumps({"data": Payload()}))).load()
    Traceback (most recent call last):
    ...
    locallearn.data._safe_pickle.UnsafePickleError: the pickle asks for the global builtins.exec; a CIFAR batch holds only numpy arrays, dtypes and plain values, so it was refused unrun
    >>> import numpy as np
    >>> RefusingUnpickler(io.BytesIO(pickle.dumps({"labels": [3, 1], "data": np.zeros((2, 3), np.uint8)}))).load()["labels"]
    [3, 1]
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from locallearn.data._files import DataFormatError

_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own array reconstructor, whatever module holds it


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list (it may carry code); nothing from it was run."""


def _plain_array(subtype: type, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"the pickle asks numpy to build a {subtype!r}; only plain numpy arrays are admitted")
    return _reconstruct(np.ndarray, shape, dtype)


def _numeric_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(spec, (str, bytes)):
        raise UnsafePickleError(f"the pickle builds a numpy dtype from {type(spec).__name__}; only dtype codes such as 'u1' are admitted")
    dtype = np.dtype(spec.decode("latin1") if isinstance(spec, bytes) else spec, align=bool(align), copy=bool(copy))
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UnsafePickleError(f"the pickle asks for numpy dtype {dtype}; only numeric dtypes are admitted")
    return dtype


_ARRAY_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _plain_array,  # the name numpy 1.x writes (and the CIFAR files use)
    ("numpy._core.multiarray", "_reconstruct"): _plain_array,  # the name numpy 2.x writes
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
}


class RefusingUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed`` (default: what numpy arrays need)."""

    def __init__(self, file: BinaryIO, *, allowed: dict[tuple[str, str], Any] | None = None, encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)  # latin1: the CIFAR files were written by Python 2
        self.allowed = _ARRAY_GLOBALS if allowed is None else allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"the pickle asks for the global {module}.{name}; a CIFAR batch holds only "
                "numpy arrays, dtypes and plain values, so it was refused unrun"
            ) from None


def load_pickle(path: Path, *, what: str) -> Any:
    """Unpickle ``path`` with ``RefusingUnpickler``; refused or corrupt files raise an error naming ``path``."""
    raw = path.read_bytes()
    try:
        return RefusingUnpickler(io.BytesIO(raw)).load()
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: refused to unpickle: {error}. Replace the file with the official {what}.") from None
    except Exception as error:  # a damaged pickle surfaces as any of a dozen exception types
        raise DataFormatError(
            f"{path}: not a readable {what} (truncated or corrupt: {type(error).__name__}: {error})."
        ) from error
