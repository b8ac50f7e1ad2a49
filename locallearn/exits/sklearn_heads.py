"""Non-neural exits: a scikit-learn classifier fitted on a stage's frozen features, used as that stage's head.

The survey (sec. 5.4, Fig. 3(b)) notes that once the backbone is trained and
frozen, the auxiliary classifiers need not be neural: decision trees, SVMs or
logistic regressions fitted on the features can serve as exits.
:class:`SklearnHead` is an ``nn.Module`` whose forward returns the classifier's
log-probabilities (``log predict_proba``; ``softmax`` of them gives the
probabilities back), so every exit policy, the calibration on validation data,
the early-exit runner and the measured latency tables treat it like any other
head. ``FlopCounterMode`` sees nothing of it (it is not torch code): cost it in
measured time (``stage_latency``).

A classifier without ``predict_proba`` (``LinearSVC``) is refused with a hint:
wrap it in ``CalibratedClassifierCV``, as ``make_estimator("linear-svc")`` does.
Feature maps ``(C, H, W)`` can be average-pooled to a ``pool x pool`` grid before
flattening (as the ``conv`` head does), which keeps the fit small.

Example:
    >>> import torch
    >>> from sklearn.linear_model import LogisticRegression
    >>> h, y = torch.randn(60, 4), torch.arange(60) % 3
    >>> head = SklearnHead(LogisticRegression(max_iter=200), num_classes=3).fit(h, y)
    >>> z = head(h)
    >>> z.shape, bool(torch.allclose(z.exp().sum(1), torch.ones(60), atol=1e-5))
    (torch.Size([60, 3]), True)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .._params import check_choice, check_number


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=50, max_depth=16, n_jobs=1, random_state=seed)


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, random_state=seed))


def _linear_svc(seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return make_pipeline(StandardScaler(), CalibratedClassifierCV(LinearSVC(C=0.05, random_state=seed), cv=3))


#: Ready-made classifiers: standardised logistic regression, a linear SVM with sigmoid-calibrated scores
#: (3-fold ``CalibratedClassifierCV``), and a random forest (50 trees, depth <= 16).
ESTIMATORS: dict[str, Callable[[int], Any]] = {
    "logreg": _logistic_regression,
    "linear-svc": _linear_svc,
    "random-forest": _random_forest,
}


def make_estimator(name: str, *, seed: int = 0) -> Any:
    """A fresh, unfitted classifier from :data:`ESTIMATORS`."""
    return ESTIMATORS[check_choice(name, name="name", owner="make_estimator", choices=ESTIMATORS)](seed)


class SklearnHead(nn.Module):
    """A scikit-learn classifier as an exit; ``forward`` gives ``log p`` of shape ``[N, num_classes]``.

    Classes the classifier never saw in fitting get probability 0 (log ``-inf`` is clamped to ``log 1e-12``).
    """

    def __init__(self, estimator: Any, *, num_classes: int, pool: int | None = None) -> None:
        super().__init__()
        if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "fit"):
            raise TypeError(
                f"SklearnHead needs a classifier with fit and predict_proba. Got {type(estimator).__name__} instead; "
                "for a classifier with only decision_function (LinearSVC), wrap it in "
                "sklearn.calibration.CalibratedClassifierCV (see make_estimator('linear-svc'))."
            )
        self.estimator = estimator
        self.num_classes = check_number(num_classes, name="num_classes", owner="SklearnHead", low=2, integer=True)
        self.pool = None if pool is None else check_number(pool, name="pool", owner="SklearnHead", low=1, integer=True)
        self.fitted = False

    def features(self, h: torch.Tensor) -> np.ndarray:
        """The rows the classifier sees: ``h`` (pooled to ``pool x pool`` if it is a feature map), flattened."""
        if self.pool is not None and h.dim() == 4:
            h = nn.functional.adaptive_avg_pool2d(h, self.pool)
        return h.detach().flatten(1).cpu().float().numpy()

    def fit(self, h: torch.Tensor, y: torch.Tensor) -> SklearnHead:
        """Fit the classifier on frozen features ``h`` and labels ``y``."""
        if len(h) != len(y) or len(h) == 0:
            raise ValueError(f"SklearnHead.fit needs as many labels as feature rows (at least one). Got {len(h)} rows and {len(y)} labels.")
        y = torch.as_tensor(y)
        if y.dim() != 1 or y.is_floating_point() or y.is_complex() or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ValueError(
                f"SklearnHead.fit needs 1-D integer labels in [0, {self.num_classes}). "
                f"Got shape {tuple(y.shape)}, dtype {y.dtype}, range [{y.min().item()}, {y.max().item()}] instead."
            )
        self.estimator.fit(self.features(h), y.cpu().numpy())
        self.fitted = True
        return self

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("SklearnHead must be fitted on frozen features first: call .fit(h, y).")
        proba = self.estimator.predict_proba(self.features(h))
        out = np.zeros((len(h), self.num_classes), dtype=np.float32)
        out[:, np.asarray(self.estimator.classes_, dtype=int)] = proba
        return torch.from_numpy(out).to(h.device).clamp_min(1e-12).log()

    def extra_repr(self) -> str:
        return f"estimator={self.estimator!r}, num_classes={self.num_classes}, pool={self.pool}"
