"""A visible warning, not a silent success, when a finished run diverged or learned nothing.

Two signs, read from the run's history when it ends:

* a stage's mean training loss in the last epoch above ``DIVERGED_LOSS`` (1e6): healthy runs of
  the package's rules stay within a few units (cross-entropy at chance is ``ln C``), while Adam
  at lr 1e6 ends near 1e10-1e19;
* the best exit's last validation accuracy within ``min(chance / 2, 0.05)`` of chance
  (``1 / num_classes``): the net predicts no better than a guess.

Example:
    >>> history = [{"train_loss": [6.0e10, 1.0e19], "val_accuracy": [0.23, 0.23]}]
    >>> divergence(history, num_classes=10)
    'the training loss reached 1e+19 in the last epoch: the run diverged; lower the learning rate'
    >>> divergence([{"train_loss": [2.3], "val_accuracy": [0.09]}], num_classes=10)
    "the best exit's val accuracy, 9.0 %, is at chance level (10.0 % for 10 classes): the run learned nothing; check the learning rate and the data"
    >>> divergence([{"train_loss": [0.4], "val_accuracy": [0.91]}], num_classes=10) is None
    True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

DIVERGED_LOSS = 1e6


class DivergenceWarning(RuntimeWarning):
    """A run ended with a huge training loss or at chance accuracy."""


def divergence(history: list[dict[str, Any]], num_classes: int | None) -> str | None:
    """What is wrong with a finished run's history, or ``None`` when it looks healthy."""
    if not history:
        return None
    losses = [abs(v) for v in history[-1].get("train_loss", []) if isinstance(v, (int, float)) and not math.isnan(v)]
    if losses and max(losses) > DIVERGED_LOSS:
        return f"the training loss reached {max(losses):.3g} in the last epoch: the run diverged; lower the learning rate"
    evaluated = [r["val_accuracy"] for r in history if r.get("val_accuracy")]
    if num_classes and evaluated:
        best, chance = max(evaluated[-1]), 1.0 / num_classes
        if best <= chance + min(chance / 2, 0.05):
            return (
                f"the best exit's val accuracy, {100 * best:.1f} %, is at chance level ({100 * chance:.1f} % for "
                f"{num_classes} classes): the run learned nothing; check the learning rate and the data"
            )
    return None


def warn_if_diverged(history: list[dict[str, Any]], num_classes: int | None) -> None:
    """Warn (``DivergenceWarning``) and note the reason in the last epoch's record as ``"warning"``."""
    problem = divergence(history, num_classes)
    if problem is not None:
        history[-1]["warning"] = problem
        warnings.warn(problem, DivergenceWarning, stacklevel=3)
