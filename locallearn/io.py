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
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_replace(path: str | Path, write: Any) -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the mode open() would give (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
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


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (a crash leaves the old file intact)."""
    _atomic_replace(path, lambda f: f.write(json.dumps(obj, indent=2, default=str).encode()))


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
    if where.is_dir():
        raise ValueError(f"Checkpoint {path} is a folder; expected a checkpoint file.")
    if not where.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
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


def _load_failure(error: Exception) -> str:
    """torch's reason for refusing a file, in one line and without its advice to load unsafely."""
    text = str(error)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        return f"it holds a Python object ({unsafe.group(1)}) that a safe, weights-only load does not allow"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__).rstrip(".")


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
