"""Local learning rules (the *rule* axis). ``create(name, **kw)`` builds one; ``names()`` lists them.

Example:
    >>> from locallearn import rules
    >>> rules.create("joint", weights=(0.3, 1.0)).weights
    (0.3, 1.0)
"""

from locallearn.rules.auglocal import AugLocal
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules.dfa import DirectFeedbackAlignment
from locallearn.rules.dtp import DifferenceTargetPropagation
from locallearn.rules.e2e import EndToEnd
from locallearn.rules.fa_heads import FixedRandomHeads
from locallearn.rules.forward_forward import ForwardForward
from locallearn.rules.forward_gradient import ForwardGradient
from locallearn.rules.ib import InformationBottleneck
from locallearn.rules.infopro import InfoPro
from locallearn.rules.joint import JointSupervision
from locallearn.rules.joint_cost import JointCostPenalty
from locallearn.rules.local import LocalCrossEntropy
from locallearn.rules.predsim import PredSim, PredSimBio, Sim
from locallearn.rules.ztw import ZeroTimeWaste

create = RULES.create
names = RULES.names

__all__ = [
    "RULES", "AugLocal", "DifferenceTargetPropagation", "DirectFeedbackAlignment", "EndToEnd", "FixedRandomHeads", "InformationBottleneck", "JointSupervision",
    "JointCostPenalty",
    "InfoPro",
    "ForwardForward",
    "ForwardGradient",
    "LocalCrossEntropy", "LocalRule", "PredSim", "PredSimBio", "Sim", "StageOutput", "ZeroTimeWaste", "create", "names",
]
