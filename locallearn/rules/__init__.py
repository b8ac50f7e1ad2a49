"""Local learning rules (the *rule* axis). ``create(name, **kw)`` builds one; ``names()`` lists them.

Example:
    >>> from locallearn import rules
    >>> rules.create("joint", weights=(0.3, 1.0)).weights
    (0.3, 1.0)
"""

from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules.e2e import EndToEnd
from locallearn.rules.joint import JointSupervision
from locallearn.rules.local import LocalCrossEntropy

create = RULES.create
names = RULES.names

__all__ = ["RULES", "EndToEnd", "JointSupervision", "LocalCrossEntropy", "LocalRule", "StageOutput", "create", "names"]
