"""Fast check of T10 (theory/README.md): the real runner's saving from an exit is eq. 4's gain, sign and size."""

from __future__ import annotations

import pytest
import torch

import locallearn as ll
from locallearn.exits import Thresholds
from theory import t10_exit_placement


def test_T10_measured_saving_equals_eq4_with_both_signs():
    data = ll.data.load("digits")
    net = t10_exit_placement.trained_net(data)
    with torch.no_grad():
        sureness = torch.stack([Thresholds.fixed("entropy", [0.0, 0.0]).policy.sureness(z) for z in net.eval()(data.x_test)])
    gains = []
    for k in (0, 1):
        for q in (0.05, 0.95):
            values = [float(sureness[0].median()), float(sureness[1].median())]
            values[k] = float(sureness[k].quantile(q))
            row = t10_exit_placement.placement_row(net, data.x_test, values, k, data.input_shape)
            eq4 = row["f_k"] * row["S_k"] - row["r_k"] * row["h_k"]  # survey eq. 4
            assert row["measured_saving"] == pytest.approx(eq4, rel=1e-9, abs=1e-6)
            if k == 1:  # the last early exit: the package's exit_gains is exact
                assert row["package_exit_gains"] == pytest.approx(eq4, rel=1e-9, abs=1e-6)
            gains.append(eq4)
    assert min(gains) < 0 < max(gains)  # an exit that pays and one that costs
