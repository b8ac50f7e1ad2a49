"""A figure saved as PNG (for the README and the report) with PDF and SVG beside it (for a paper).

The vector files carry no creation date, so the same figure gives the same bytes.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from locallearn._plotting import axes_for
    >>> fig, ax, _ = axes_for(None, (3, 2)); _ = ax.plot([0, 1], [1, 0])
    >>> sorted(p.suffix for p in save_figure(fig, Path(tempfile.mkdtemp()) / "f.png"))
    ['.pdf', '.png', '.svg']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from locallearn import io

FORMATS = ("png", "pdf", "svg")
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}


def save_figure(fig: Any, path: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix of ``formats``; return the paths written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        io.write_figure(target, fig, dpi=120, metadata=_NO_DATE.get(fmt))  # atomically, 0644 (locallearn.io)
        written.append(target)
    return written
