"""Latency cost tables, multi-tier costs and bytes, calibration to a latency budget.

References written out here: per-sample seconds of a block that sleeps a known time per call (a lower
bound that cannot be beaten), the tier cost formula term by term, eq. 12 and eq. 4 by hand, the bytes a
sample sends from its exit and the feature shapes.
"""

import time

import pytest
import torch
from torch import nn

from _exit_nets import trained_digits_cnn
from locallearn.exits import (
    CostTable, EarlyExitRunner, Link, Thresholds, Tier, TierPlan, collect_exit_logits, compare_speedup, exit_gains,
    expected_cost, exit_fractions, feature_bytes, for_latency_budget, layer_latency, per_sample_cost, stage_latency, sweep,
)
from locallearn.net import LocalNet, Stage


class Sleep(nn.Module):
    """Sleeps ``seconds`` per call, whatever the batch size."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, h):
        time.sleep(self.seconds)
        return h


@pytest.fixture(scope="module")
def trained():
    return trained_digits_cnn(every_exit=True, steps=15)


def mid_thresholds(net, x, y):
    cache = collect_exit_logits(net, x, y, split="val")
    sure = torch.softmax(cache.logits, -1).amax(-1)
    return Thresholds.fixed("max-prob", sure.median(-1).values[:-1].tolist())


def test_latency_table_is_seconds_per_sample_and_depends_on_batch_size():
    net = LocalNet([Stage(Sleep(0.004), nn.Identity()), Stage(nn.Identity(), Sleep(0.002))])
    x = torch.zeros(64, 3)
    at32, at16 = stage_latency(net, x, batch_size=32, rounds=2), stage_latency(net, x, batch_size=16, rounds=2)
    assert at32.unit == "s" and at32.n_exits == 2
    # 2 calls of 4 ms for 64 samples at batch 32, 4 calls at batch 16: sleeping is a floor no timing beats
    assert at32.blocks[0] >= 2 * 0.004 / 64 and at16.blocks[0] >= 4 * 0.004 / 64
    assert at32.heads[1] >= 2 * 0.002 / 64 and at16.heads[1] >= 4 * 0.002 / 64
    assert layer_latency([Sleep(0.003), nn.Identity()], x, batch_size=64, rounds=1)[0] >= 0.003 / 64


def test_compare_speedup_predicts_from_the_table_and_the_exits_taken(trained):
    ds, net = trained
    table = stage_latency(net, ds.x_val, batch_size=64, rounds=1)
    th = mid_thresholds(net, ds.x_val, ds.y_val)
    out = compare_speedup(net, th, ds.x_test, table, batch_size=64, rounds=1)
    exits = EarlyExitRunner(net, th).run(ds.x_test).exit
    cumulative = [sum(table.blocks[: k + 1]) + sum(table.heads[: k + 1]) for k in range(3)]
    by_hand = (sum(table.blocks) + table.heads[-1]) / (sum(cumulative[e] for e in exits.tolist()) / len(exits))
    assert out["predicted_speedup"] == pytest.approx(by_hand, rel=1e-9)
    assert out["measured_speedup"] > 0 and out["measured_over_predicted"] == pytest.approx(out["measured_speedup"] / by_hand)


def test_latency_budget_picks_the_most_accurate_point_within_budget(trained):
    ds, net = trained
    val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
    table = CostTable(blocks=(2e-6, 3e-6, 1e-6), heads=(1e-7, 1e-7, 1e-7), unit="s")
    budget = 0.8 * table.full
    th = for_latency_budget(val, "max-prob", table, budget=budget)
    frontier = sweep(val, "max-prob", table)
    within = [a for a, c in zip(frontier.accuracy, frontier.relative_cost) if c * table.full <= budget]
    assert th.details["accuracy"] == max(within)
    assert th.details["expected_cost"] <= budget
    with pytest.raises(ValueError, match="cannot meet a budget"):
        for_latency_budget(val, "max-prob", table, budget=1e-9)
    with pytest.raises(ValueError, match="'budget'"):
        for_latency_budget(val, "max-prob", table, budget=-1.0)


THREE_TIERS = (Tier("device", speed=1e8), Tier("edge", speed=1e9), Tier("cloud", speed=1e10))
LINKS = (Link(bandwidth=2e5, latency=0.004), Link(bandwidth=5e6, latency=0.03))


def test_tier_cost_table_matches_the_formula_term_by_term():
    compute = CostTable(blocks=(1e6, 4e6, 2e6), heads=(1e4, 2e4, 3e4))
    plan = TierPlan(tiers=THREE_TIERS, links=LINKS, assignment=(0, 2, 2))  # stage 1 jumps device -> cloud
    table = plan.cost_table(compute, input_bytes=3136, feature_bytes=(1000, 2000, 500))
    assert table.unit == "s"
    assert table.blocks[0] == pytest.approx(1e6 / 1e8)
    assert table.blocks[1] == pytest.approx(4e6 / 1e10 + (1000 / 2e5 + 0.004) + (1000 / 5e6 + 0.03))
    assert table.blocks[2] == pytest.approx(2e6 / 1e10)
    assert table.heads == pytest.approx((1e4 / 1e8, 2e4 / 1e10, 3e4 / 1e10))
    assert plan.bytes_per_exit(input_bytes=3136, feature_bytes=(1000, 2000, 500)).tolist() == [0.0, 2000.0, 2000.0]
    # the input starts on the device: a first stage in the cloud ships x over both links
    cloud_only = TierPlan(tiers=THREE_TIERS, links=LINKS, assignment=(2, 2, 2))
    assert cloud_only.bytes_per_exit(input_bytes=3136, feature_bytes=(1, 1, 1)).tolist() == [6272.0] * 3


def test_runner_bytes_match_the_formula_and_eq_4_and_12_use_tier_costs(trained):
    ds, net = trained
    plan = TierPlan(tiers=THREE_TIERS, links=LINKS, assignment=(0, 1, 2))
    input_bytes, sizes = feature_bytes(net, (1, 8, 8))
    assert input_bytes == 64 * 4 and sizes == [4 * 4 * 4 * 4, 8 * 2 * 2 * 4, 8 * 2 * 2 * 4]  # (C, H, W) float32 maps: 8 -> 4 -> 2 -> 2 pixels
    th = mid_thresholds(net, ds.x_val, ds.y_val)
    out = EarlyExitRunner(net, th, tiers=plan).run(ds.x_test)
    assert len(set(out.exit.tolist())) == 3  # samples leave at every exit
    by_formula = torch.tensor([0.0, sizes[0], sizes[0] + sizes[1]], dtype=torch.float64)[out.exit]
    torch.testing.assert_close(out.bytes_sent, by_formula, rtol=0, atol=1e-9)
    compute = CostTable(blocks=(1e6, 4e6, 2e6), heads=(1e4, 2e4, 3e4))
    table = plan.cost_table(compute, input_bytes=input_bytes, feature_bytes=sizes)
    f = exit_fractions(out.exit, 3)
    eq12 = sum(float(f[k]) * (sum(table.blocks[: k + 1]) + sum(table.heads[: k + 1])) for k in range(3))
    assert expected_cost(f, table) == pytest.approx(eq12)
    assert float(per_sample_cost(out.exit, table).mean()) == pytest.approx(eq12)
    reach = [float((out.exit >= k).double().mean()) for k in range(2)]
    eq4 = [float(f[k]) * (sum(table.blocks[k + 1 :]) + table.heads[-1]) - reach[k] * table.heads[k] for k in range(2)]
    assert exit_gains(out.exit, table.blocks, table.heads) == pytest.approx(eq4)


def test_tier_plan_refuses_bad_input():
    with pytest.raises(ValueError, match="non-decreasing"):
        TierPlan(tiers=THREE_TIERS, links=LINKS, assignment=(1, 0, 2))
    with pytest.raises(ValueError, match="one Link between each pair"):
        TierPlan(tiers=THREE_TIERS, links=LINKS[:1], assignment=(0, 1, 2))
    with pytest.raises(ValueError, match="'bandwidth' parameter of Link"):
        Link(bandwidth=0)
    with pytest.raises(ValueError, match="'speed' parameter of Tier 'edge'"):
        Tier("edge", speed=-1)
    plan = TierPlan(tiers=THREE_TIERS, links=LINKS, assignment=(0, 1))
    with pytest.raises(ValueError, match="one size per stage"):
        plan.bytes_per_exit(input_bytes=1, feature_bytes=(1, 2, 3))
    with pytest.raises(ValueError, match="CostTable.unit"):
        CostTable(blocks=(1.0,), heads=(0.0,), unit="")


def test_analyse_exits_with_a_latency_table_reports_predicted_and_measured_speed_up(trained):
    from locallearn.exits import analyse_exits

    ds, net = trained
    report = analyse_exits(net, (ds.x_val, ds.y_val), (ds.x_test, ds.y_test), policy="max-prob", max_drop=0.02,
                           cost="latency", timing_batch_size=64, measure_speedup=True)
    assert report["cost_unit"] == "s" and report["runner"]["agrees_with_offline"]
    # the table's prediction on test is 1 / the relative cost of the exits taken there
    assert report["speedup"]["predicted_speedup"] == pytest.approx(1 / report["relative_cost"])
    assert report["speedup"]["measured_speedup"] > 0
    with pytest.raises(ValueError, match="'cost' parameter of analyse_exits"):
        analyse_exits(net, (ds.x_val, ds.y_val), (ds.x_test, ds.y_test), cost="energy")
