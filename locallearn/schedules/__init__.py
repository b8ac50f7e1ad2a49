"""Training schedules (the *schedule* axis). ``create(name, **kw)`` builds one; ``names()`` lists them.

Example:
    >>> from locallearn import schedules
    >>> "sequential" in schedules.names()
    True
"""

from locallearn.schedules.base import SCHEDULES, NonFiniteLossError, Schedule, TrainState, train_step
from locallearn.schedules.decoupled import Decoupled
from locallearn.schedules.freezeout import Freezeout
from locallearn.schedules.pipeline import Pipeline
from locallearn.schedules.sequential import Sequential
from locallearn.schedules.simultaneous import Simultaneous

create = SCHEDULES.create
names = SCHEDULES.names

__all__ = [
    "SCHEDULES", "Decoupled", "Freezeout", "NonFiniteLossError", "Pipeline", "Schedule", "Sequential", "Simultaneous",
    "TrainState", "create", "names", "train_step",
]
