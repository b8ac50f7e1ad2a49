"""What every plot function shares: draw into the caller's axes or a new figure, save, return the figure.

Example:
    >>> fig, ax, own = axes_for(None, (4, 3))
    >>> _ = ax.plot([1, 2], [3, 4])
    >>> finish(fig, None, own=own) is fig
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    """pyplot on the Agg backend, imported on first use (importing the package does not load matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def axes_for(ax: Any, size: tuple[float, float]) -> tuple[Any, Any, bool]:
    """``(figure, axes, own)``: a new figure of ``size`` inches when ``ax`` is None (``own``), else ``ax``'s."""
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=size)
        return fig, ax, True
    return ax.figure, ax, False


def finish(fig: Any, path: str | Path | None, *, own: bool, tight: bool = True) -> Any:
    """Lay out a figure this call made (``own``), save it to ``path`` when given, and return it; a figure the
    call made is closed in pyplot (returned and saved, not kept open), the caller's is left as it is."""
    if own and tight:
        fig.tight_layout()
    if path is not None:
        from locallearn import io

        io.write_figure(path, fig, dpi=120)  # atomically: a reader never sees half a figure
    if own:
        _pyplot().close(fig)
    return fig
