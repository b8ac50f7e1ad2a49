"""How well do feedback signals align with backprop? Per-layer angles and norms during training.

For every layer of a model converted by :func:`locallearn.feedback.convert` (modes
``fa``, ``usf``, ``brsf``, ``frsf``; ``dfa`` layers give the update angle only), on a
fixed probe batch:

* ``update_angle``: the angle (degrees) between the layer's weight update under the
  model's own feedback and the true gradient of the same loss (exact backprop, from
  :func:`locallearn.feedback.backprop_copy`). Lillicrap et al. (2016) show it falls well
  below 90 degrees as FA training proceeds ("the forward weights learn to align");
* ``feedback_angle``: the angle between the feedback matrix ``B`` and the weights ``W``;
* ``norm_ratio``: ``||B|| / ||W||`` (Frobenius norms).

:class:`AlignmentMonitor` records these as a Trainer callback (at the start and after
every epoch) or by hand (``monitor.measure(model, step)``) in any loop; :func:`plot`
draws them. ``python -m locallearn.alignment`` trains an MLP under each feedback mode
and writes the figure and the records.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from locallearn.feedback import convert
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = convert(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), mode="usf")
    >>> rows = layer_alignment(model, torch.randn(16, 4), torch.randint(0, 3, (16,)))
    >>> [r["layer"] for r in rows], rows[1]["update_angle"] < 1e-3  # the top layer's update is exact
    (['0', '2'], True)
"""

from __future__ import annotations

import math
from copy import deepcopy
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from locallearn.feedback import backprop_copy
from locallearn.trainer import Callback

__all__ = ["angle", "layer_alignment", "AlignmentMonitor", "plot"]

LossFn = Callable[[Any, Tensor], Tensor]


def angle(a: Tensor, b: Tensor) -> float:
    """Angle in degrees between two tensors seen as flat vectors (90 if either is zero).

    Example:
        >>> angle(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
        45.0
    """
    a, b = a.flatten().double(), b.flatten().double()
    if a.norm() == 0 or b.norm() == 0:
        return 90.0
    a, b = a / a.norm(), b / b.norm()
    return math.degrees(2 * math.atan2(float((a - b).norm()), float((a + b).norm())))  # exact near 0 and 180


def last_exit_cross_entropy(output: Any, y: Tensor) -> Tensor:
    """Cross-entropy of a model's output, or of the last exit when it returns a list (a LocalNet)."""
    logits = output[-1] if isinstance(output, (list, tuple)) else output
    return F.cross_entropy(logits, y)


def _feedback_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if hasattr(m, "feedback") and isinstance(getattr(m, "weight", None), Tensor)]


def layer_alignment(model: nn.Module, x: Tensor, y: Tensor, *, loss: LossFn = last_exit_cross_entropy) -> list[dict]:
    """One record per feedback layer of ``model``: ``layer`` (its name), ``update_angle``,
    ``feedback_angle`` and ``norm_ratio`` (``None`` where ``B`` and ``W`` differ in shape, as in DFA).

    Measured on copies in eval mode (no dropout; BatchNorm on running statistics), with the
    global random state left as it was, so calling it changes neither the model nor its training.
    """
    names = [name for name, _ in _feedback_layers(model)]
    if not names:
        raise ValueError("layer_alignment needs a model with feedback layers; run feedback.convert(model, mode=...) first.")
    records = []
    copies = [deepcopy(model).eval(), backprop_copy(model).eval()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})  # brsf draws on the weights' device
    with torch.random.fork_rng(devices=cuda):
        grads = []
        for copy in copies:
            layers = dict(copy.named_modules())
            weights = [layers[name].weight for name in names]
            grads.append(torch.autograd.grad(loss(copy(x), y), weights, allow_unused=True))
    modules = dict(copies[0].named_modules())  # their B is the one of the step just measured
    for name, g_fb, g_bp in zip(names, *grads):
        w = modules[name].weight.detach()
        b = getattr(modules[name], "feedback", None)
        same_shape = isinstance(b, Tensor) and b.shape == w.shape
        records.append({
            "layer": name,
            "update_angle": angle(g_fb, g_bp) if g_fb is not None and g_bp is not None else None,
            "feedback_angle": angle(b, w) if same_shape else None,
            "norm_ratio": float(b.norm() / w.norm()) if same_shape else None,
        })
    return records


class AlignmentMonitor(Callback):
    """Records :func:`layer_alignment` on a fixed probe batch; a Trainer callback or a hand-called meter.

    As a callback it measures ``trainer.net`` at the start of the fit (``step`` 0) and after
    every ``every``-th epoch (``step`` = epochs done); ``measure(model, step)`` does the same in any training loop.
    ``history`` holds one record per measurement and layer, with ``step`` added.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from locallearn.feedback import convert
        >>> model = convert(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), mode="fa")
        >>> monitor = AlignmentMonitor(torch.randn(16, 4), torch.randint(0, 3, (16,)))
        >>> monitor.measure(model, step=0)
        >>> sorted(monitor.history[0])
        ['feedback_angle', 'layer', 'norm_ratio', 'step', 'update_angle']
    """

    def __init__(self, x: Tensor, y: Tensor, *, loss: LossFn = last_exit_cross_entropy, every: int = 1) -> None:
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"AlignmentMonitor needs a non-empty probe batch with one label per input; got {len(x)} inputs, {len(y)} labels.")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"The 'every' parameter of AlignmentMonitor must be an int >= 1. Got {every!r} instead.")
        self.x, self.y, self.loss, self.every = x, y, loss, every
        self.history: list[dict] = []

    def measure(self, model: nn.Module, step: int) -> None:
        device = next(model.parameters()).device
        for record in layer_alignment(model, self.x.to(device), self.y.to(device), loss=self.loss):
            self.history.append({"step": step, **record})

    def on_fit_start(self, trainer) -> None:
        if not self.history:
            self.measure(trainer.net, 0)

    def on_epoch_end(self, trainer, record: dict) -> None:
        done = record["epoch"]  # epochs finished (epochs are numbered from 1)
        if done % self.every == 0:
            self.measure(trainer.net, done)


