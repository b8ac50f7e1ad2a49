"""The information plane: (I(X;T_k), I(T_k;Y)) of every stage, recorded during training, with any
registered estimator (several per run), averaged over seeds.

``InformationPlane`` is a trainer callback. It imports nothing of the engine: it relies only on
the trainer handing it ``net`` (whose ``forward(x, return_features=True)`` returns
``(logits, features)``), ``split_tensors(name)``, ``epoch``, ``describe()`` and ``device``.
At the chosen epochs it feeds a fixed evaluation subset through the net and estimates, for each
stage's output T_k and each estimator, the pair ``Estimator.plane_point(x, t, y)``:

- ``binning`` (Shwartz-Ziv & Tishby 2017): each distinct input is one symbol, T is binned:
  I(X;T) = binning_mi(x, t, discrete_x=True), I(T;Y) = binning_mi(t, y, discrete_y=True);
- ``kde`` (Saxe et al. 2018): T + N(0, noise_var), I(X;T) = kde_mi(x, t), I(T;Y) = kde_mi(y, t);
- any other (``ksg``, ``neural``, ``hsic``, a plugin's): x, t and the one-hot labels as samples,
  I(X;T) = est(x, t), I(T;Y) = est(t, onehot(y)). For a deterministic net and continuous inputs
  I(X;T) is not finite, so KSG and the neural bounds give an estimate that depends on the
  sample and the estimator's settings (Goldfeld et al. 2019), and KSG assumes continuous
  variables (the one-hot labels tie; its ``noise`` breaks the ties). ``hsic`` is not mutual
  information: its plane is HSIC(X, T) against HSIC(T, Y), as in Ma et al. 2019 (units "HSIC").

Mutual information is in bits (every estimator with a ``base`` gets ``base=2``).

Example:
    >>> x = np.arange(8.0)[:, None]; y = (x[:, 0] > 3).astype(int)
    >>> ixt, ity = plane_point(x, np.tanh(x - 3.5), y, estimator="binning", estimator_kw={"bins": 2})
    >>> round(ixt, 6), round(ity, 6)          # two bins: 1 bit about X, and that bit is the label
    (1.0, 1.0)
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .. import io
from .._params import check_number
from .._plotting import axes_for, finish
from ._estimator import ESTIMATORS, Estimator


def make_estimator(name: str, options: Mapping[str, Any] | None = None) -> Estimator:
    """The registered estimator ``name`` with ``options``, in bits when it takes a ``base``.

    Example:
        >>> make_estimator("ksg", {"k": 5}).base
        2.0
    """
    cls = ESTIMATORS.get(name)
    takes_base = "base" in inspect.signature(cls).parameters
    return ESTIMATORS.create(name, **{**dict(options or {}), **({"base": 2.0} if takes_base else {})})


def units(estimator: Estimator) -> str:
    """``"bits"`` for mutual information, else the estimator's own measure (``"HSIC"``)."""
    return "bits" if estimator.measure == "mutual information" else estimator.measure


def plane_point(
    x: Any, t: Any, y: Any, *, estimator: str = "binning", estimator_kw: dict[str, Any] | None = None
) -> tuple[float, float]:
    """``(I(X;T), I(T;Y))`` (bits for MI) for a deterministic representation ``t`` of inputs ``x`` with labels ``y``.

    Example:
        >>> x = np.arange(4.0)[:, None]
        >>> ixt, ity = plane_point(x, x, np.array([0, 0, 1, 1]), estimator="kde", estimator_kw={"noise_var": 1e-4})
        >>> round(ixt, 6), round(ity, 6)      # tiny noise: T identifies X (2 bits) and Y (1 bit)
        (2.0, 1.0)
    """
    return make_estimator(estimator, estimator_kw).plane_point(np.asarray(x), np.asarray(t), np.asarray(y))


