"""The ``ib`` rule: the contract, every schedule, the loss it promises, and that it learns."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from locallearn import build_mlp, rules, schedules, seed_everything
from locallearn.engine import NonFiniteLossError, backward, read_losses
from locallearn.info import hsic_tensor, kde_mi
from locallearn.net import Stage
from locallearn.rules.base import StageOutput
from locallearn.schedules.base import TrainState, train_step
from locallearn.testing import check_rule, check_schedule
from locallearn.trainer import TrainConfig, Trainer

VARIANTS = [{"variant": "hsic"}, {"variant": "hsic", "sigma": None}, {"variant": "hsic", "x_source": "stage"}, {"variant": "kde"}]


def test_hsic_variant_meets_the_rule_contract():
    check_rule(rules.create("ib", variant="hsic"))
    check_rule(rules.create("ib", variant="hsic"), conv=True, head="conv")


def test_kde_variant_is_local():
    # testing.check_rule compares two training steps without re-seeding, so a rule that draws
    # noise cannot pass its locality check; here the noise is re-seeded before each step.
    seed_everything(0)
    net = build_mlp((16,), (12, 12, 12), 4)
    alone = copy.deepcopy(net)
    x, y = torch.randn(32, 16), torch.arange(32) % 4
    for model, stages in ((net, range(3)), (alone, [0])):
        rule = rules.create("ib", variant="kde")
        opts = [torch.optim.SGD(s.parameters(), lr=0.1) for s in model.stages]
        state = TrainState(net=model, rule=rule, optimizers=opts, x_train=x, y_train=y, batch_size=32, seed=0)
        torch.manual_seed(1)
        losses = train_step(state, x, y, stages)
        assert all(torch.isfinite(torch.tensor(losses)))
    for p, q in zip(net.stages[0].parameters(), alone.stages[0].parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("name", schedules.names())
@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_plugs_into_every_schedule(name, kw):
    rule = rules.create("ib", **kw)
    if name == "pipeline" and rule.needs_input:  # its later workers never see the network input
        with pytest.raises(ValueError, match="reads the network input at every stage"):
            check_schedule(schedules.create(name), rule=rule)
        return
    check_schedule(schedules.create(name), rule=rule)


def _stage_output(batch: int = 24, dtype: torch.dtype = torch.float32) -> tuple[StageOutput, torch.Tensor]:
    torch.manual_seed(0)
    stage = Stage(torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh()), torch.nn.Linear(5, 3)).to(dtype)
    x = torch.randn(batch, 6, dtype=dtype)
    h = stage.block(x)
    return StageOutput(index=0, is_last=False, stage=stage, h_in=x, h_out=h, logits=stage.head(h), x=x), torch.arange(batch) % 3


def _paper_nhsic(a: torch.Tensor, b: torch.Tensor, sigma: float, epsilon: float = 1e-5) -> torch.Tensor:
    """Ma, Lewis & Kleijn's normalised HSIC (hsic_normalized_cca in choasma/HSIC-bottleneck), written out."""
    m = a.shape[0]
    h = torch.eye(m, dtype=a.dtype) - torch.ones(m, m, dtype=a.dtype) / m

    def ratio(z):
        kc = torch.exp(-torch.cdist(z, z) ** 2 / (2.0 * sigma**2 * z.shape[1])) @ h
        return kc @ torch.inverse(kc + epsilon * m * torch.eye(m, dtype=a.dtype))

    return (ratio(a) * ratio(b).T).sum()


def test_hsic_loss_is_the_papers_bottleneck_objective_plus_a_detached_readout():
    out, y = _stage_output(dtype=torch.float64)  # the regularised inverse is ill-conditioned: compare in float64
    loss = rules.create("ib", variant="hsic", lambda_y=7.0, sigma=2.0).stage_loss(out, y)
    labels = F.one_hot(y, 3).double()
    paper = _paper_nhsic(out.h_out, out.h_in, 2.0) - 7.0 * _paper_nhsic(out.h_out, labels, 2.0)
    torch.testing.assert_close(loss, paper + F.cross_entropy(out.logits, y), rtol=1e-8, atol=1e-8)
    # the readout term must not reach the block: its gradient equals that of the HSIC part alone
    loss.backward()
    block_grad = out.stage.block[0].weight.grad.clone()
    out2, _ = _stage_output(dtype=torch.float64)
    kw = dict(sigma=2.0, scale_by_dim=True, normalization="cca")
    (hsic_tensor(out2.h_out, out2.h_in, **kw) - 7.0 * hsic_tensor(out2.h_out, labels, **kw)).backward()
    torch.testing.assert_close(block_grad, out2.stage.block[0].weight.grad)


