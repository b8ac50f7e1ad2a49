"""Fast check of T11 (theory/README.md): the FA update turns towards the true gradient while training."""

from __future__ import annotations

import math

import pytest
import torch

import locallearn as ll
from theory import t11_feedback_alignment


def test_angle_degrees_against_the_dot_product_formula():
    a, b = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0, 1.0, 1.0])
    want = math.degrees(math.acos(2.0 / (math.sqrt(5.0) * math.sqrt(2.0))))
    assert abs(t11_feedback_alignment.angle_degrees(a, b) - want) < 1e-3


def test_T11_fa_update_aligns_with_the_gradient():
    rows = t11_feedback_alignment.train_and_measure(ll.data.load("digits"), epochs=10, seed=0)
    first, last = rows[0], rows[-1]
    for key in ("W1", "W2", "delta_h1", "delta_h2"):
        assert 75 < first[key] < 105  # B independent of W at initialisation: near-orthogonal
        assert last[key] < first[key] - 5
    assert last["delta_h2"] < 70 and last["W2"] < 70  # the layer under the output aligns most


def test_T11_angle_agrees_with_locallearn_alignment_where_it_exists():
    alignment = pytest.importorskip("locallearn.alignment")  # another engineer's module: cross-check, not a dependency
    data = ll.data.load("digits")
    twin, model = t11_feedback_alignment.fa_mlp(data, seed=1)
    x, y = data.x_train[:256], data.y_train[:256]
    ours = t11_feedback_alignment.alignment(model, twin, x, y)
    theirs = {row["layer"]: row["update_angle"] for row in alignment.layer_alignment(model, x, y)}
    assert abs(ours["W1"] - theirs["1"]) < 1e-3 and abs(ours["W2"] - theirs["3"]) < 1e-3
