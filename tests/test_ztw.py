"""Zero Time Waste (Wołczyk et al., NeurIPS 2021): cascade connections between exits, IC-only training of a
frozen backbone (rule ``ztw``) and the geometric ensemble of exits (policy ``ztw-ensemble``), each against
the paper's / authors' formula written out here."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn.engine import run_stages
from locallearn.exits import EarlyExitRunner, ExitLogits, GeometricEnsemblePolicy, Thresholds, stage_costs
from locallearn.exits.policies.ensemble import geometric_ensemble
from locallearn.heads import ConvHead
from locallearn.heads_cascade import CascadeHead
from locallearn.testing import check_exit_policy, check_rule
from locallearn.exits.synthetic import synthetic_exit_logits


def _layer_norm(z: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = z.mean(-1, keepdim=True)
    var = ((z - mean) ** 2).mean(-1, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps) * gain + shift


def test_a_cascade_head_is_the_authors_linear_layer_on_pooled_features_and_normalised_previous_logits():
    torch.manual_seed(0)
    base = ConvHead((6, 4, 4), 5, grid=2)
    head = CascadeHead(base, num_classes=5)
    with torch.no_grad():
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.uniform_(-0.5, 0.5)
    h, previous = torch.randn(7, 6, 4, 4), torch.randn(7, 5)
    pooled = F.adaptive_avg_pool2d(h, 2).flatten(1)
    # the authors' InternalClassifier: fc(cat([pool(h), LN(z_prev.detach())]))
    fc_weight = torch.cat([base.linear.weight, head.link.weight], 1)
    expected = torch.cat([pooled, _layer_norm(previous, head.norm.weight, head.norm.bias)], 1) @ fc_weight.T + base.linear.bias
    torch.testing.assert_close(head(h, previous), expected)


def test_no_gradient_crosses_a_cascade_connection_and_a_missing_previous_exit_is_refused():
    head = CascadeHead(nn.Linear(4, 3), num_classes=3)
    previous = torch.randn(5, 3, requires_grad=True)
    head(torch.randn(5, 4), previous).sum().backward()
    assert previous.grad is None and head.link.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs the previous exit's logits"):
        head(torch.randn(5, 4))


def _ztw_net() -> ll.LocalNet:
    torch.manual_seed(0)
    net = ll.build_mlp((6,), (10, 10, 10, 10), 4)
    ll.prepare(net, "ztw")
    return net


def test_the_forward_pass_engine_and_runner_feed_each_cascade_head_the_previous_exit():
    net = _ztw_net()
    assert [type(s.head).__name__ for s in net.stages] == ["LinearHead", "CascadeHead", "CascadeHead", "LinearHead"]
    x, y = torch.randn(32, 6), torch.randint(0, 4, (32,))
    # by hand: z_k = base_k(h_k) + V_k LN(z_{k-1}) for the internal exits 1, 2; plain heads at 0 and 3
    h, expected, z = x, [], None
    for k, stage in enumerate(net.stages):
        h = stage.block(h)
        head = stage.head
        z = head(h) if k in (0, 3) else head.base(h) + head.link(_layer_norm(z, head.norm.weight, head.norm.bias))
        expected.append(z)
    with torch.no_grad():
        logits = net(x)
        for got, want in zip(logits, expected):
            torch.testing.assert_close(got, want)
    step = run_stages(net, ll.rules.create("ztw"), x, y, range(4), x=x)
    for got, want in zip(step.logits, logits):
        torch.testing.assert_close(got, want)
    # the early-exit runner drops the rows that left; the cascade must follow the rows that stay
    thresholds = Thresholds.fixed("max-prob", [0.4, 0.45, 0.5])
    decided = thresholds.policy.decide(torch.stack(logits), thresholds.values)
    out = EarlyExitRunner(net, thresholds).run(x)
    assert 0 < int((out.exit == 0).sum()) < 32  # some rows leave early, some stay
    assert torch.equal(out.exit, decided.exit) and torch.equal(out.prediction, decided.prediction)


def test_a_cascade_head_costs_its_link_and_a_stage_trained_alone_is_refused():
    net = _ztw_net()
    plain = stage_costs([s.block for s in net.stages], [getattr(s.head, "base", s.head) for s in net.stages], (6,))
    cascaded = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], (6,))
    assert cascaded.heads[0] == plain.heads[0] and cascaded.heads[1] > plain.heads[1]
    x, y = torch.randn(8, 10), torch.randint(0, 4, (8,))
    with pytest.raises(ValueError, match="needs the previous exit's logits"):
        run_stages(net, ll.rules.create("ztw"), x, y, [1])  # as a schedule that feeds stage 1 from a cache


def test_ztw_trains_the_internal_classifiers_only():
    net = _ztw_net()
    before = copy.deepcopy(net.state_dict())
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(32, 6), torch.randint(0, 4, (32,))
    for _ in range(3):
        optimiser.zero_grad()
        step = ll.backward(net, x, y, "ztw", optimizer=optimiser)
        optimiser.step()
    after = net.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(".head." in name and not name.startswith("stages.3.") for name in changed)
    assert {name.split(".")[1] for name in changed} == {"0", "1", "2"}
    assert any("link" in name for name in changed)
    assert step.losses[3] != step.losses[3]  # NaN: the backbone's classifier has no loss


def test_ztw_leaves_a_batchnorm_backbone_exactly_as_trained():
    torch.manual_seed(0)
    net = ll.build_cnn((1, 8, 8), (4, 4, 4), 3)
    rule = ll.prepare(net, "ztw")
    blocks = copy.deepcopy([s.block.state_dict() for s in net.stages])
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    net.eval()
    last = net(x)[-1]
    net.train()
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        optimiser.zero_grad()
        ll.backward(net, 3 * x + 1, y, rule, optimizer=optimiser)  # other statistics than x's
        optimiser.step()
    for stage, before in zip(net.stages, blocks):
        for name, value in stage.block.state_dict().items():
            assert torch.equal(value, before[name]), name  # running means and variances included
    net.eval()
    torch.testing.assert_close(net(x)[-1], last)


def test_the_recipe_loads_a_trained_backbone_into_a_fresh_net():
    torch.manual_seed(0)
    backbone = ll.build_mlp((6,), (10, 10, 10), 4)
    x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
    ll.backward(backbone, x, y, ll.rules.EndToEnd(probe_heads=False))
    with pytest.raises(ValueError, match="prepared for rule 'e2e'"):
        ll.prepare(copy.deepcopy(backbone), "ztw")
    fresh = ll.build_mlp((6,), (10, 10, 10), 4)
    fresh.load_state_dict(backbone.state_dict())
    ll.prepare(fresh, "ztw")
    with torch.no_grad():
        torch.testing.assert_close(fresh(x)[-1], backbone(x)[-1])


@pytest.mark.parametrize("cascade", [True, False])
def test_ztw_passes_the_rule_conformance_check(cascade):
    rule = ll.rules.create("ztw", cascade=cascade)
    check_rule(rule)
    check_rule(ll.rules.create("ztw", cascade=cascade), head="conv", conv=True)


def test_the_geometric_ensemble_is_the_papers_weighted_product_of_exit_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 20, 5, generator=g)
    weights, bias = torch.randn(3, 3, generator=g), torch.randn(3, 5, generator=g)
    got = torch.softmax(geometric_ensemble(torch.log_softmax(logits, -1), weights, bias), -1)
    p = torch.softmax(logits, -1)
    for m in range(3):
        # q_m(y) ∝ exp(b_{m,y}) prod_{i<=m} p_i(y)^(exp(w_{m,i}) / (m + 1))
        product = bias[m].exp() * torch.stack([p[i] ** (weights[m, i].exp() / (m + 1)) for i in range(m + 1)]).prod(0)
        torch.testing.assert_close(got[m], product / product.sum(-1, keepdim=True))


def test_the_ensemble_fit_lowers_its_loss_on_the_training_logits_and_refuses_test_data():
    train = synthetic_exit_logits(n_samples=600, strengths=(1.0, 2.0, 3.0), seed=1, split="train")
    start = geometric_ensemble(torch.log_softmax(train.logits, -1), torch.zeros(3, 3), torch.zeros(3, 10))
    policy = GeometricEnsemblePolicy(epochs=40, lr=0.02).fit(train)
    fitted = policy.outputs(train.logits)
    for m in range(3):
        assert F.cross_entropy(fitted[m], train.labels) < F.cross_entropy(start[m], train.labels)
    assert (policy.weights.triu(1) == policy.weights.triu(1)).all()  # finite
    with pytest.raises(ValueError, match="never see test data"):
        GeometricEnsemblePolicy(epochs=1).fit(ExitLogits(train.logits, train.labels, "test"))
    with pytest.raises(ValueError, match="fitted for 3 exits"):
        policy.outputs(torch.zeros(4, 2, 10))


def test_the_ensemble_passes_the_exit_policy_conformance_check():
    check_exit_policy("ztw-ensemble")