def test_hsic_compresses_the_network_input_at_every_stage_as_the_paper():
    torch.manual_seed(1)
    x = torch.randn(24, 8, dtype=torch.float64)
    stage = Stage(torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh()), torch.nn.Linear(5, 3)).double()
    h_in = torch.tanh(x @ torch.randn(8, 6, dtype=torch.float64))  # what a first stage would hand on
    h = stage.block(h_in)
    y = torch.arange(24) % 3
    out = StageOutput(index=1, is_last=True, stage=stage, h_in=h_in, h_out=h, logits=stage.head(h), x=x)
    labels, readout = F.one_hot(y, 3).double(), F.cross_entropy(out.logits, y)
    for source, compressed in (("network", x), ("stage", h_in)):
        loss = rules.create("ib", lambda_y=7.0, sigma=2.0, x_source=source).stage_loss(out, y)
        want = _paper_nhsic(h, compressed, 2.0) - 7.0 * _paper_nhsic(h, labels, 2.0) + readout
        torch.testing.assert_close(loss, want, rtol=1e-8, atol=1e-8)
    assert rules.create("ib").needs_input and not rules.create("ib", x_source="stage").needs_input
    with pytest.raises(ValueError, match="needs the network input, StageOutput.x"):
        rules.create("ib").stage_loss(StageOutput(1, True, stage, h_in, h, out.logits), y)


def test_hsic_cosine_normalisation_is_a_named_option():
    out, y = _stage_output()
    loss = rules.create("ib", variant="hsic", lambda_y=7.0, sigma=2.0, normalization="cosine").stage_loss(out, y)

    def cosine(a, b):
        kc, lc = (_centred_gram(z) for z in (a, b))
        return (kc * lc).sum() / ((kc * kc).sum() * (lc * lc).sum()).sqrt()

    def _centred_gram(z):
        k = torch.exp(-torch.cdist(z, z) ** 2 / (2.0 * 2.0**2 * z.shape[1]))
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()

    want = cosine(out.h_out, out.h_in) - 7.0 * cosine(out.h_out, F.one_hot(y, 3).float()) + F.cross_entropy(out.logits, y)
    torch.testing.assert_close(loss, want, rtol=1e-4, atol=1e-4)


def test_kde_loss_adds_beta_times_the_upper_bound():
    out, y = _stage_output()
    rule = rules.create("ib", variant="kde", beta=0.5, noise_var=2.0)
    torch.manual_seed(3)
    loss = rule.stage_loss(out, y)
    torch.manual_seed(3)
    noisy = out.h_out + 2.0**0.5 * torch.randn_like(out.h_out)
    bound = kde_mi(torch.arange(len(y)), out.h_out.detach(), noise_var=2.0)
    expected = F.cross_entropy(out.stage.head(noisy), y) + 0.5 * bound
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


@pytest.mark.parametrize("kw", [{"variant": "hsic"}, {"variant": "kde"}], ids=["hsic", "kde"])
def test_learns_the_synthetic_task(synthetic, kw):
    # 4 Gaussian blobs, 10 epochs: local cross-entropy reaches 1.0 on both exits; chance is 0.25.
    # Measured: hsic 0.95 / 0.98, kde 1.0 / 1.0.
    seed_everything(0)
    net = build_mlp(synthetic.input_shape, (32, 32), synthetic.num_classes)
    result = Trainer(net, synthetic, rule=rules.create("ib", **kw),
                     config=TrainConfig(epochs=10, batch_size=64, progress=False)).fit()
    assert min(result.final("test")) > 0.9


def test_larger_beta_compresses_the_representation(synthetic):
    # The KDE term is an upper bound on I(X;T); weighting it more must lower I(X;T) of the trained
    # stage (measured with the same KDE estimator on the training inputs): 2.19 -> 1.05 nats here.
    x, _ = synthetic.split("train")
    measured = []
    for beta in (0.0, 1.0):
        seed_everything(0)
        net = build_mlp(synthetic.input_shape, (32,), synthetic.num_classes)
        Trainer(net, synthetic, rule=rules.create("ib", variant="kde", beta=beta, noise_var=1.0),
                config=TrainConfig(epochs=5, batch_size=64, progress=False)).fit()
        with torch.no_grad():
            t = net.eval()(x, return_features=True)[1][0]
        measured.append(kde_mi(x.numpy(), t.numpy(), noise_var=1.0))
    assert measured[1] < 0.7 * measured[0]


@pytest.mark.parametrize("kw, message", [
    ({"variant": "mine"}, "'variant' parameter of InformationBottleneck must be one of 'hsic', 'kde'"),
    ({"beta": -1.0}, "'beta' parameter of InformationBottleneck must be a float >= 0.0. Got -1.0 instead."),
    ({"sigma": 0.0}, "'sigma' parameter of InformationBottleneck must be a float > 0.0"),
    ({"noise_var": 0}, "'noise_var' parameter of InformationBottleneck must be a float > 0.0"),
    ({"normalization": "none"}, "'normalization' parameter of InformationBottleneck must be one of 'cca', 'cosine'"),
    ({"x_source": "input"}, "'x_source' parameter of InformationBottleneck must be one of 'network', 'stage'"),
])
def test_bad_hyper_parameters_raise(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        rules.create("ib", **kw)


@pytest.mark.parametrize("variant", ["hsic", "kde"])
def test_nan_inputs_surface_in_the_loss_check_not_in_the_step(variant):
    # the step skips the estimators' host-read NaN check (check_finite=False); the engine's loss check names the stage
    net = build_mlp((6,), (8, 8), 3)
    x = torch.randn(10, 6)
    x[3, 2] = float("nan")
    step = backward(net, x, torch.arange(10) % 3, rules.create("ib", variant=variant))
    with pytest.raises(NonFiniteLossError, match="stage 1 became nan"):
        read_losses([step.losses])
    with pytest.raises(ValueError, match="NaN or infinite"):  # the estimator alone still checks by default
        hsic_tensor(x, x)
