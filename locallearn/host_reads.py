"""Count the reads of tensor values back to the host (each a device synchronisation on a GPU).

``Tensor.item``, ``.cpu``, ``.tolist``, ``.numpy`` and the conversions ``bool(t)``, ``float(t)``,
``int(t)`` all wait for every queued kernel to finish before the value can be read. A training
step that makes none of them keeps a GPU busy; ``HostReads`` counts them, by patching those
methods while it is active, so a test can assert that the per-batch core makes none.

Example:
    >>> import torch
    >>> with HostReads() as reads:
    ...     t = torch.ones(3) * 2
    ...     total = t.sum()          # stays a tensor: no read
    ...     value = float(total)     # one read
    >>> reads.count, reads.by_method
    (1, {'__float__': 1})
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch

#: The ``torch.Tensor`` methods that read a value back to the host.
READ_METHODS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__")


class HostReads:
    """Context manager counting host reads of tensor values (see the module docstring); not thread-safe."""

    def __init__(self) -> None:
        self.by_method: dict[str, int] = {}
        self._saved: dict[str, Callable[..., Any] | None] = {}  # None: inherited, not set on torch.Tensor itself

    @property
    def count(self) -> int:
        """Total reads while active."""
        return sum(self.by_method.values())

    def __enter__(self) -> "HostReads":
        counts: Counter[str] = Counter()
        self.by_method = counts  # type: ignore[assignment]
        for name in READ_METHODS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = vars(torch.Tensor).get(name)

            def counted(tensor: torch.Tensor, *args: Any, _name: str = name, _original: Callable[..., Any] = original,
                        **kwargs: Any) -> Any:
                counts[_name] += 1
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counted)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name, original in self._saved.items():
            if original is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)
        self._saved.clear()
        self.by_method = dict(self.by_method)