class InformationPlane:
    """Trainer callback recording every stage's information-plane point at chosen epochs.

    Args:
        estimator, estimator_kw: one registered estimator and its options (``bins``, ``noise_var``, ``k``...);
            or ``estimators``: several, a mapping name -> options (or a list of names, default options).
        epochs: completed-epoch counts at which to record (0 = before training); None = every epoch.
        split, max_samples, seed: the fixed evaluation subset (a seeded draw from that split).
        out_dir: if set, ``infoplane.json`` and ``infoplane.png`` are written there when training ends.

    Each point is ``{"estimator", "epoch", "stage", "ixt", "ity"}`` (stages numbered from 1).

    Example:
        >>> from types import SimpleNamespace
        >>> net = lambda x, return_features: ([], [torch.tanh(x), torch.tanh(2 * x)])
        >>> split_tensors = lambda name: (torch.arange(8.0)[:, None], torch.arange(8) % 2)
        >>> trainer = SimpleNamespace(net=net, split_tensors=split_tensors, epoch=0, describe=dict, device="cpu")
        >>> plane = InformationPlane(estimators={"binning": {"bins": 4}, "kde": {}})
        >>> plane.on_fit_start(trainer)
        >>> [(p["estimator"], p["epoch"], p["stage"]) for p in plane.points]
        [('binning', 0, 1), ('binning', 0, 2), ('kde', 0, 1), ('kde', 0, 2)]
    """

    def __init__(
        self,
        *,
        estimator: str = "binning",
        estimator_kw: dict[str, Any] | None = None,
        estimators: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
        epochs: Sequence[int] | None = None,
        split: str = "train",
        max_samples: int = 2000,
        seed: int = 0,
        out_dir: str | None = None,
    ) -> None:
        owner = type(self).__name__
        if estimators is not None and (estimator != "binning" or estimator_kw):
            raise ValueError(f"{owner} takes estimator= (with estimator_kw=) or estimators=, not both.")
        if estimators is None:
            estimators = {estimator: dict(estimator_kw or {})}
        elif not isinstance(estimators, Mapping):
            estimators = {name: {} for name in estimators}
        if not estimators:
            raise ValueError(f"{owner} needs at least one estimator; known estimators: {', '.join(ESTIMATORS.names())}.")
        self.estimators = {name: dict(options) for name, options in estimators.items()}
        self._estimators = {name: make_estimator(name, options) for name, options in self.estimators.items()}  # bad options fail here
        self.epochs = None if epochs is None else sorted({check_number(e, name="epochs", owner=owner, low=0,
                                                                       integer=True) for e in epochs})
        self.split = split
        self.max_samples = check_number(max_samples, name="max_samples", owner=owner, low=2, integer=True)
        self.seed = seed
        self.out_dir = out_dir
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

    def record(self, trainer: Any, epoch: int) -> None:
        """Estimate and store the point of every stage, with every estimator, for the net as it is now."""
        net = trainer.net
        was_training = getattr(net, "training", False)
        if hasattr(net, "eval"):
            net.eval()
        try:
            with torch.no_grad():  # only the features: the neural estimator trains its critic with gradients
                features = net(self._x.to(trainer.device), return_features=True)[1]
        finally:
            if hasattr(net, "train"):
                net.train(was_training)
        x = self._x.flatten(1).numpy()
        y = self._y.numpy()
        for name, estimator in self._estimators.items():
            for k, t in enumerate(features):
                ixt, ity = estimator.plane_point(x, t.flatten(1).cpu().numpy(), y)
                self.points.append({"estimator": name, "epoch": epoch, "stage": k + 1, "ixt": ixt, "ity": ity})

    def to_dict(self) -> dict[str, Any]:
        """The recorded numbers with everything needed to read them."""
        samples = len(getattr(self, "_x", ()))
        described = {name: {"options": self.estimators[name], "class": type(e).__name__, "units": units(e)}
                     for name, e in self._estimators.items()}
        kinds = {d["units"] for d in described.values()}
        return {"units": kinds.pop() if len(kinds) == 1 else "per estimator", "estimators": described,
                "split": self.split, "samples": samples, "seed": self.seed,
                "upper_bound_ixt": math.log2(samples or 1), "run": self.run, "points": self.points}

    def save(self, out_dir: str | Path, *, stem: str = "infoplane", title: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.json`` (atomically) and ``<stem>.png`` into ``out_dir``; the title defaults
        to the rule's name."""
        if title is None:
            title = self.run.get("rule", {}).get("name", "")
        return save_plane(self.to_dict(), out_dir, stem=stem, title=title)


def save_plane(plane: dict[str, Any], out_dir: str | Path, *, stem: str = "infoplane", title: str = "") -> tuple[Path, Path]:
    """Write a plane (``InformationPlane.to_dict()`` or ``average_planes``'s) as ``<stem>.json`` and ``<stem>.png``:
    one panel per estimator (a single estimator's panel is titled with its name and ``title``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / f"{stem}.json", plane)
    by_estimator = {name: [p for p in plane["points"] if p["estimator"] == name] for name in plane["estimators"]}
    unit = {name: d["units"] for name, d in plane["estimators"].items()}
    if len(by_estimator) == 1:
        (name, points), = by_estimator.items()
        plot_information_plane(points, out / f"{stem}.png", title=f"{title} - {name}".strip(" -"), units=unit[name])
    else:
        plot_information_planes(by_estimator, out / f"{stem}.png", title=title, units=unit)
    return out / f"{stem}.json", out / f"{stem}.png"


def average_planes(planes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean over seeds of several runs' planes (``InformationPlane.to_dict()``, one per seed): each point
    gets ``ixt``/``ity`` (means), ``ixt_sd``/``ity_sd`` (sample standard deviations, None for one run) and ``n``.
    The runs must have recorded the same estimators, epochs and stages.

    Example:
        >>> one = {"units": "bits", "estimators": {"kde": {}}, "run": {}, "points": [
        ...     {"estimator": "kde", "epoch": 0, "stage": 1, "ixt": 1.0, "ity": 0.5}]}
        >>> two = {**one, "points": [{**one["points"][0], "ixt": 3.0}]}
        >>> average_planes([one, two])["points"]
        [{'estimator': 'kde', 'epoch': 0, 'stage': 1, 'ixt': 2.0, 'ity': 0.5, 'ixt_sd': 1.4142135623730951, 'ity_sd': 0.0, 'n': 2}]
    """
    if not planes:
        raise ValueError("average_planes needs at least one plane.")
    keys = [[(p["estimator"], p["epoch"], p["stage"]) for p in plane["points"]] for plane in planes]
    if any(k != keys[0] for k in keys) or any(p["estimators"] != planes[0]["estimators"] for p in planes):
        raise ValueError("The planes to average recorded different estimators, epochs or stages; record the same for every seed.")
    points = []
    for i, (name, epoch, stage) in enumerate(keys[0]):
        point = {"estimator": name, "epoch": epoch, "stage": stage}
        values = {axis: np.array([plane["points"][i][axis] for plane in planes], dtype=float) for axis in ("ixt", "ity")}
        point.update({axis: float(v.mean()) for axis, v in values.items()})
        point.update({f"{axis}_sd": float(v.std(ddof=1)) if len(v) > 1 else None for axis, v in values.items()})
        point["n"] = len(planes)
        points.append(point)
    first = planes[0]
    return {**{k: v for k, v in first.items() if k not in ("points", "run", "seed")},
            "seeds": [plane["run"].get("train", {}).get("seed") for plane in planes], "points": points,
            "per_seed": list(planes)}


def _epoch_norm(points: Sequence[dict[str, Any]]) -> Any:
    import matplotlib

    if not points:
        raise ValueError("No information-plane points to plot; record at least one epoch first.")
    epochs = sorted({p["epoch"] for p in points})
    return matplotlib.colors.Normalize(vmin=min(epochs), vmax=max(max(epochs), min(epochs) + 1))


def _labels(unit: str) -> tuple[str, str]:
    """Axis labels: ``I(X;T) [bits]`` for mutual information, ``HSIC(X, T)`` for another measure."""
    if unit == "bits":
        return "I(X;T) [bits]", "I(T;Y) [bits]"
    return f"{unit}(X, T)", f"{unit}(T, Y)"


def _draw_plane(ax: Any, points: Sequence[dict[str, Any]], norm: Any) -> None:
    markers = "os^Dvp*hX"
    for k in sorted({p["stage"] for p in points}):
        traj = sorted((p for p in points if p["stage"] == k), key=lambda p: p["epoch"])
        xs, ys = [p["ixt"] for p in traj], [p["ity"] for p in traj]
        ax.plot(xs, ys, color="0.75", lw=0.8, zorder=1)
        if traj and traj[0].get("ixt_sd") is not None:  # averaged over seeds: +- one standard deviation
            ax.errorbar(xs, ys, xerr=[p["ixt_sd"] for p in traj], yerr=[p["ity_sd"] for p in traj], fmt="none",
                        ecolor="0.6", elinewidth=0.6, zorder=1)
        ax.scatter(xs, ys, c=[p["epoch"] for p in traj], cmap="viridis", norm=norm, s=28,
                   marker=markers[(k - 1) % len(markers)], edgecolors="k", linewidths=0.3, zorder=2, label=f"stage {k}")


def plot_information_plane(points: Sequence[dict[str, Any]], path: str | Path | None = None, *, title: str = "",
                           ax: Any = None, units: str = "bits") -> Any:
    """The usual figure: I(X;T) on x, I(T;Y) on y, one trajectory per stage (numbered from 1), coloured by epoch
    (error bars where the points are means over seeds). Draws into ``ax`` when given (else a new figure), saves
    to ``path`` when given, returns the figure.

    Example:
        >>> import tempfile
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
    xlabel, ylabel = _labels(units)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc="lower right", fontsize=8)
    return finish(fig, path, own=own)


def plot_information_planes(runs: dict[str, Sequence[dict[str, Any]]], path: str | Path | None = None, *,
                            hx: float | None = None, hy: float | None = None, columns: int | None = None,
                            title: str = "", units: str | Mapping[str, str] = "bits") -> Any:
    """Several runs' planes side by side (``runs``: panel title -> points) on shared axes and one epoch colour
    scale, with the bounds I(X;T) <= H(X) (``hx`` bits, e.g. log2 of the number of distinct inputs) and
    I(T;Y) <= H(Y) (``hy`` bits) drawn as dashed lines. ``units`` per panel (a mapping) that differ (bits and
    HSIC) give each panel its own axes. Saves to ``path`` when given; returns the figure.

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
    unit = {name: units if isinstance(units, str) else units[name] for name in runs}
    shared = len(set(unit.values())) == 1
    columns = columns or math.ceil(math.sqrt(len(runs)))
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns + 1, 3.4 * rows + 0.6), sharex=shared, sharey=shared,
                             squeeze=False, layout="constrained")
    for ax, (name, points) in zip(axes.flat, runs.items()):
        _draw_plane(ax, points, norm)
        if hx is not None:
            ax.axvline(hx, color="k", ls="--", lw=0.8, label="H(X)")
        if hy is not None:
            ax.axhline(hy, color="k", ls=":", lw=0.8, label="H(Y)")
        ax.set_title(name, fontsize=9)
        if not shared:
            ax.set(xlabel=_labels(unit[name])[0], ylabel=_labels(unit[name])[1])
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    if shared:
        for ax in axes[:, 0]:
            ax.set_ylabel(_labels(next(iter(unit.values())))[1])
        for ax in axes[-1, :]:
            ax.set_xlabel(_labels(next(iter(unit.values())))[0])
    axes.flat[0].legend(loc="lower right", fontsize=7)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes.flat), label="epoch")
    if title:
        fig.suptitle(title)
    return finish(fig, path, own=True, tight=False)  # constrained layout
