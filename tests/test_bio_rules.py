"""The biologically plausible rules (fa-heads, predsim, predsim-bio, dfa) against references."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn import rules
from locallearn.data import Dataset
from locallearn.feedback import DFALinear, FALinear
from locallearn.rules.base import StageOutput
from locallearn.rules.predsim import LabelCodeHead, PredSim, PredSimBio, label_projection, similarity_matrix
from locallearn.schedules import TrainState, train_step

BIO_RULES = ["fa-heads", "predsim", "predsim-bio", "sim", "dfa"]


@pytest.fixture(scope="module")
def tiny(digits) -> Dataset:
    """256 training digits (8x8), so that every rule x schedule x head runs in a blink."""
    d = digits
    return Dataset("tiny-digits", d.x_train[:256], d.y_train[:256], d.x_val[:64], d.y_val[:64],
                   d.x_test[:64], d.y_test[:64], num_classes=10)


def _state(net, rule, x, y, lr=0.05):
    rule.setup(net)
    optimizers = [torch.optim.SGD([p for p in s.parameters() if p.requires_grad], lr=lr) for s in net.stages]
    return TrainState(net=net, rule=rule, optimizers=optimizers, x_train=x, y_train=y, batch_size=32, seed=0)


# --------------------------------------------------------------------------- fa-heads


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_fa_heads_with_b_equal_g_is_local_with_a_frozen_head_step_for_step(tiny, head):
    ll.seed_everything(0)
    net = ll.build_mlp(tiny.input_shape, (32, 32), 10, head=head)
    reference = copy.deepcopy(net)
    initial = copy.deepcopy(net)
    for stage in reference.stages:
        stage.head.requires_grad_(False)
    ours = _state(net, rules.create("fa-heads", feedback="same"), tiny.x_train, tiny.y_train)
    theirs = _state(reference, rules.create("local"), tiny.x_train, tiny.y_train)
    assert all(not p.requires_grad for s in net.stages for p in s.head.parameters())
    for step, (x, y) in enumerate(ours.batches(tiny.x_train, tiny.y_train)):
        loss_ours = train_step(ours, x, y, range(2))
        loss_theirs = train_step(theirs, x, y, range(2))
        assert [float(v) for v in loss_ours] == pytest.approx([float(v) for v in loss_theirs], abs=1e-6), step  # losses are 0-d tensors
        for p, q in zip(net.parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert not torch.allclose(net.stages[1].block[0].weight, initial.stages[1].block[0].weight)  # it did train


def test_fa_heads_random_feedback_keeps_g_fixed_and_changes_only_the_block_signal(tiny):
    ll.seed_everything(1)
    net = ll.build_mlp(tiny.input_shape, (32,), 10)
    g_init = net.stages[0].head.linear.weight.detach().clone()
    reference = copy.deepcopy(net)
    rule = rules.create("fa-heads", feedback="random", head_scale=2.0, feedback_scale=0.5)
    state = _state(net, rule, tiny.x_train, tiny.y_train)
    head = net.stages[0].head.linear
    assert isinstance(head, FALinear) and head.scale == 0.5
    torch.testing.assert_close(head.weight, 2.0 * g_init)
    assert head.feedback.abs().max() <= 0.5 / 32**0.5 and not torch.allclose(head.feedback, head.weight)
    x, y = tiny.x_train[:32], tiny.y_train[:32]
    got = torch.autograd.grad(F.cross_entropy(net.stages[0](x)[1], y), net.stages[0].block[1].weight)[0]
    # reference block gradient, by hand: error at the logits through B instead of G^T
    block = reference.stages[0].block
    h = block(x)
    logits = F.linear(h, 2.0 * g_init, reference.stages[0].head.linear.bias)
    e = torch.autograd.grad(F.cross_entropy(logits, y), logits)[0]
    (want,) = torch.autograd.grad(h, block[1].weight, e @ head.feedback)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    train_step(state, x, y, [0])
    torch.testing.assert_close(head.weight, 2.0 * g_init)  # G is not trained


def test_fa_heads_trained_head_learns_its_weights(tiny):
    net = ll.build_mlp(tiny.input_shape, (32,), 10)
    state = _state(net, rules.create("fa-heads", feedback="random", train_head=True), tiny.x_train, tiny.y_train)
    before = net.stages[0].head.linear.weight.detach().clone()
    train_step(state, tiny.x_train[:32], tiny.y_train[:32], [0])
    assert not torch.allclose(net.stages[0].head.linear.weight, before)


# --------------------------------------------------------------------------- predsim


def _authors_similarity(x: torch.Tensor) -> torch.Tensor:
    """Nøkland & Eidnes' similarity_matrix (anokland/local-loss train.py), written out."""
    if x.dim() == 4:
        if x.size(1) > 3 and x.size(2) > 1:
            x = x.view(x.size(0), x.size(1), -1).std(dim=2)
        else:
            x = x.view(x.size(0), -1)
    xc = x - x.mean(dim=1).unsqueeze(1)
    xn = xc / (1e-8 + torch.sqrt(torch.sum(xc**2, dim=1))).unsqueeze(1)
    return xn.matmul(xn.transpose(1, 0)).clamp(-1, 1)


