"""The whole early-exit analysis of one trained network: cache logits, cost the stages (counted FLOPs, or
wall time measured on this machine), calibrate on validation, evaluate on test, check the real runner
(and, when asked, its measured speed-up beside the one the cost table predicts), write the report and figures.

Example:
    >>> import torch, tempfile
    >>> from locallearn import build_mlp
    >>> net = build_mlp((4,), (8, 8), 3)
    >>> xy = (torch.randn(50, 4), torch.randint(0, 3, (50,)))
    >>> report = analyse_exits(net, xy, (torch.randn(40, 4), torch.randint(0, 3, (40,))), out_dir=tempfile.mkdtemp())
    >>> report["runner"]["agrees_with_offline"]
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import io
from .calibrate import sweep
from .collect import collect_exit_logits
from .._params import check_choice
from .cost import stage_costs
from .latency import compare_speedup, stage_latency
from .policies import ExitPolicy
from .report import exit_report, plot_accuracy_cost, plot_exit_histogram
from .runner import EarlyExitRunner
from .thresholds import Outcomes, evaluate


def _refuse_collapsed(logits: torch.Tensor) -> None:
    """A net whose exits give NaN, or the same scores for every sample, has nothing to calibrate: one line saying
    so (else the thresholds' leak check would blame identical rows on the calibration split)."""
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("The net's exits give non-finite scores (NaN or inf) on the validation split: its weights "
                         "diverged; early exits cannot be calibrated on it.")
    if logits.shape[1] > 1 and bool((logits == logits[:, :1]).all()):
        raise ValueError("Every exit gives the same scores for every validation sample: the net is collapsed (constant "
                         "outputs); early exits cannot be calibrated on it.")


def analyse_exits(
    net: nn.Module, val_xy: tuple[torch.Tensor, torch.Tensor], test_xy: tuple[torch.Tensor, torch.Tensor], *,
    policy: str | ExitPolicy = "entropy", max_drop: float = 0.005, out_dir: str | Path | None = None, batch_size: int = 1024,
    cost: str = "flops", timing_batch_size: int = 256, measure_speedup: bool = False,
) -> dict[str, Any]:
    """Calibrate ``policy`` on ``val_xy`` for at most ``max_drop`` accuracy loss, report on ``test_xy``.

    ``cost="latency"`` costs the stages in seconds per sample measured at ``timing_batch_size`` on the
    validation inputs (``stage_latency``) instead of counted FLOPs; ``measure_speedup`` adds the runner's
    measured wall-clock speed-up on the test inputs beside the table's prediction (``compare_speedup``).

    Writes ``val_logits.pt``, ``test_logits.pt``, ``report.json``, ``accuracy_cost.png`` and
    ``exit_histogram.png`` into ``out_dir`` when given.
    """
    val = collect_exit_logits(net, *val_xy, split="val", batch_size=batch_size)
    test = collect_exit_logits(net, *test_xy, split="test", batch_size=batch_size)
    _refuse_collapsed(val.logits)
    check_choice(cost, name="cost", owner="analyse_exits", choices=("flops", "latency"))
    if cost == "latency":
        costs = stage_latency(net, val_xy[0][:2048], batch_size=timing_batch_size)
    else:
        costs = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], tuple(val_xy[0].shape[1:]))
    frontier = sweep(val, policy, costs)
    thresholds = frontier.target(max_drop)
    result = evaluate(test, thresholds, costs)
    report = exit_report(test, result, costs)
    runner = EarlyExitRunner(net, thresholds, count_flops=True).run(test_xy[0])
    report.update(
        policy=repr(thresholds.policy),
        thresholds=list(thresholds.values),
        calibrated_on=thresholds.calibrated_on,
        target_max_drop_pt=100 * max_drop,
        val_accuracy=thresholds.details["accuracy"],
        val_last_exit_accuracy=thresholds.details["last_exit_accuracy"],
        val_relative_cost=thresholds.details["relative_cost"],
        target_met_on_val=thresholds.details["met"],
        runner={
            "agrees_with_offline": bool(torch.equal(runner.prediction, result.prediction) and torch.equal(runner.exit, result.exit)),
            "mean_counted_flops": float(runner.flops.mean()),
        },
    )
    if measure_speedup:
        report["speedup"] = compare_speedup(net, thresholds, test_xy[0], costs, batch_size=timing_batch_size)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        val.save(out / "val_logits.pt")
        test.save(out / "test_logits.pt")
        io.write_json(out / "report.json", report)
        on_test = Outcomes(thresholds.policy, test, costs)
        test_curve = [on_test.accuracy_cost(t) for t in frontier.thresholds]
        plot_accuracy_cost(
            out / "accuracy_cost.png",
            {"validation (calibration)": (frontier.relative_cost, frontier.accuracy),
             "test": ([c for _, c in test_curve], [a for a, _ in test_curve])},
            chosen={f"chosen (test), <= {100 * max_drop:g} pt on val": (result.relative_cost, result.accuracy)},
            title=f"{thresholds.policy.name}: accuracy vs cost",
        )
        plot_exit_histogram(out / "exit_histogram.png", {"test": report["exit_histogram"]}, title="where test samples left")
    return report
