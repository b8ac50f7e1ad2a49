"""The vision transformer: token heads, every rule on token features, feedback modes, early exits unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn import heads, models, rules
from locallearn.exits import EarlyExitRunner, Thresholds, collect_exit_logits, evaluate
from locallearn.feedback import FALinear, convert
from locallearn.rules.predsim import similarity_matrix
from locallearn.tokens import pool_tokens, tokens_to_map


def _vit(**kw) -> ll.LocalNet:
    torch.manual_seed(0)
    return models.build("vit", (1, 8, 8), 4, **{"patch": 4, "dim": 16, "depth": 3, "heads": 2, **kw})


def _batch(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 4


def test_stages_output_the_class_token_then_the_patch_grid():
    net = _vit()
    _, features = net(torch.zeros(2, 1, 8, 8), return_features=True)
    assert [tuple(f.shape) for f in features] == [(2, 5, 16)] * 3  # class token + 2x2 patches


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_token_head_reads_the_class_token_or_the_mean(pool):
    head = heads.make_head("token", (5, 8), 3, pool=pool)
    h = torch.randn(4, 5, 8)
    chosen = h[:, 0] if pool == "cls" else h.mean(1)
    torch.testing.assert_close(head(h), head.linear(head.norm(chosen)))


@pytest.mark.parametrize("shape", [(12,), (6, 4, 4)])
def test_token_head_refuses_features_that_are_not_tokens(shape):
    with pytest.raises(ValueError, match=r"TokenHead expects token features \(T, D\); got features of shape"):
        heads.make_head("token", shape, 3)


def test_vit_takes_the_mean_token_head_by_name():
    net = _vit(head_kw={"pool": "mean"})
    assert net.stages[0].head.pool == "mean"


def test_vit_refuses_an_image_the_patches_do_not_tile():
    with pytest.raises(ValueError, match="multiples of 'patch'"):
        models.build("vit", (1, 10, 10), 4, patch=4, dim=8, depth=1, heads=2)


@pytest.mark.parametrize("name", rules.names())
def test_every_rule_trains_every_stage_of_a_vit(name):
    """Each rule runs on token features: finite losses, and every stage given a loss moves."""
    net = _vit()
    if not rules.RULES.get(name).token_blocks:  # a rule that cannot train token blocks says so in one line
        with pytest.raises(ValueError, match="holds a"):
            ll.prepare(net, name)
        return
    rule = ll.prepare(net, name)
    before = [[p.detach().clone() for p in s.parameters()] for s in net.stages]
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x, y = _batch()
    step = ll.backward(net, x, y, rule)
    optimizer.step()
    for k, (stage, old) in enumerate(zip(net.stages, before)):
        if step.losses[k] == step.losses[k]:
            assert torch.isfinite(torch.tensor(step.losses[k]))
            assert any(not torch.equal(p, q) for p, q in zip(stage.parameters(), old) if p.requires_grad), (name, k)


def test_predsim_on_tokens_matches_similarity_of_the_mean_token():
    h = torch.randn(6, 5, 8)
    torch.testing.assert_close(similarity_matrix(h), similarity_matrix(h.mean(1)))
    net = _vit()
    rule = ll.prepare(net, "predsim")
    assert isinstance(net.stages[0].aux["predsim"], nn.Linear) and net.stages[0].aux["predsim"].in_features == 16


def test_tokens_to_map_puts_each_patch_token_at_its_patch():
    """Without the class token and positions, the token map is exactly the patch convolution's map."""
    net = _vit()
    embedding = net.stages[0].block.embedding
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        tokens = embedding(x) - embedding.position.weight
        torch.testing.assert_close(tokens_to_map(tokens), embedding.conv(x))
        torch.testing.assert_close(pool_tokens(tokens, "cls"), embedding.cls.weight.expand(3, -1))


def test_infopro_decodes_the_patch_token_map_back_to_the_image():
    net = _vit()
    rule = ll.prepare(net, "infopro")
    decoder = net.stages[0].aux["infopro"].decoder
    x = torch.randn(2, 1, 8, 8)
    assert decoder(net.stages[0].block(x), x).shape == x.shape


@pytest.mark.parametrize("mode", ["fa", "usf", "frsf"])  # dfa: the dfa rule converts the net (every-rule test)
def test_feedback_modes_convert_every_weight_matrix_of_a_vit(mode):
    net = _vit()
    convert(net, mode)  # unsupported layers would raise: the embeddings and LayerNorms are kept, nothing else
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is not nn.Linear for m in linears)
    x, y = _batch()
    sum(nn.functional.cross_entropy(z, y) for z in net(x)).backward()
    assert all(m.weight.grad is not None for m in linears)


def test_fa_block_input_gradient_uses_the_feedback_matrix():
    """A converted attention projection's input error goes through B, not W^T (the difference is measurable)."""
    block = _vit().stages[1].block
    h = torch.randn(2, 5, 16, requires_grad=True)
    exact = torch.autograd.grad(block(h).sum(), h)[0]
    convert(block, "fa")
    assert isinstance(block.blocks[0].attn.qkv, FALinear)
    h2 = h.detach().clone().requires_grad_(True)
    assert not torch.allclose(torch.autograd.grad(block(h2).sum(), h2)[0], exact)


@pytest.mark.parametrize("policy,values", [("patience", [1, 1]), ("max-prob", [0.4, 0.4])])
def test_early_exit_runner_and_pabee_patience_work_unchanged_on_a_vit(policy, values):
    net = _vit().eval()
    x, y = _batch(20)
    thresholds = Thresholds.fixed(policy, values)
    offline = evaluate(collect_exit_logits(net, x, y, split="test"), thresholds)
    out = EarlyExitRunner(net, thresholds).run(x)
    assert torch.equal(out.prediction, offline.prediction) and torch.equal(out.exit, offline.exit)
