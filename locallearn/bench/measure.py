"""Memory and load measurements for benchmark cells.

Saved-for-backward bytes are counted exactly with
``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd saves is
mapped to its storage, and a storage is counted once, with
``untyped_storage().nbytes()``, however many saved tensors view it (a ReLU's
saved output and the next Linear's saved input are one storage, one count).
Storages of the network's own parameters and buffers are left out: they are
alive whether or not a graph keeps them, so they cost no extra memory. A
storage stops counting when autograd releases the last saved tensor that views
it (after backward, or when the graph is dropped), so the meter knows both the
bytes saved over a step (``total``) and the most bytes held at once (``peak``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    >>> with SavedTensorMeter(exclude=layer.parameters()) as meter:
    ...     loss = layer(torch.randn(4, 3)).sum()
    >>> meter.total  # the Linear's input (4 x 3) and the ReLU's output (4 x 5), float32
    128
    >>> loss.backward(); meter.current
    0
"""

from __future__ import annotations

import ctypes
import os
import resource
from typing import Any, Iterable

import torch


class _Saved:
    """What autograd holds in place of a saved tensor; releasing it updates the meter."""

    __slots__ = ("tensor", "meter", "key")

    def __init__(self, tensor: torch.Tensor, meter: "SavedTensorMeter", key: int) -> None:
        self.tensor, self.meter, self.key = tensor, meter, key

    def __del__(self) -> None:
        self.meter._release(self.key)


class SavedTensorMeter:
    """Context manager counting the bytes autograd saves for backward, by unique storage.

    Attributes: ``total`` (bytes of every storage saved while active), ``peak``
    (most bytes held at one time), ``current`` (bytes held now), ``tensors``
    (number of saved tensors counted).
    """

    def __init__(self, *, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self._alive: dict[int, list[int]] = {}  # storage pointer -> [saved tensors viewing it, bytes]
        self.total = self.peak = self.current = self.tensors = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor) -> Any:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0 or key in self._excluded:
            return tensor
        entry = self._alive.get(key)
        if entry is None:
            entry = self._alive[key] = [0, storage.nbytes()]
            self.total += entry[1]
            self.current += entry[1]
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        self.tensors += 1
        return _Saved(tensor, self, key)

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        return packed.tensor if isinstance(packed, _Saved) else packed

    def _release(self, key: int) -> None:
        entry = self._alive.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self._alive[key]

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``ru_maxrss``; process-wide and never decreasing)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _trim_heap() -> None:
    """Ask glibc to return freed heap memory to the system (``malloc_trim``); nothing elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a stretch of code, above what was in use when it started.

    On CUDA: ``torch.cuda.max_memory_allocated`` (the caching allocator's peak, reset at the
    start). On CPU: the peak resident set size (``VmHWM`` in ``/proc/self/status``, reset by
    writing 5 to ``/proc/self/clear_refs``, Linux only) minus the resident size at the start,
    after glibc has returned its freed memory (``malloc_trim``): pages the allocator kept from
    earlier work can hide part of the peak, and its slack can add to it.
    ``bytes`` is ``None`` where neither is available.

    Example:
        >>> import torch
        >>> with PeakMemory(torch.device("cpu")) as peak:
        ...     x = torch.ones(4_000_000)  # 16 MB
        >>> peak.bytes is None or peak.bytes >= 15_000_000
        True
    """

    def __init__(self, device: torch.device) -> None:
        self.device, self.bytes, self._start = device, None, 0

    @staticmethod
    def _status(field: str) -> int:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024  # kB

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            _trim_heap()  # memory freed earlier goes back to the system, so that the step's own peak shows
            try:
                with open("/proc/self/clear_refs", "w") as clear:
                    clear.write("5")  # peak RSS := current RSS
                self._start = self._status("VmRSS")
            except OSError:
                self._start = -1
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._start
        elif self._start >= 0:
            self.bytes = self._status("VmHWM") - self._start