def test_similarity_matrix_of_one_hot_labels_is_the_closed_form():
    y = torch.tensor([0, 1, 0, 2])
    s = similarity_matrix(F.one_hot(y, 4).float())
    same = (y[:, None] == y[None]).float()
    torch.testing.assert_close(s, same - (1 - same) / 3)


@pytest.mark.parametrize("shape", [(6, 3, 4, 4), (6, 1, 5, 5), (6, 2, 1, 7), (6, 5, 4, 4), (6, 8, 1, 3), (6, 20)])
def test_similarity_matrix_is_the_authors_formula(shape):
    """Conv maps with <= 3 channels (or height 1) are flattened, wider ones pooled to per-channel std."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape) + shape[1]))
    torch.testing.assert_close(similarity_matrix(x), _authors_similarity(x))
    if len(shape) == 4 and shape[1] <= 3:
        assert not torch.allclose(similarity_matrix(x), _authors_similarity(x.flatten(2).std(2)), atol=1e-2)


def test_predsim_loss_is_the_formula(tiny):
    ll.seed_everything(2)
    net = ll.build_mlp(tiny.input_shape, (32, 32), 10)
    rule = PredSim(beta=0.7, sim_dim=16)
    rule.setup(net)
    stage = net.stages[1]
    proj = stage.aux["predsim"]
    assert proj.weight.shape == (16, 32)
    x, y = torch.randn(20, 32), tiny.y_train[:20]
    h = stage.block(x)
    out = StageOutput(index=1, is_last=True, stage=stage, h_in=x, h_out=h, logits=stage.head(h))
    z = proj(h)
    zc = z - z.mean(1, keepdim=True)
    zn = zc / zc.norm(dim=1, keepdim=True)
    same = (y[:, None] == y[None]).float()
    want = 0.3 * F.cross_entropy(out.logits, y) + 0.7 * ((zn @ zn.T - (same - (1 - same) / 9)) ** 2).mean()
    torch.testing.assert_close(rule.stage_loss(out, y), want)
    assert PredSim(beta=0.0).stage_loss(out, y) == F.cross_entropy(out.logits, y)


def test_predsim_projection_is_trained_and_conv_maps_get_a_conv_projection(tiny):
    net = ll.build_cnn(tiny.input_shape, (8, 8), 10)
    state = _state(net, PredSim(sim_dim=None), tiny.x_train, tiny.y_train)
    proj = net.stages[1].aux["predsim"]
    assert isinstance(proj, nn.Conv2d) and proj.weight.shape == (8, 8, 3, 3)
    before = proj.weight.detach().clone()
    train_step(state, tiny.x_train[:32], tiny.y_train[:32], range(2))
    assert not torch.allclose(proj.weight, before)


def test_predsim_bio_follows_the_authors_label_projection(tiny):
    """The authors' bio loss: proj_y = onehot @ P (128 dims), BCE against proj_y > 0, similarity of proj_y."""
    ll.seed_everything(3)
    net = ll.build_mlp(tiny.input_shape, (32,), 10)
    rule = PredSimBio(beta=0.25, seed=4)
    rule.setup(net)
    stage = net.stages[0]
    assert isinstance(stage.head, LabelCodeHead) and isinstance(stage.head.inner.linear, FALinear)
    assert stage.head.inner.linear.out_features == 128
    p = stage.head.projection
    assert p.shape == (10, 128) and bool((p.abs() <= 10**-0.5).all())  # nn.Linear(10, 128)'s init range
    x, y = tiny.x_train[:40], tiny.y_train[:40]
    h = stage.block(x)
    scores = stage.head(h)
    z = stage.head.inner(h)
    proj_y = F.one_hot(y, 10).float() @ p
    out = StageOutput(index=0, is_last=True, stage=stage, h_in=x, h_out=h, logits=scores)
    want = 0.75 * F.binary_cross_entropy_with_logits(z, proj_y.gt(0).float()) + 0.25 * F.mse_loss(
        _authors_similarity(h), _authors_similarity(proj_y))
    torch.testing.assert_close(rule.stage_loss(out, y), want)
    # the exit predicts the class whose code is most likely: -score / 128 is the BCE against each class's code
    bits = p.gt(0).float()
    bce = F.binary_cross_entropy_with_logits(z[:, None, :].expand(-1, 10, -1), bits.expand(40, -1, -1), reduction="none")
    torch.testing.assert_close(-scores / 128, bce.mean(-1))
    # classes get near-orthogonal targets (the one-bit-per-class code reached 0.655)
    off = _authors_similarity(p)[~torch.eye(10, dtype=torch.bool)]
    assert off.abs().mean() < 0.1 and off.abs().max() < 0.3


