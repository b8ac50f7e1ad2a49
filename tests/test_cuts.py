"""The SEDONA-style cut search on a toy chain whose best cuts are known, and its bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from locallearn.cuts import choose_cuts, search_cuts
from locallearn.data import Dataset
from locallearn.models.base import ModelFamily
from locallearn.net import LocalNet, Stage


class Blind(nn.Module):
    """A head that ignores its features (a constant prediction): the units below it get no learning signal."""

    def __init__(self, width: int, classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))
        self.width = width

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(h), -1)


class ToyChain(ModelFamily):
    """Five tanh units of width 8; the first starts at zero, so it only moves if a signal reaches it. The local
    head at candidate ``i`` (after unit ``i``) sees the features when ``i`` is in ``sighted``, else it is ``Blind``:
    a cut at a blind candidate leaves the first unit at zero (every later unit sees a constant), a cut at a
    sighted one trains it. The best cuts are the sighted candidates."""

    sighted = (1, 3)

    def __init__(self, *, stages: int = 1, cuts=()) -> None:
        self.stages, self.cuts = stages, tuple(cuts)

    def candidate_cuts(self):
        return [0, 1, 2, 3]

    def build(self, input_shape, num_classes):
        units = [nn.Sequential(nn.Linear(input_shape[0] if i == 0 else 8, 8), nn.Tanh()) for i in range(5)]
        nn.init.zeros_(units[0][0].weight)
        nn.init.zeros_(units[0][0].bias)
        ends = [c + 1 for c in self.cuts] + [5]
        stages = []
        for a, b in zip([0, *ends[:-1]], ends):
            last = b == 5
            head = nn.Linear(8, num_classes) if last or (b - 1) in self.sighted else Blind(8, num_classes)
            stages.append(Stage(nn.Sequential(*units[a:b]), head))
        return LocalNet(stages)


def _toy_data(n: int = 512) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # four quadrant classes
    return Dataset("quadrants", x, y, x, y, x, y, num_classes=4)


@pytest.mark.slow
def test_the_search_finds_the_cuts_whose_local_heads_can_learn():
    found = search_cuts(ToyChain, 3, _toy_data(256), steps=60, batch_size=64, lr=0.3, val_size=256)
    assert found.cuts == (1, 3) and found.indices == (1, 3)
    blind = [found.scores[i] for i in (0, 2)]
    sighted = [found.scores[i] for i in (1, 3)]
    assert min(blind) > 0.9 * math.log(4)  # a blind cut leaves the last exit at chance
    assert max(sighted) < 0.5 * math.log(4)
    assert min(found.local_exit_accuracy[i] for i in (1, 3)) > 0.8


def test_a_search_repeats_exactly_and_one_cut_is_the_best_candidate():
    data = _toy_data(256)
    first = search_cuts(ToyChain, 2, data, steps=20, batch_size=32, lr=0.2, val_size=256, seed=3)
    again = search_cuts(ToyChain, 2, data, steps=20, batch_size=32, lr=0.2, val_size=256, seed=3)
    assert first == again
    assert first.cuts == (first.candidates[min(range(4), key=lambda i: first.scores[i])],)


def test_choose_cuts_keeps_the_lowest_scores_in_forward_order():
    assert choose_cuts([0.3, 0.1, 0.2, 0.1], 3) == [1, 3]
    assert choose_cuts([0.3, 0.1], 1) == []
    with pytest.raises(ValueError, match="K must be in 1..3"):
        choose_cuts([0.3, 0.1], 4)


def test_bad_input_is_one_clear_line():
    data = _toy_data(64)
    with pytest.raises(ValueError, match="does not take explicit cut points"):
        search_cuts("cnn", 2, data, steps=1)
    with pytest.raises(ValueError, match="'num_stages' parameter of search_cuts"):
        search_cuts(ToyChain, 6, data, steps=1)
    with pytest.raises(ValueError, match="'steps' parameter of search_cuts"):
        search_cuts(ToyChain, 2, data, steps=0)
    empty = Dataset("no-val", data.x_train, data.y_train, data.x_val[:0], data.y_val[:0], data.x_test, data.y_test, 4)
    with pytest.raises(ValueError, match="validation split"):
        search_cuts(ToyChain, 2, empty, steps=1)
