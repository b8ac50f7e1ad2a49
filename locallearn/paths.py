"""Output paths checked before any work, so a run never trains for an hour and then cannot write.

Every command calls :func:`check_outputs` first with the options it writes to: files
(``--out`` results, ``--checkpoint``) and folders (``exits``/``infoplane``/``bench --out``).
Each path is refused in one line naming its option when it is empty, a folder where a
file is expected or a file where a folder is expected (also higher up the path), an existing path that is
not a regular file (``/dev/null``, a FIFO: the writer never replaces one), a file path ending
in a slash, a name over the system's length limit, or in a place this process cannot create
files in (probed by creating and removing a temporary file, which also catches read-only file
systems and root on sysfs); two options naming the same file are refused too (``--out`` equal
to ``--checkpoint`` would overwrite it), and so is an output naming one of the command's
``inputs`` (``compare --grid g.json --out g.json``). The temporaries a killed run left beside
each output file are removed (``locallearn.io.remove_stale_temporaries``).

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> check_outputs(files={"--out": os.path.join(folder, "new", "r.json"), "--checkpoint": None})
    >>> check_outputs(files={"--out": folder})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --out ... is a folder; expected a file path (such as .../results.json).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from locallearn import io


def check_outputs(
    *,
    files: dict[str, str | None] | None = None,
    folders: dict[str, str | None] | None = None,
    inputs: dict[str, str | None] | None = None,
) -> None:
    """Raise ``ValueError`` (one line naming the option) unless every given path can be written.

    ``files`` and ``folders`` map an option name to its value; ``None`` means "not given".
    ``inputs`` (files the command reads) must not be among the outputs."""
    files = {option: path for option, path in (files or {}).items() if path is not None}
    folders = {option: path for option, path in (folders or {}).items() if path is not None}
    for option, path in [*files.items(), *folders.items()]:
        if not str(path).strip():
            raise ValueError(f"{option} is empty; expected a path.")
    try:
        for option, path in folders.items():
            if Path(path).exists() and not Path(path).is_dir():
                raise ValueError(f"{option} {path} is a file; expected a folder (or a path where one can be made).")
            _check_creatable(option, path, Path(path))
        for option, path in files.items():
            _check_file(option, str(path))
    except OSError as error:  # a name over the length limit, a symlink loop...
        raise ValueError(f"{option} {path} cannot be written: {error.strerror or error}.") from None
    seen: dict[str, str] = {}
    for option, path in files.items():
        real = os.path.realpath(path)
        if real in seen:
            raise ValueError(f"{seen[real]} and {option} name the same file {path}; the one would overwrite the other.")
        seen[real] = option
    for option, path in (inputs or {}).items():
        if path is not None and os.path.realpath(path) in seen:
            raise ValueError(f"{seen[os.path.realpath(path)]} names the file {path} that {option} reads; "
                             "writing there would overwrite it: choose another output path.")
    for path in files.values():
        io.remove_stale_temporaries(path)


def inside(option: str, folder: str | None, names: tuple[str, ...]) -> dict[str, str | None]:
    """The files a command writes inside its ``folder`` option, as ``check_outputs(files=...)`` entries.

    Example:
        >>> inside("--out", "run", ("report.json",))
        {"--out's report.json": 'run/report.json'}
    """
    return {} if folder is None else {f"{option}'s {name}": os.path.join(folder, name) for name in names}


def _check_file(option: str, path: str) -> None:
    if path.endswith(("/", os.sep)):
        raise ValueError(f"{option} {path} ends with a slash, which names a folder; expected a file path "
                         f"(such as {Path(path) / 'results.json'}).")
    try:
        os.stat(path)  # raises for a name over the length limit or a symlink loop
    except (FileNotFoundError, NotADirectoryError):
        pass
    if Path(path).is_dir():
        raise ValueError(f"{option} {path} is a folder; expected a file path (such as {Path(path) / 'results.json'}).")
    io.refuse_non_regular(path, what=f"{option} {path}")
    _check_creatable(option, path, Path(path).parent)


def _check_creatable(option: str, path: str, folder: Path) -> None:
    """Refuse ``path`` unless files can be created in ``folder`` or, if it does not exist yet, in the
    nearest folder above it (where it would be made)."""
    existing = next(p for p in [folder, *folder.parents] if p.exists() or p == Path(p.anchor or "."))
    if not existing.is_dir():
        raise ValueError(f"{option} {path} cannot be written: {existing} is a file, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".locallearn-write-probe-")
    except OSError as error:
        raise ValueError(f"{option} {path} cannot be written: {error.strerror or error} in {existing}.") from None
    os.close(fd)
    os.unlink(probe)
