"""Executable checks of the claims in theory/README.md (T1-T5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn.feedback import fa_linear
from locallearn.info.kde import kde_mi
from locallearn.schedules import TrainState, train_step


def _net(num_stages: int, width: int = 64) -> ll.LocalNet:
    torch.manual_seed(0)
    return ll.build_mlp((width,), (width,) * num_stages, 10)


def test_T1_local_gradients_separate_by_stage():
    net = _net(3)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    h, losses = x, []
    for stage in net.stages:
        h = stage.block(h.detach())
        losses.append(F.cross_entropy(stage.head(h), y))
    params = [list(stage.parameters()) for stage in net.stages]
    total = torch.autograd.grad(sum(losses), [p for group in params for p in group], retain_graph=True)
    offset = 0
    for k, group in enumerate(params):
        own = torch.autograd.grad(losses[k], group, retain_graph=True)
        for got, want in zip(total[offset : offset + len(group)], own):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        offset += len(group)
        for j in range(k + 1, 3):  # (c): no later loss reaches stage k
            later = torch.autograd.grad(losses[j], group, retain_graph=True, allow_unused=True)
            assert all(g is None for g in later)


class _LiveSavedBytes:
    """Peak bytes of distinct storages saved for backward and alive at once (parameters excluded).

    A storage saved by two operations (a ReLU's output that is also the next Linear's
    input) counts once; it stops counting when the last graph holding it is freed.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.exclude, self.refs, self.sizes = exclude, {}, {}
        self.live = self.peak = 0

    def pack(self, tensor: torch.Tensor) -> "_Held":
        return _Held(self, tensor)

    @staticmethod
    def unpack(held: "_Held") -> torch.Tensor:
        return held.tensor

    def add(self, key: int, size: int) -> None:
        if key in self.exclude:
            return
        if self.refs.get(key, 0) == 0:
            self.live += size
            self.sizes[key] = size
            self.peak = max(self.peak, self.live)
        self.refs[key] = self.refs.get(key, 0) + 1

    def remove(self, key: int) -> None:
        if key in self.exclude:
            return
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.live -= self.sizes[key]


class _Held:
    def __init__(self, meter: _LiveSavedBytes, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        self.meter, self.tensor, self.key = meter, tensor, storage.data_ptr()
        meter.add(self.key, storage.nbytes())

    def __del__(self) -> None:
        self.meter.remove(self.key)


def _equal_stages(num_stages: int, layers_per_stage: int, width: int = 256) -> ll.LocalNet:
    torch.manual_seed(0)
    stages = []
    for _ in range(num_stages):
        block = nn.Sequential(*[m for _ in range(layers_per_stage) for m in (nn.Linear(width, width), nn.ReLU())])
        stages.append(ll.Stage(block, nn.Linear(width, 10)))
    return ll.LocalNet(stages)


def _peak_saved(rule: str, num_stages: int, layers_per_stage: int) -> int:
    net = _equal_stages(num_stages, layers_per_stage)
    state = TrainState(net=net, rule=ll.rules.create(rule), optimizers=[None] * num_stages,
                       x_train=torch.randn(64, 256), y_train=torch.randint(0, 10, (64,)), batch_size=64, seed=0)
    meter = _LiveSavedBytes({p.untyped_storage().data_ptr() for p in net.parameters()})
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        train_step(state, state.x_train, state.y_train, range(num_stages))
    return meter.peak


@pytest.mark.parametrize("layers_per_stage", [1, 4])
@pytest.mark.parametrize("num_stages", [1, 2, 4, 8])
def test_T2_local_rule_keeps_one_stage_of_activations(num_stages, layers_per_stage):
    ratio = _peak_saved("local", num_stages, layers_per_stage) / _peak_saved("e2e", num_stages, layers_per_stage)
    m, L = layers_per_stage, num_stages
    # activations of width 256 dominate; the heads' softmax outputs (64 x 10) add under 1 %
    assert ratio == pytest.approx((m + 1) / (m * L + 1), rel=0.02)


def test_T3_feedback_alignment_with_B_equal_W_is_backprop():
    torch.manual_seed(0)
    w = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 5, dtype=torch.float64)
    gx, gw = torch.autograd.grad((F.linear(x, w) * upstream).sum(), [x, w])
    hx, hw = torch.autograd.grad((fa_linear(x, w, None, w.detach()) * upstream).sum(), [x, w])
    torch.testing.assert_close(gx, hx)
    torch.testing.assert_close(gw, hw)
    b = torch.randn(5, 7, dtype=torch.float64)
    rx, rw = torch.autograd.grad((fa_linear(x, w, None, b) * upstream).sum(), [x, w])
    torch.testing.assert_close(rw, gw)  # the weight gradient never depends on B
    assert not torch.allclose(rx, gx)


def test_T4_runner_flops_equal_the_cascaded_cost_formula():
    from locallearn.exits import EarlyExitRunner, Thresholds, exit_fractions, expected_cost, stage_costs

    torch.manual_seed(0)
    net = ll.build_mlp((32,), (64, 64, 64), 10)
    table = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], (32,))
    x = torch.randn(200, 32)
    sureness = Thresholds.fixed("entropy", [0.0, 0.0]).policy.sureness(torch.stack(net.eval()(x)))
    thresholds = Thresholds.fixed("entropy", [sureness[0].median().item(), sureness[1].median().item()])
    out = EarlyExitRunner(net, thresholds, count_flops=True).run(x)
    assert len(set(out.exit.tolist())) > 1  # the check means something only if samples leave at several exits
    formula = expected_cost(exit_fractions(out.exit, 3), table)
    assert math.isclose(out.flops.mean().item(), formula, rel_tol=1e-9)


def _true_mi_two_centres(d: float, s2: float = 1.0) -> float:
    """I(X;T) for X uniform on {0, d}, T = X + N(0, s2): h(T) - h(T|X) by quadrature."""
    s = math.sqrt(s2)

    def density(t: float) -> float:
        return 0.5 * (math.exp(-t * t / (2 * s2)) + math.exp(-(t - d) ** 2 / (2 * s2))) / math.sqrt(2 * math.pi * s2)

    def integrand(t: float) -> float:
        p = density(t)
        return -p * math.log(p) if p > 0 else 0.0

    h_t, _ = integrate.quad(integrand, -12 * s, d + 12 * s, limit=200)
    return h_t - 0.5 * math.log(2 * math.pi * math.e * s2)


@pytest.mark.parametrize("d, anchor", [(1.0, 0.1114), (2.0, 0.3368)])
def test_T5_kde_bounds_bracket_the_true_mi(d, anchor):
    true = _true_mi_two_centres(d)
    assert abs(true - anchor) < 5e-4  # our quadrature reproduces ANCHORS item 7
    centres = np.array([[0.0], [d]])
    lower = kde_mi([0, 1], centres, noise_var=1.0, bound="lower")
    upper = kde_mi([0, 1], centres, noise_var=1.0, bound="upper")
    assert lower <= true <= upper
