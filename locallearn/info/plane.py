"""The information plane: (I(X;T_k), I(T_k;Y)) of every stage, recorded during training.

``InformationPlane`` is a trainer callback. It imports nothing of the engine: it relies only on
the trainer handing it ``net`` (whose ``forward(x, return_features=True)`` returns
``(logits, features)``), ``data.split(name)``, ``epoch``, ``describe()`` and ``config.device``.
At the chosen epochs it feeds a fixed evaluation subset through the net and estimates, for each
stage's output T_k, I(X;T_k) and I(T_k;Y) in bits with the binning or the KDE estimator:

- ``binning`` (Shwartz-Ziv & Tishby): I(X;T) = binning_mi(x, t, discrete_x=True) (each distinct
  input is one symbol, T is binned), I(T;Y) = binning_mi(t, y, discrete_y=True);
- ``kde`` (Saxe et al.): T + N(0, noise_var), I(X;T) = kde_mi(x, t), I(T;Y) = kde_mi(y, t).

Example:
    >>> x = np.arange(8.0)[:, None]; y = (x[:, 0] > 3).astype(int)
    >>> ixt, ity = plane_point(x, np.tanh(x - 3.5), y, estimator="binning", estimator_kw={"bins": 2})
    >>> round(ixt, 6), round(ity, 6)          # two bins: 1 bit about X, and that bit is the label
    (1.0, 1.0)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._params import check_choice, check_number
from .._plotting import axes_for, finish
from .binning import binning_mi
from .kde import kde_mi

PLANE_ESTIMATORS = ("binning", "kde")


def plane_point(
    x: Any, t: Any, y: Any, *, estimator: str = "binning", estimator_kw: dict[str, Any] | None = None
) -> tuple[float, float]:
    """``(I(X;T), I(T;Y))`` in bits for a deterministic representation ``t`` of discrete inputs ``x``.

    Example:
        >>> x = np.arange(4.0)[:, None]
        >>> ixt, ity = plane_point(x, x, np.array([0, 0, 1, 1]), estimator="kde", estimator_kw={"noise_var": 1e-4})
        >>> round(ixt, 6), round(ity, 6)      # tiny noise: T identifies X (2 bits) and Y (1 bit)
        (2.0, 1.0)
    """
    check_choice(estimator, name="estimator", owner="plane_point", choices=PLANE_ESTIMATORS)
    kw = {**(estimator_kw or {}), "base": 2.0}
    if estimator == "binning":
        return binning_mi(x, t, discrete_x=True, **kw), binning_mi(t, y, discrete_y=True, **kw)
    return kde_mi(x, t, **kw), kde_mi(y, t, **kw)


class InformationPlane:
    """Trainer callback recording every stage's information-plane point at chosen epochs.

    Args:
        estimator: ``"binning"`` or ``"kde"``; ``estimator_kw`` goes to :func:`binning_mi` (``bins``,
            ``value_range``, ``strategy``) or :func:`kde_mi` (``noise_var``, ``bound``).
        epochs: completed-epoch counts at which to record (0 = before training); None = every epoch.
        split, max_samples, seed: the fixed evaluation subset (a seeded draw from that split).
        out_dir: if set, ``infoplane.json`` and ``infoplane.png`` are written there when training ends.

    Example:
        >>> from types import SimpleNamespace
        >>> net = lambda x, return_features: ([], [torch.tanh(x), torch.tanh(2 * x)])
        >>> split_tensors = lambda name: (torch.arange(8.0)[:, None], torch.arange(8) % 2)
        >>> trainer = SimpleNamespace(net=net, split_tensors=split_tensors, epoch=0, describe=dict, device="cpu")
        >>> plane = InformationPlane(estimator_kw={"bins": 4})
        >>> plane.on_fit_start(trainer)
        >>> [(p["epoch"], p["stage"]) for p in plane.points]
        [(0, 1), (0, 2)]
    """

    def __init__(
        self,
        *,
        estimator: str = "binning",
        estimator_kw: dict[str, Any] | None = None,
        epochs: Sequence[int] | None = None,
        split: str = "train",
        max_samples: int = 2000,
        seed: int = 0,
        out_dir: str | None = None,
    ) -> None:
        owner = type(self).__name__
        self.estimator = check_choice(estimator, name="estimator", owner=owner, choices=PLANE_ESTIMATORS)
        self.estimator_kw = dict(estimator_kw or {})
        self.epochs = None if epochs is None else sorted({check_number(e, name="epochs", owner=owner, low=0,
                                                                       integer=True) for e in epochs})
        self.split = split
        self.max_samples = check_number(max_samples, name="max_samples", owner=owner, low=2, integer=True)
        self.seed = seed
        self.out_dir = out_dir
        plane_point(np.arange(4.0), np.arange(4.0), np.arange(4), estimator=estimator,
                    estimator_kw=self.estimator_kw)  # reject bad estimator options before training starts
        self.points: list[dict[str, Any]] = []
        self.run: dict[str, Any] = {}

    def on_fit_start(self, trainer: Any) -> None:
        x, y = trainer.split_tensors(self.split)
        if len(x) > self.max_samples:
            keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))[: self.max_samples]
            x, y = x[keep.sort().values], y[keep.sort().values]
        self._x, self._y = x, y
        self.points, self.run = [], trainer.describe()
        if trainer.epoch == 0 and self._wanted(0):
            self.record(trainer, 0)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if self._wanted(trainer.epoch):
            self.record(trainer, trainer.epoch)

    def on_fit_end(self, trainer: Any) -> None:
        if self.out_dir is not None:
            self.save(self.out_dir)

    def _wanted(self, epoch: int) -> bool:
        return self.epochs is None or epoch in self.epochs

    @torch.no_grad()
    def record(self, trainer: Any, epoch: int) -> None:
        """Estimate and store the point of every stage for the net as it is now."""
        net = trainer.net
        was_training = getattr(net, "training", False)
        if hasattr(net, "eval"):
            net.eval()
        try:
            features = net(self._x.to(trainer.device), return_features=True)[1]
        finally:
            if hasattr(net, "train"):
                net.train(was_training)
        x = self._x.flatten(1).numpy()
        y = self._y.numpy()
        for k, t in enumerate(features):
            ixt, ity = plane_point(x, t.flatten(1).cpu().numpy(), y, estimator=self.estimator,
                                   estimator_kw=self.estimator_kw)
            self.points.append({"epoch": epoch, "stage": k + 1, "ixt": ixt, "ity": ity})  # stages numbered from 1

    def to_dict(self) -> dict[str, Any]:
        """The recorded numbers with everything needed to read them."""
        return {"units": "bits", "estimator": self.estimator, "estimator_kw": self.estimator_kw,
                "split": self.split, "samples": len(getattr(self, "_x", ())), "seed": self.seed,
                "upper_bound_ixt": math.log2(len(getattr(self, "_x", ())) or 1), "run": self.run,
                "points": self.points}

    def save(self, out_dir: str | Path, *, stem: str = "infoplane", title: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.json`` (atomically) and ``<stem>.png`` into ``out_dir``; the title defaults
        to the rule and estimator names."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / f"{stem}.json", self.to_dict())
        if title is None:
            title = f"{self.run.get('rule', {}).get('name', '')} - {self.estimator}".strip(" -")
        plot_information_plane(self.points, out / f"{stem}.png", title=title)
        return out / f"{stem}.json", out / f"{stem}.png"


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place.

    Example:
        >>> p = Path(tempfile.mkdtemp()) / "a.json"; write_json_atomic(p, {"a": 1}); p.read_text()
        '{\\n  "a": 1\\n}'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _epoch_norm(points: Sequence[dict[str, Any]]) -> Any:
    import matplotlib

    if not points:
        raise ValueError("No information-plane points to plot; record at least one epoch first.")
    epochs = sorted({p["epoch"] for p in points})
    return matplotlib.colors.Normalize(vmin=min(epochs), vmax=max(max(epochs), min(epochs) + 1))


def _draw_plane(ax: Any, points: Sequence[dict[str, Any]], norm: Any) -> None:
    markers = "os^Dvp*hX"
    for k in sorted({p["stage"] for p in points}):
        traj = sorted((p for p in points if p["stage"] == k), key=lambda p: p["epoch"])
        xs, ys = [p["ixt"] for p in traj], [p["ity"] for p in traj]
        ax.plot(xs, ys, color="0.75", lw=0.8, zorder=1)
        ax.scatter(xs, ys, c=[p["epoch"] for p in traj], cmap="viridis", norm=norm, s=28,
                   marker=markers[(k - 1) % len(markers)], edgecolors="k", linewidths=0.3, zorder=2, label=f"stage {k}")


def plot_information_plane(points: Sequence[dict[str, Any]], path: str | Path | None = None, *, title: str = "",
                           ax: Any = None) -> Any:
    """The usual figure: I(X;T) on x, I(T;Y) on y, one trajectory per stage (numbered from 1), coloured by epoch.
    Draws into ``ax`` when given (else a new figure), saves to ``path`` when given, returns the figure.

    Example:
        >>> pts = [{"epoch": e, "stage": s, "ixt": 1 + e + s, "ity": 0.5 * e} for e in (0, 1) for s in (1, 2)]
        >>> fig = plot_information_plane(pts, Path(tempfile.mkdtemp()) / "p.png")
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['stage 1', 'stage 2']
    """
    import matplotlib

    norm = _epoch_norm(points)
    fig, ax, own = axes_for(ax, (6, 4.5))
    _draw_plane(ax, points, norm)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="epoch")
    ax.set(xlabel="I(X;T) [bits]", ylabel="I(T;Y) [bits]", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return finish(fig, path, own=own)


def plot_information_planes(runs: dict[str, Sequence[dict[str, Any]]], path: str | Path | None = None, *,
                            hx: float | None = None, hy: float | None = None, columns: int | None = None,
                            title: str = "") -> Any:
    """Several runs' planes side by side (``runs``: panel title -> points) on shared axes and one epoch colour
    scale, with the bounds I(X;T) <= H(X) (``hx`` bits, e.g. log2 of the number of distinct inputs) and
    I(T;Y) <= H(Y) (``hy`` bits) drawn as dashed lines. Saves to ``path`` when given; returns the figure.

    Example:
        >>> pts = [{"epoch": e, "stage": s, "ixt": 1 + e + s, "ity": 0.5 * e} for e in (0, 1) for s in (1, 2)]
        >>> fig = plot_information_planes({"a": pts, "b": pts}, hx=4.0, hy=1.0)
        >>> len(fig.axes), fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
        (3, True)
    """
    import math

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if not runs:
        raise ValueError("No runs to plot; give a mapping of panel titles to information-plane points.")
    norm = _epoch_norm([p for points in runs.values() for p in points])
    columns = columns or math.ceil(math.sqrt(len(runs)))
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns + 1, 3.4 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax, (name, points) in zip(axes.flat, runs.items()):
        _draw_plane(ax, points, norm)
        if hx is not None:
            ax.axvline(hx, color="k", ls="--", lw=0.8, label="H(X)")
        if hy is not None:
            ax.axhline(hy, color="k", ls=":", lw=0.8, label="H(Y)")
        ax.set_title(name, fontsize=9)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("I(T;Y) [bits]")
    for ax in axes[-1, :]:
        ax.set_xlabel("I(X;T) [bits]")
    axes.flat[0].legend(loc="lower right", fontsize=7)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes.flat), label="epoch")
    if title:
        fig.suptitle(title)
    return finish(fig, path, own=True, tight=False)  # constrained layout
