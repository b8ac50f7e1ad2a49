"""Atomic writes, checkpoints that load with ``weights_only=True``, and the machine record.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> write_json(path, {"a": 1})
    >>> read_json(path)
    {'a': 1}
"""

from __future__ import annotations

import json
import os
import platform
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
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (a crash leaves the old file intact)."""
    _atomic_replace(path, lambda f: f.write(json.dumps(obj, indent=2, default=str).encode()))


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` atomically; keep the payload to tensors, numbers, strings, lists and dicts."""
    _atomic_replace(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise ValueError(f"Checkpoint {path} cannot be read ({error}); is it a locallearn checkpoint?") from error


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
