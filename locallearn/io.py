"""Atomic writes, checkpoints that load with ``weights_only=True`` and verify a checksum, and the machine record.

A checkpoint stores a SHA-256 of its whole payload (every tensor's dtype, shape and
bytes, and every other value), and :func:`load_checkpoint` verifies it: a file damaged
or edited after it was written is refused, never loaded with wrong weights. Every way
a file can fail to be a locallearn checkpoint is one line naming the file and the fault.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> write_json(path, {"a": 1})
    >>> read_json(path)
    {'a': 1}
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch


#: The suffix of the writer's temporary files: ``.NAME.PID.RANDOM.tmp`` beside the file being written.
TEMP_SUFFIX = ".tmp"
_NAME_KEPT = 120  # characters of the target's name kept in a temporary's name (the whole must fit NAME_MAX)


def _temp_prefix(path: Path) -> str:
    return f".{path.name[:_NAME_KEPT]}."


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def refuse_non_regular(path: str | Path, *, what: str | None = None) -> None:
    """Raise ``ValueError`` when ``path`` exists and is not a regular file (a device such as ``/dev/null``,
    a FIFO, a socket, a folder, a symlink loop): the writer never renames over one.

    Example:
        >>> refuse_non_regular("/dev/null")
        Traceback (most recent call last):
        ...
        ValueError: /dev/null is a character device, not a regular file; locallearn never replaces one: give a file path.
    """
    name = what or str(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a dangling link is replaced as a file)
        return
    except OSError as error:  # ELOOP (a symlink loop), ENAMETOOLONG, EACCES...
        raise ValueError(f"{name} cannot be written: {error.strerror or error}.") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{name} is a {_kind(mode)}, not a regular file; locallearn never replaces one: give a file path.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries a killed writer left beside ``path`` (``.NAME.PID.RANDOM.tmp`` whose process is
    gone); return what was removed. A live writer's temporary is left alone.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / ".r.json.999999999.abc.tmp").write_bytes(b"half")
        >>> [p.name for p in remove_stale_temporaries(folder / "r.json")]
        ['.r.json.999999999.abc.tmp']
    """
    path = Path(path)
    prefix = _temp_prefix(path)
    removed = []
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
            except OSError:
                pass
    return removed


def _atomic_replace(path: str | Path, write: Any) -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it into place.

    The one writer of the package: the file gets mode 0666 minus the umask (0644 under the usual
    umask), a crash at any moment leaves the old file or the new one (never a part), a path that
    exists and is not a regular file is refused (never replaced), and the temporary is removed on
    failure, as are those a killed writer left beside the same file."""
    if str(path).endswith(("/", os.sep)):
        raise ValueError(f"{path} ends with a slash, which names a folder; expected a file path.")
    path = Path(path)
    refuse_non_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the mode open() would give (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        refuse_non_regular(path)  # made a device or a FIFO while we wrote: still never replaced
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """This process's umask, read without changing it (Linux), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically (a crash leaves the old file intact)."""
    _atomic_replace(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` as UTF-8, atomically: CSV, Markdown, any text output."""
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (a crash leaves the old file intact)."""
    write_bytes(path, json.dumps(obj, indent=2, default=str).encode())


def write_figure(path: str | Path, fig: Any, **savefig: Any) -> None:
    """Save a matplotlib figure atomically, in the format its suffix names (``.png``, ``.pdf``...)."""
    import io as _bytes_io

    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig)
    write_bytes(path, buffer.getvalue())


def save_tensors(path: str | Path, obj: Any) -> None:
    """``torch.save`` atomically (tensors, numbers, strings: a file ``torch.load(weights_only=True)`` reads)."""
    _atomic_replace(path, lambda f: torch.save(obj, f))


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)


CHECKSUM_KEY = "checksum"


def checksum(obj: Any) -> str:
    """SHA-256 of a checkpoint payload: every tensor's dtype, shape and bytes and every other value, in order.

    Example:
        >>> a = checksum({"w": torch.ones(2)})
        >>> a == checksum({"w": torch.ones(2)}), a == checksum({"w": torch.tensor([1.0, 1.5])})
        (True, False)
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return "sha256:" + digest.hexdigest()


def _feed(digest: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        flat = obj.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor {flat.dtype} {tuple(obj.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        digest.update(f"dict {len(obj)};".encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{type(obj).__name__} {len(obj)};".encode())
        for value in obj:
            _feed(digest, value)
    else:
        digest.update(f"{type(obj).__name__} {obj!r};".encode())


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` atomically, with a checksum of the payload; keep it to tensors, numbers, strings,
    lists and dicts."""
    if CHECKSUM_KEY in payload:
        raise ValueError(f"A checkpoint payload must not have a {CHECKSUM_KEY!r} key: save_checkpoint adds it.")
    stamped = {**payload, CHECKSUM_KEY: checksum(payload)}
    _atomic_replace(path, lambda f: torch.save(stamped, f))


def load_checkpoint(path: str | Path, *, required: dict[str, type | tuple[type, ...]] | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs) and verify its checksum.

    ``required`` maps keys the payload must hold to their types. Whatever is wrong with the
    file (missing, a folder, unreadable, not a dict, no or a wrong checksum, a required key
    missing or of the wrong type) raises one line naming it: ``FileNotFoundError`` for a
    missing file, ``ValueError`` otherwise. The payload comes back without its checksum.
    """
    where = Path(path)
    try:
        mode = os.stat(where).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"Checkpoint {path} does not exist.") from None
    except OSError as error:  # a symlink loop, a name too long, no permission
        raise ValueError(f"Checkpoint {path} cannot be read: {error.strerror or error}.") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"Checkpoint {path} is a {_kind(mode)}; expected a checkpoint file.")
    try:
        payload = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise ValueError(f"Checkpoint {path} cannot be read: {_load_failure(error)}; is it a locallearn checkpoint?") from None
    if not isinstance(payload, dict):
        raise ValueError(
            f"Checkpoint {path} is not a locallearn checkpoint: it holds a {type(payload).__name__}, "
            "expected the dict that locallearn writes."
        )
    stored = payload.pop(CHECKSUM_KEY, None)
    if stored is None:
        raise ValueError(f"Checkpoint {path} has no checksum: it was not written by locallearn (or was edited since).")
    if stored != checksum(payload):
        raise ValueError(
            f"Checkpoint {path} is corrupt: its contents do not match the checksum written with it "
            "(the file was damaged or changed after it was saved)."
        )
    for key, kind in (required or {}).items():
        if not isinstance(payload.get(key), kind):
            found = "is missing" if key not in payload else f"is a {type(payload[key]).__name__}"
            raise ValueError(f"Checkpoint {path} is not a locallearn training checkpoint: its {key!r} entry {found}.")
    return payload


#: Lines of torch's refusal that are advice, never a reason (the unsafe advice must not reach a user).
_ADVICE = ("weights only load failed", "re-running", "weights_only", "please file an issue", "check the documentation", "in pytorch 2.6")


def _load_failure(error: Exception) -> str:
    """torch's reason for refusing a file, in one line and without its advice to load unsafely."""
    text = str(error)
    unsafe = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if unsafe:
        return f"it holds a Python object ({unsafe.group(1)}) that a safe, weights-only load does not allow"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not any(word in line.lower() for word in _ADVICE)]
    return (lines[0] if lines else type(error).__name__).rstrip(".")


def physical_memory() -> int:
    """This machine's physical memory in bytes (1 TiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