@pytest.mark.parametrize("num_classes", [2, 3, 4, 6, 10])
def test_predsim_bio_never_gives_a_class_an_all_zero_target(num_classes):
    for seed in range(40):
        p = label_projection(num_classes, 128 if seed % 2 else num_classes, seed=seed)
        bits = p.gt(0)
        assert bool((_authors_similarity(p).diagonal() > 0.999).all())  # no row is zero after centring
        assert not (bits == bits[:, :1]).all(1).any() and len(torch.unique(bits, dim=0)) == num_classes
    with pytest.raises(ValueError, match="No 2-bit label code with distinct, non-constant rows for 10 classes"):
        label_projection(10, 2)


def test_predsim_bio_code_is_fixed_by_the_seed_and_saved_with_the_model(tiny):
    nets = [ll.build_mlp(tiny.input_shape, (16, 16), 10) for _ in range(3)]
    for net, seed in zip(nets, (4, 4, 5)):
        PredSimBio(seed=seed).setup(net)
    a, b, c = (net.stages[1].head.projection for net in nets)
    assert torch.equal(a, b) and not torch.equal(a, c)
    nets[2].load_state_dict(nets[0].state_dict())
    assert torch.equal(nets[2].stages[1].head.projection, a) and torch.equal(nets[2].stages[1].head.codes, a.gt(0).float())


def test_sim_rule_trains_blocks_by_similarity_alone_and_heads_by_a_detached_readout(tiny):
    ll.seed_everything(6)
    net = ll.build_mlp(tiny.input_shape, (32, 32), 10)
    rule = rules.create("sim", sim_dim=16)
    rule.setup(net)
    stage = net.stages[1]
    x, y = torch.randn(24, 32), tiny.y_train[:24]
    h = stage.block(x)
    out = StageOutput(index=1, is_last=True, stage=stage, h_in=x, h_out=h, logits=stage.head(h))
    same = (y[:, None] == y[None]).float()
    sim = F.mse_loss(_authors_similarity(stage.aux["predsim"](h)), same - (1 - same) / 9)
    readout = F.cross_entropy(stage.head(h.detach()), y)
    loss = rule.stage_loss(out, y)
    torch.testing.assert_close(loss, sim + readout)
    block_grad = torch.autograd.grad(loss, stage.block[0].weight, retain_graph=True)[0]
    torch.testing.assert_close(block_grad, torch.autograd.grad(sim, stage.block[0].weight)[0])
    assert torch.autograd.grad(loss, stage.head.linear.weight)[0].abs().sum() > 0


# --------------------------------------------------------------------------- dfa


def test_dfa_rule_last_head_sees_the_true_error_and_blocks_get_random_feedback(tiny):
    ll.seed_everything(5)
    net = ll.build_mlp(tiny.input_shape, (32, 32), 10)
    reference = copy.deepcopy(net)
    dfa = _state(net, rules.create("dfa", probe_heads=False), tiny.x_train, tiny.y_train)
    e2e = _state(reference, rules.create("e2e", probe_heads=False), tiny.x_train, tiny.y_train)
    for state in (dfa, e2e):
        for opt in state.optimizers:
            opt.param_groups[0]["lr"] = 0.0
        train_step(state, tiny.x_train[:32], tiny.y_train[:32], range(2))
    assert isinstance(net.stages[1].head.linear, DFALinear) and type(net.stages[0].head.linear) is nn.Linear
    torch.testing.assert_close(net.stages[1].head.linear.weight.grad, reference.stages[1].head.linear.weight.grad)
    assert not torch.allclose(net.stages[0].block[1].weight.grad, reference.stages[0].block[1].weight.grad, atol=1e-5)
    # a fresh net with the same rule restores the lazily drawn feedback from a state dict
    fresh = ll.build_mlp(tiny.input_shape, (32, 32), 10)
    rules.create("dfa").setup(fresh)
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh.stages[1].block[0].feedback, net.stages[1].block[0].feedback)


