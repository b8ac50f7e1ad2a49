"""Exit policies: one small class each, filed in ``EXIT_POLICIES`` (a name or an instance works)."""

from .base import EXIT_POLICIES, ExitDecision, ExitPolicy, refuse_test_split
from .combine import AvgPoolPolicy, MaxPoolPolicy, WeightedPolicy
from .confidence import EntropyPolicy, MarginPolicy, MaxProbPolicy
from .ensemble import GeometricEnsemblePolicy
from .gate import LearnedGatePolicy
from .patience import PatiencePolicy

__all__ = [
    "EXIT_POLICIES", "ExitDecision", "ExitPolicy", "refuse_test_split", "EntropyPolicy", "MaxProbPolicy",
    "MarginPolicy", "GeometricEnsemblePolicy", "PatiencePolicy", "LearnedGatePolicy", "WeightedPolicy", "AvgPoolPolicy", "MaxPoolPolicy",
]
