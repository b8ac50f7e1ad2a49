"""Early exits: per-exit logit caches, exit policies, calibration on validation data only, compute cost.

Example:
    >>> import torch
    >>> from locallearn.exits import ExitLogits, for_target_accuracy, evaluate
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.randint(0, 3, (400,), generator=g)
    >>> logits = torch.randn(3, 400, 3, generator=g) + 3 * torch.nn.functional.one_hot(labels, 3)
    >>> val, test = ExitLogits(logits[:, :200], labels[:200], "val"), ExitLogits(logits[:, 200:], labels[200:], "test")
    >>> result = evaluate(test, for_target_accuracy(val, "entropy", max_drop=0.01))
    >>> 0 <= result.accuracy <= 1
    True
"""

from .analyse import analyse_exits
from .cache import ExitLogits
from .collect import collect_exit_logits
from .calibrate import (
    Frontier, budget_proportions, for_budget, for_latency_budget, for_target_accuracy, shared_threshold, sweep,
)
from .confidence import max_probability, normalised_entropy, top2_margin
from .cost import (
    CostTable, count_flops, expected_cost, exit_fractions, per_sample_cost, soft_cost_penalty, soft_exit_probabilities,
    soft_expected_cost, stage_costs,
)
from .placement import SDN_FRACTIONS, exit_gain, exit_gains, layer_flops, place_exits
from .policies import (
    EXIT_POLICIES, AvgPoolPolicy, EntropyPolicy, ExitDecision, ExitPolicy, GeometricEnsemblePolicy, LearnedGatePolicy, MarginPolicy, MaxPoolPolicy,
    MaxProbPolicy, PatiencePolicy, WeightedPolicy, refuse_test_split,
)
from .synthetic import synthetic_exit_logits
from .curve import ExitCurve, common_range, curve_area, threshold_curve
from .latency import compare_speedup, latency_tables, layer_latency, stage_latency
from .tiers import Link, Tier, TierPlan, feature_bytes
from .sklearn_heads import ESTIMATORS, SklearnHead, make_estimator
from .frozen_heads import fit_heads, fit_sklearn_heads, freeze_backbone, frozen_features
from .report import exit_report, plot_accuracy_cost, plot_exit_histogram
from .runner import EarlyExitRunner, RunOutput, run_full
from .risk import risk_controlled, violation_rate
from .thresholds import Evaluation, Thresholds, evaluate

__all__ = [
    "ExitLogits", "Frontier", "budget_proportions", "for_budget", "for_latency_budget", "for_target_accuracy", "shared_threshold", "sweep",
    "max_probability", "normalised_entropy", "top2_margin", "CostTable", "count_flops", "expected_cost", "exit_fractions",
    "per_sample_cost", "soft_cost_penalty", "soft_exit_probabilities", "soft_expected_cost", "stage_costs",
    "SDN_FRACTIONS", "exit_gain", "exit_gains", "layer_flops", "place_exits", "EXIT_POLICIES", "AvgPoolPolicy",
    "EntropyPolicy", "ExitDecision", "ExitPolicy", "GeometricEnsemblePolicy", "LearnedGatePolicy", "MarginPolicy", "MaxPoolPolicy", "MaxProbPolicy",
    "PatiencePolicy", "WeightedPolicy", "refuse_test_split", "risk_controlled", "violation_rate", "Evaluation",
    "Thresholds", "evaluate", "synthetic_exit_logits", "collect_exit_logits", "EarlyExitRunner", "RunOutput", "run_full",
    "ExitCurve", "common_range", "curve_area", "threshold_curve", "analyse_exits", "exit_report", "plot_accuracy_cost", "plot_exit_histogram", "compare_speedup", "latency_tables",
    "layer_latency", "stage_latency", "Link", "Tier", "TierPlan", "feature_bytes", "ESTIMATORS", "SklearnHead",
    "make_estimator", "fit_heads", "fit_sklearn_heads", "freeze_backbone", "frozen_features",
]
