"""Conformance check that every registered estimator must pass (the API contract, not accuracy).

Accuracy is checked against closed-form ground truths in ``tests/test_info_groundtruth.py``;
this checks what a new estimator class must honour to plug into the rest of the package.

Example:
    >>> from locallearn.info import ESTIMATORS
    >>> check_estimator(ESTIMATORS.create("ksg"))
"""

from __future__ import annotations

import inspect

import numpy as np

from ._estimator import ESTIMATORS, Estimator


def check_estimator(estimator: Estimator, *, n: int = 120) -> None:
    """Assert the estimator contract on a small fixed data set.

    - it is registered under ``estimator.name`` and subclasses ``Estimator``;
    - its constructor takes keyword-only hyper-parameters that ``get_params`` reads back;
    - ``compute`` after several ``update`` calls equals its pure ``function`` on all the data,
      and after ``reset`` it starts afresh (and refuses to compute with no data);
    - NaN and mismatched sample counts raise ``ValueError``.
    """
    from .._params import get_params

    cls = type(estimator)
    assert isinstance(estimator, Estimator), f"{cls.__name__} must subclass locallearn.info.Estimator"
    assert ESTIMATORS.get(estimator.name) is cls, f"{cls.__name__} is not registered as {estimator.name!r}"
    parameters = inspect.signature(cls.__init__).parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    assert not positional, f"{cls.__name__} hyper-parameters must be keyword-only; got positional {positional}"
    keyword = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    assert set(get_params(estimator)) == keyword, f"{cls.__name__} must store every hyper-parameter by its name"

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(n, 1)).astype(float)
    y = np.hstack([x + 0.3 * rng.normal(size=(n, 1)), rng.normal(size=(n, 1))])
    estimator.reset()
    for part in np.array_split(np.arange(n), 3):
        estimator.update(x[part], y[part])
    assert estimator.compute() == cls.function(x, y, **get_params(estimator)), \
        f"{cls.__name__}: compute() after batched updates differs from its function on all the data"
    estimator.reset()
    try:
        estimator.compute()
    except RuntimeError:
        pass
    else:
        raise AssertionError(f"{cls.__name__}: compute() with no data must raise RuntimeError")
    for bad_x, bad_y, what in ((np.full((4, 1), np.nan), y[:4], "NaN"), (x[:5], y[:4], "mismatched samples")):
        try:
            estimator.update(bad_x, bad_y)
        except ValueError:
            continue
        raise AssertionError(f"{cls.__name__}: update() with {what} must raise ValueError")
    estimator.reset()
