"""``joint-cost``: joint plus the soft cost of survey eq. 13-14, checked against the formula written out here."""

import copy

import pytest
import torch
from torch.nn import functional as F

from locallearn import build_mlp, data, rules, seed_everything
from locallearn.exits import CostTable, stage_costs
from locallearn.rules.base import StageOutput


def losses_of(net, rule, x, y, stages=None):
    """Every stage's loss for one batch, in order, as the engine feeds them to a global rule."""
    h, out = x, []
    for k, stage in enumerate(net.stages):
        h_in, h = h, stage.block(h)
        if stages is None or k in stages:
            out.append(rule.stage_loss(StageOutput(index=k, is_last=k == len(net.stages) - 1, stage=stage, h_in=h_in, h_out=h, logits=stage.head(h), x=x), y))
    return out


def grads(net, loss):
    net.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in net.parameters()]


@pytest.fixture()
def batch():
    ds = data.load("digits")
    seed_everything(0)
    return build_mlp(ds.input_shape, (16, 16, 16), 10), ds.x_train[:48], ds.y_train[:48]


def test_zero_penalty_is_joint(batch):
    net, x, y = batch
    rule = rules.create("joint-cost", penalty=0.0, weights=(0.5, 0.7, 1.0))
    rule.setup(net)
    mine = grads(net, sum(losses_of(net, rule, x, y)))
    theirs = grads(net, sum(losses_of(net, rules.create("joint", weights=(0.5, 0.7, 1.0)), x, y)))
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradient_is_that_of_eq_13_14_written_out(batch):
    net, x, y = batch
    lam, q, tau = 0.7, 0.3, 0.1
    rule = rules.create("joint-cost", penalty=lam, threshold=q, temperature=tau)
    rule.setup(net)
    mine = grads(net, sum(losses_of(net, rule, x, y)))
    table = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], (1, 8, 8))
    C = [sum(table.blocks[: k + 1]) + sum(table.heads[: k + 1]) for k in range(3)]  # eq. 12's C_k
    full = sum(table.blocks) + table.heads[-1]
    logits = net(x)
    ce = sum(F.cross_entropy(z, y) for z in logits)
    c = [torch.sigmoid((torch.softmax(z, -1).max(-1).values - q) / tau) for z in logits]
    P = [c[0], (1 - c[0]) * c[1], (1 - c[0]) * (1 - c[1])]  # eq. 13, the last exit takes the rest
    soft = sum(P[k] * C[k] for k in range(3)).mean() / full  # eq. 14
    reference = grads(net, ce + lam * soft)
    for a, b in zip(mine, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_given_cost_table_is_used_and_a_partial_step_is_refused(batch):
    net, x, y = batch
    table = CostTable(blocks=(1.0, 5.0, 20.0), heads=(0.0, 0.0, 0.0))
    rule = rules.create("joint-cost", penalty=1.0, costs=table)
    rule.setup(net)
    total = losses_of(net, rule, x, y)[-1] - F.cross_entropy(net(x)[-1], y)
    c = [torch.sigmoid((torch.softmax(z, -1).max(-1).values - 0.9) / 0.05) for z in net(x)]
    expected = (c[0] * 1 + (1 - c[0]) * c[1] * 6 + (1 - c[0]) * (1 - c[1]) * 26).mean() / 26
    torch.testing.assert_close(total, expected)
    with pytest.raises(ValueError, match="every exit's logits in the same step"):
        losses_of(net, rule, x, y, stages=[1, 2])
    with pytest.raises(ValueError, match="'penalty' parameter of JointCostPenalty"):
        rules.create("joint-cost", penalty=-1.0)


def test_the_penalty_moves_samples_to_earlier_exits(batch):
    """Trained from the same start, a strong penalty lowers the hard cascaded cost of the max-prob policy."""
    net, _, _ = batch
    ds = data.load("digits")

    def train(penalty):
        model = copy.deepcopy(net)
        rule = rules.create("joint-cost", penalty=penalty, threshold=0.8)
        rule.setup(model)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(60):
            rows = slice(64 * (step % 15), 64 * (step % 15 + 1))
            opt.zero_grad()
            sum(losses_of(model, rule, ds.x_train[rows], ds.y_train[rows])).backward()
            opt.step()
        with torch.no_grad():
            sure = torch.stack([torch.softmax(z, -1).amax(-1) for z in model(ds.x_val)])
        first = torch.where(sure[0] >= 0.8, 0, torch.where(sure[1] >= 0.8, 1, 2))
        return rule._table.cumulative[first].mean() / rule._table.full

    assert train(5.0) < train(0.0) - 0.05