def test_dfa_rule_is_global_so_sequential_refuses_it(tiny):
    net = ll.build_mlp(tiny.input_shape, (16,), 10)
    with pytest.raises(ValueError, match="rule 'dfa' backpropagates across stages"):
        ll.Trainer(net, tiny, rule="dfa", schedule="sequential")


# --------------------------------------------------------------------------- every rule x schedule x head


@pytest.mark.parametrize("rule", BIO_RULES)
@pytest.mark.parametrize("schedule", ["simultaneous", "sequential"])
@pytest.mark.parametrize("head", ["linear", "mlp", "conv"])
def test_every_rule_runs_with_every_schedule_and_head(tiny, rule, schedule, head):
    ll.seed_everything(0)
    net = ll.build_cnn(tiny.input_shape, (4, 8), 10, head=head, head_kw={"hidden": (16,)} if head == "mlp" else None)
    if rule == "dfa" and schedule == "sequential":
        pytest.skip("dfa is a global rule: test_dfa_rule_is_global_so_sequential_refuses_it")
    before = [p.detach().clone() for p in net.parameters()]
    config = ll.TrainConfig(epochs=1, batch_size=64, progress=False, eval_every=0, lr=1e-2)
    result = ll.Trainer(net, tiny, rule=rule, schedule=schedule, config=config).fit()
    losses = [loss for record in result.history for loss in record["train_loss"] if loss == loss]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    changed = [not torch.equal(p, b) for p, b in zip(net.stages[0].block.parameters(), before)]
    assert any(changed)
    assert len(result.final("test")) == 2


def test_mlp_net_rules_learn_on_digits(digits):
    """A few epochs on 8x8 digits: every rule beats chance by far at the last exit."""
    for rule in BIO_RULES:
        ll.seed_everything(0)
        net = ll.build_mlp(digits.input_shape, (64, 64), 10)
        result = ll.train(net, digits, rule=rule, epochs=3, lr=3e-3, batch_size=32, progress=False)
        assert result.final("test")[-1] > 0.6, rule


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: rules.create("fa-heads", feedback="transpose"),
         "The 'feedback' parameter of FixedRandomHeads must be one of 'random', 'same'. Got 'transpose' instead."),
        (lambda: rules.create("fa-heads", head_scale=0), "The 'head_scale' parameter of FixedRandomHeads must be a float > 0.0. Got 0 instead."),
        (lambda: rules.create("predsim", beta=1.5), "The 'beta' parameter of PredSim must be a float >= 0.0 and <= 1.0. Got 1.5 instead."),
        (lambda: rules.create("predsim", sim_dim=0), "The 'sim_dim' parameter of PredSim must be an int >= 1. Got 0 instead."),
        (lambda: rules.create("predsim-bio", seed=-1), "The 'seed' parameter of PredSimBio must be an int >= 0. Got -1 instead."),
        (lambda: rules.create("predsim-bio", code_size=1), "The 'code_size' parameter of PredSimBio must be an int >= 2. Got 1 instead."),
        (lambda: rules.create("dfa", scale=-2.0), "The 'scale' parameter of DirectFeedbackAlignment must be a float > 0.0. Got -2.0 instead."),
    ],
)
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_predsim_sizes_a_block_without_sized_layers_from_the_nets_shapes_and_heads_need_supported_layers():
    net = ll.LocalNet([ll.Stage(nn.Flatten(), nn.Linear(4, 2))])
    with pytest.raises(ValueError, match="does not know its input shape"):
        PredSim().setup(net)
    net.note_input(torch.zeros(3, 2, 2))
    PredSim().setup(net)
    assert net.stages[0].aux["predsim"].in_features == 4
    odd = ll.LocalNet([ll.Stage(nn.Linear(4, 4), nn.Bilinear(4, 4, 2))])
    with pytest.raises(ValueError, match=r"cannot convert these layers with parameters: '<root>' \(Bilinear\)"):
        rules.create("fa-heads").setup(odd)