def plot(histories: dict[str, Sequence[dict]], path: str | None = None, *, step_label: str = "training step",
         axes: Any = None) -> Any:
    """One row per feedback mode (``histories``: mode -> records), one column per metric, one line per layer.
    Draws into ``axes`` (a rows x 3 array of axes) when given, else a new figure; saves to ``path`` when given;
    returns the figure.

    Example:
        >>> h = {"fa": [{"step": s, "layer": "0", "update_angle": 80.0 - s, "feedback_angle": 88.0, "norm_ratio": 1.0}
        ...             for s in (1, 2)]}
        >>> fig = plot(h)
        >>> [ax.get_title() for ax in fig.axes]
        ['fa: update vs true gradient (deg)', 'fa: B vs W (deg)', 'fa: ||B|| / ||W||']
    """
    from locallearn._plotting import finish

    metrics = [("update_angle", "update vs true gradient (deg)"), ("feedback_angle", "B vs W (deg)"),
               ("norm_ratio", "||B|| / ||W||")]
    own = axes is None
    if own:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(histories), len(metrics), figsize=(4 * len(metrics), 2.6 * len(histories)),
                                 squeeze=False)
    else:
        fig = axes[0][0].figure
    for row, (mode, history) in enumerate(histories.items()):
        layers = list(dict.fromkeys(r["layer"] for r in history))
        for col, (metric, title) in enumerate(metrics):
            ax = axes[row][col]
            for layer in layers:
                points = [(r["step"], r[metric]) for r in history if r["layer"] == layer and r[metric] is not None]
                if points:
                    ax.plot(*zip(*points), label=f"layer {layer}")
            if metric != "norm_ratio":
                ax.axhline(90, color="grey", lw=0.5, ls="--")
            ax.set_title(f"{mode}: {title}", fontsize=9)
            if row == len(histories) - 1:
                ax.set_xlabel(step_label)
        axes[row][0].legend(fontsize=7)
    return finish(fig, path, own=own)


def _mlp(input_shape: Sequence[int], widths: Sequence[int], num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for width in widths:
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, num_classes))


def main(argv: Sequence[str] | None = None) -> dict:
    """Train one ReLU MLP per feedback mode (same seed, same batches) and record its alignment."""
    import argparse
    import sys
    import time
    from pathlib import Path

    from locallearn import data, io
    from locallearn.feedback import convert

    parser = argparse.ArgumentParser(prog="python -m locallearn.alignment", description=main.__doc__)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--widths", default="1024,1024,1024")
    parser.add_argument("--modes", default="fa,usf,brsf,frsf")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=50, help="measure every N training steps")
    parser.add_argument("--probe", type=int, default=512, help="probe batch: the first N validation examples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/alignment")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ds = data.load(args.data)
    widths = [int(w) for w in args.widths.split(",")]
    histories, accuracy = {}, {}
    for mode in args.modes.split(","):
        torch.manual_seed(args.seed)
        model = convert(_mlp(ds.input_shape, widths, ds.num_classes), mode=mode)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        monitor = AlignmentMonitor(ds.x_val[: args.probe], ds.y_val[: args.probe])
        generator, step = torch.Generator().manual_seed(args.seed), 0
        for _ in range(args.epochs):
            for index in torch.randperm(len(ds.x_train), generator=generator).split(args.batch_size):
                if step % args.every == 0:
                    monitor.measure(model, step)
                optimizer.zero_grad()
                F.cross_entropy(model(ds.x_train[index]), ds.y_train[index]).backward()
                optimizer.step()
                step += 1
        monitor.measure(model, step)
        with torch.no_grad():
            accuracy[mode] = float((model.eval()(ds.x_test).argmax(1) == ds.y_test).float().mean())
        histories[mode] = monitor.history
        print(f"{mode}: test accuracy {100 * accuracy[mode]:.2f} %, final update angles "
              + ", ".join(f"{r['update_angle']:.1f}" for r in monitor.history if r["step"] == step), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(histories, str(out / "alignment.png"))
    result = {"command": "python -m locallearn.alignment " + " ".join(sys.argv[1:] if argv is None else argv),
              "config": vars(args), "test_accuracy": accuracy, "history": histories,
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "version": _version(),
              "machine": io.machine()}
    io.write_json(out / "alignment.json", result)
    return result


def _version() -> str:
    import locallearn

    return locallearn.__version__


if __name__ == "__main__":
    main()
