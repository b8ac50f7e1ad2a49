"""FLOP counts, the cascaded cost (eq. 12), its soft twin (eq. 13-14), placement and eq. 4."""

import pytest
import torch
from torch import nn

from locallearn.exits import (
    CostTable, count_flops, exit_gain, exit_gains, expected_cost, exit_fractions, layer_flops, per_sample_cost,
    place_exits, soft_cost_penalty, soft_exit_probabilities, soft_expected_cost, stage_costs, SDN_FRACTIONS,
)



def test_linear_flops_are_two_in_out_batch():
    flops, out = count_flops(nn.Linear(7, 5), torch.zeros(3, 7))
    assert flops == 2 * 7 * 5 * 3 and out.shape == (3, 5)


def test_stage_costs_of_a_small_cnn_match_hand_counts():
    blocks = [nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 6))]
    heads = [nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), nn.Linear(6, 3)]
    table = stage_costs(blocks, heads, (1, 8, 8))
    assert table.blocks == (2 * 1 * 4 * 9 * 8 * 8, 2 * 64 * 6)
    assert table.heads == (2 * 64 * 3, 2 * 6 * 3)
    assert all(m.training for m in blocks + heads)  # modes restored


def test_cascaded_cost_on_a_hand_computed_example():
    table = CostTable(blocks=(100.0, 200.0, 300.0), heads=(10.0, 20.0, 30.0))
    # C = [110, 330, 660]; half leave at 0, a quarter at 1 and 2: 55 + 82.5 + 165 = 302.5
    assert table.cumulative.tolist() == [110.0, 330.0, 660.0]
    assert table.full == 630.0
    assert expected_cost([0.5, 0.25, 0.25], table) == pytest.approx(302.5)
    exits = torch.tensor([0, 0, 1, 2])
    assert per_sample_cost(exits, table).mean().item() == pytest.approx(302.5)
    assert exit_fractions(exits, 3).tolist() == [0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="needs 3 non-negative exit fractions summing to 1. Got \\[0.5, 0.6, 0.0\\]"):
        expected_cost([0.5, 0.6, 0.0], table)


def test_soft_cost_matches_the_hard_cost_at_hard_confidences_and_has_gradients():
    table = CostTable(blocks=(100.0, 200.0, 300.0), heads=(10.0, 20.0, 30.0))
    confidence = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.3, 0.3, 0.3, 0.3]])
    probs = soft_exit_probabilities(confidence)
    assert probs.sum(0).tolist() == pytest.approx([1.0] * 4)
    assert soft_expected_cost(confidence, table).item() == pytest.approx(302.5 / 630)
    # a half-confident first exit: P = [0.5, 0.5 * 0.5, 0.25]
    half = soft_exit_probabilities(torch.full((3, 1), 0.5))
    assert half[:, 0].tolist() == pytest.approx([0.5, 0.25, 0.25])
    logits = [torch.randn(16, 4, requires_grad=True) for _ in range(3)]
    soft_cost_penalty(logits, table).backward()
    assert all(z.grad.abs().sum() > 0 for z in logits[:-1])  # the last exit always takes the rest


def test_soft_penalty_tends_to_the_hard_max_prob_cost():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(500, 4, generator=g) * 3 for _ in range(3)]
    table = CostTable(blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.5, 0.5))
    sure = torch.stack([torch.softmax(z, -1).amax(-1) for z in logits])
    hard_exit = torch.where(sure[0] >= 0.8, 0, torch.where(sure[1] >= 0.8, 1, 2))
    hard = per_sample_cost(hard_exit, table).mean().item() / table.full
    soft = soft_cost_penalty(logits, table, threshold=0.8, temperature=1e-4).item()
    assert soft == pytest.approx(hard, abs=1e-3)


def test_placement_at_shallow_deep_fractions():
    assert place_exits([1.0] * 20, SDN_FRACTIONS) == [2, 5, 8, 11, 14, 17]
    assert place_exits([10.0, 1.0, 1.0, 10.0], (0.45, 0.5)) == [0, 1]  # cumulative 10, 11, 12, 22
    costs = layer_flops([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)], (4,))
    assert costs == [32.0, 0.0, 16.0]
    with pytest.raises(ValueError, match="needs fractions in \\(0, 1\\]. Got \\[1.5\\]"):
        place_exits([1.0], (1.5,))


def test_efficiency_condition_eq4():
    assert exit_gain(exit_fraction=0.5, saved_cost=100.0, reach_fraction=1.0, head_cost=10.0) == 40.0
    assert exit_gain(exit_fraction=0.05, saved_cost=100.0, reach_fraction=1.0, head_cost=10.0) < 0
    # exits [0, 0, 1, 2]: exit 0 saves (2 + 3 + 0.5) for half, costs 0.5 for all
    gains = exit_gains(torch.tensor([0, 0, 1, 2]), blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.5, 0.5))
    assert gains == pytest.approx([0.5 * 5.5 - 0.5, 0.25 * 3.5 - 0.5 * 0.5])
    # exact gain = mean cost without the exit - mean cost with it (CostTable.cumulative = C_k)
    with_all = float(CostTable(blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.5, 0.5)).cumulative[[0, 0, 1, 2]].mean())
    no_exit1 = float(CostTable(blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.0, 0.5)).cumulative[[0, 0, 2, 2]].mean())
    assert gains[1] == pytest.approx(no_exit1 - with_all)  # the last early exit: exact
    no_exit0 = float(CostTable(blocks=(1.0, 2.0, 3.0), heads=(0.0, 0.5, 0.5)).cumulative[[1, 1, 1, 2]].mean())
    assert gains[0] > no_exit0 - with_all  # earlier exit, its samples leaving at exit 1 instead: an overestimate
    with pytest.raises(ValueError, match="one head cost per block"):
        exit_gains(torch.tensor([0, 1]), blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"exit index in \[0, 3\)"):
        exit_gains(torch.tensor([0, 5]), blocks=(1.0, 2.0, 3.0), heads=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="0 <= exit_fraction <= reach_fraction <= 1"):
        exit_gain(exit_fraction=0.6, saved_cost=1.0, reach_fraction=0.5, head_cost=1.0)
