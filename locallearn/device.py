"""Device names as users give them (``cpu``, ``cuda``, ``cuda:1``, ``auto``), checked once with a clear error.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto") == (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    True
"""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("cpu", "cuda", "auto")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU -> a clear error."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {name!r}; expected cpu, cuda, cuda:N or auto.") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {name!r} was asked for, but this torch build ({torch.__version__}) sees no CUDA GPU. "
                "Use --device cpu (or auto, which falls back to the CPU)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"Device {name!r} was asked for, but only {torch.cuda.device_count()} GPU(s) are visible.")
    elif device.type != "cpu":
        raise ValueError(f"Unsupported device {name!r}; expected cpu, cuda, cuda:N or auto.")
    return device
