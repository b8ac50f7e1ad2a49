"""The real early-exit runner: same decisions as offline, FLOPs as the formula, skipped blocks really skipped."""

import pytest
import torch

from locallearn import build_cnn, data, seed_everything
from locallearn.exits import (
    EXIT_POLICIES, CostTable, EarlyExitRunner, Thresholds, collect_exit_logits, run_full, stage_costs,
)



@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits")
    seed_everything(0)
    net = build_cnn((1, 8, 8), channels=(4, 8, 8), num_classes=10)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(15):  # a little deeply supervised training, so exits disagree in realistic ways
        optimiser.zero_grad()
        sum(torch.nn.functional.cross_entropy(z, ds.y_train[:256]) for z in net(ds.x_train[:256])).backward()
        optimiser.step()
    x = ds.x_val[:64]
    cache = collect_exit_logits(net, x, ds.y_val[:64], split="val")
    costs = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], (1, 8, 8))
    return net, x, cache, costs


def thresholds_for(policy_name, cache):
    """Thresholds that send some samples out at every exit: halfway between the two middle sureness
    values, so that no sample sits on a threshold (where batch-size rounding could flip it)."""
    quick = {"steps": 20} if policy_name in ("gate", "weighted") else {}
    policy = EXIT_POLICIES.create(policy_name, **quick).fit(cache)
    if policy_name == "patience":
        return Thresholds.fixed(policy, [1.0, 1.0])
    sure = policy.sureness(cache.logits)
    middle = sure.sort(-1).values[:, 31:33].mean(-1)
    return Thresholds.fixed(policy, middle[:-1].tolist())


@pytest.mark.parametrize("policy", EXIT_POLICIES.names())
def test_runner_matches_the_offline_policy_at_batch_n_and_batch_1(setup, policy):
    net, x, cache, _ = setup
    th = thresholds_for(policy, cache)
    offline = th.policy.decide(cache.logits, th.values)
    assert len(set(offline.exit.tolist())) > 1  # the test exercises early exits
    batch = EarlyExitRunner(net, th).run(x)
    assert torch.equal(batch.exit, offline.exit) and torch.equal(batch.prediction, offline.prediction)
    for i in range(0, 64, 7):
        one = EarlyExitRunner(net, th).run(x[i : i + 1])
        assert one.exit.item() == offline.exit[i].item() and one.prediction.item() == offline.prediction[i].item()


def test_counted_flops_equal_the_cascaded_cost_formula(setup):
    net, x, cache, costs = setup
    th = thresholds_for("max-prob", cache)
    out = EarlyExitRunner(net, th, count_flops=True).run(x)
    assert torch.allclose(out.flops, costs.cumulative[out.exit])
    assert out.flops.mean().item() == pytest.approx(
        sum(float((out.exit == k).double().mean()) * costs.cumulative[k].item() for k in range(3))
    )
    uncounted = EarlyExitRunner(net, th, costs=costs).run(x)
    assert torch.equal(uncounted.flops, out.flops)


def test_blocks_after_an_exit_do_not_see_the_sample(setup):
    net, x, cache, _ = setup
    th = thresholds_for("entropy", cache)
    rows = [0] * len(net.stages)

    def counter(k):
        def hook(module, inputs, output):
            rows[k] += inputs[0].shape[0]
        return hook

    handles = [s.block.register_forward_hook(counter(k)) for k, s in enumerate(net.stages)]
    try:
        out = EarlyExitRunner(net, th).run(x)
    finally:
        for h in handles:
            h.remove()
    assert rows == [int((out.exit >= k).sum()) for k in range(len(net.stages))]
    assert rows[0] == 64 and rows[2] < rows[1] < 64


def test_full_run_and_bad_inputs(setup):
    net, x, cache, _ = setup
    assert torch.equal(run_full(net, x), cache.logits[-1].argmax(-1))
    assert net.training  # modes restored
    with pytest.raises(ValueError, match="needs 2 thresholds for a network with 3 exits. Got 1 instead"):
        EarlyExitRunner(net, Thresholds.fixed("entropy", [0.5]))
    with pytest.raises(TypeError, match="needs a network with .stages"):
        EarlyExitRunner(torch.nn.Linear(2, 2), Thresholds.fixed("entropy", [0.5]))
    assert isinstance(CostTable.uniform(3), CostTable)
