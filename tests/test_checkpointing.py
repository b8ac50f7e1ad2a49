"""Gradient checkpointing as a named option of the global rules: e2e:checkpoint=true and joint:checkpoint=true
give plain backprop's gradients and hold fewer saved-for-backward bytes."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn.bench.measure import SavedTensorMeter
from locallearn.compare import parse_named
from locallearn.heads import make_head


def _deep_net(stages: int = 4, layers: int = 3, width: int = 32, dropout: float = 0.2) -> ll.LocalNet:
    """Stages of several Linear -> ReLU -> Dropout layers (dropout: the recomputation must draw the same masks)."""
    blocks = []
    for k in range(stages):
        modules: list[nn.Module] = []
        for j in range(layers):
            modules += [nn.Linear(16 if (k, j) == (0, 0) else width, width), nn.ReLU(), nn.Dropout(dropout)]
        blocks.append(nn.Sequential(*modules))
    return ll.LocalNet([ll.Stage(b, make_head("linear", (width,), 5)) for b in blocks])


def _step(net: ll.LocalNet, rule: str, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[torch.Tensor], int]:
    name, kw = parse_named(rule, what="rule")
    torch.manual_seed(3)
    excluded = [*net.parameters(), *net.buffers()]
    with SavedTensorMeter(exclude=excluded) as meter:
        step = ll.backward(net, x, y, ll.rules.create(name, **kw))
    return [float(v) for v in step.losses], [p.grad.clone() for p in net.parameters()], meter.peak


@pytest.mark.parametrize("rule", ["e2e", "joint"])
def test_checkpointing_gives_backprops_gradients_with_fewer_saved_bytes(rule):
    torch.manual_seed(0)
    plain = _deep_net()
    checkpointed = copy.deepcopy(plain)
    x, y = torch.randn(64, 16), torch.randint(0, 5, (64,))
    losses, grads, saved = _step(plain, rule, x, y)
    losses_c, grads_c, saved_c = _step(checkpointed, f"{rule}:checkpoint=true", x, y)
    assert losses_c == pytest.approx(losses, abs=1e-6)
    for a, b in zip(grads, grads_c):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    # only the 4 stage inputs and one stage's recomputed activations at a time, against every activation
    assert saved_c < 0.6 * saved, (saved_c, saved)


def test_checkpointing_is_a_recorded_option_and_checked():
    assert ll.rules.create("e2e", checkpoint=True).get_params() == {"probe_heads": True, "checkpoint": True}
    with pytest.raises(ValueError, match="The 'checkpoint' parameter of EndToEnd must be one of False, True. Got 'yes'"):
        ll.rules.create("e2e", checkpoint="yes")
