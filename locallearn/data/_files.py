"""Finding a dataset's folder on disk, and the errors that say what was expected and where to get it.

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> locate("toy", root, markers=("toy-py/batch", "batch"), expected="toy-py/batch",  # doctest: +ELLIPSIS
    ...        how_to_get="Get it from https://example.org/toy.tar.gz.")
    Traceback (most recent call last):
    ...
    FileNotFoundError: toy: no dataset files in ...: looked for .../toy-py/batch, .../batch; expected toy-py/batch. Get it from https://example.org/toy.tar.gz.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


class DataFormatError(ValueError):
    """A dataset file is truncated, corrupt, or not in the format its name promises."""


def data_root(name: str, data_dir: str | Path | None, *, expected: str, how_to_get: str) -> Path:
    """``data_dir`` as a folder that exists; else a one-line error naming what is expected there."""
    if data_dir is None:
        raise FileNotFoundError(
            f"{name}: no data folder given; pass --data-dir DIR (or data_dir=) pointing at a folder holding {expected}. {how_to_get}"
        )
    root = Path(data_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{name}: {root} is a file; expected a folder holding {expected}. {how_to_get}")
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: data folder {root} does not exist; expected a folder holding {expected}. {how_to_get}")
    return root


def locate(
    name: str,
    data_dir: str | Path | None,
    *,
    markers: Sequence[str],
    expected: str,
    how_to_get: str,
) -> tuple[Path, str]:
    """The folder and marker of the first of ``markers`` (paths relative to ``data_dir``) that is a file.

    Markers name one file of each accepted layout, e.g. ``cifar-10-batches-py/data_batch_1``
    (the archive unpacked into ``data_dir``) and ``data_batch_1`` (``data_dir`` is that folder).
    """
    root = data_root(name, data_dir, expected=expected, how_to_get=how_to_get)
    for marker in markers:
        if (root / marker).is_file():
            return (root / marker).parent, marker
    looked = ", ".join(str(root / marker) for marker in markers)
    raise FileNotFoundError(f"{name}: no dataset files in {root}: looked for {looked}; expected {expected}. {how_to_get}")


def require_files(name: str, folder: Path, files: Sequence[str], *, how_to_get: str) -> list[Path]:
    """The paths of ``files`` in ``folder``; a missing one is an error listing every missing file."""
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name}: {folder} lacks {', '.join(missing)}; expected all of {', '.join(files)}. {how_to_get}"
        )
    return [folder / f for f in files]
