"""LocalNet records its stages' shapes, and the rules that attach modules size them from those shapes,
so a block whose width no layer type reveals (a custom module) trains under each of them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn.net import StageShape


class Doubling(nn.Module):
    """A block with no sized layer: its output width (twice its input's) is read from no module type."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, torch.tanh(h)], dim=1)


class MapDoubling(Doubling):
    """The same on (C, H, W) maps, behind a conv so the stage has parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return super().forward(self.conv(h))


def _flat_net() -> ll.LocalNet:
    torch.manual_seed(0)
    blocks = [nn.Sequential(nn.Flatten(), nn.Linear(16, 6), Doubling()), nn.Sequential(nn.Linear(12, 5), Doubling()),
              nn.Sequential(nn.Linear(10, 10), Doubling())]
    widths = [12, 10, 20]
    return ll.LocalNet([ll.Stage(b, nn.Linear(w, 3)) for b, w in zip(blocks, widths)], input_shape=(1, 4, 4))


def _map_net() -> ll.LocalNet:
    torch.manual_seed(0)
    heads = [ll.make_head("conv", (c, 4, 4), 3) for c in (4, 8, 16)]
    return ll.LocalNet([ll.Stage(MapDoubling(c), h) for c, h in zip((2, 4, 8), heads)], input_shape=(2, 4, 4))


def test_stage_shapes_are_recorded_by_a_dry_forward_that_leaves_the_net_as_it_was():
    net = ll.build_mlp((1, 8, 8), (8, 6), 3, batch_norm=True, dropout=0.5)
    net.stages[0].block[1].eval()  # a frozen BatchNorm stays frozen, the rest stays in training mode
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    assert net.stage_shapes() == [StageShape((1, 8, 8), (8,), (3,)), StageShape((8,), (6,), (3,))]
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert net.training and not net.stages[0].block[1].training and net.stages[1].block[1].training
    assert [(s.kind, s.width) for s in _map_net().stage_shapes()] == [("map", 4), ("map", 8), ("map", 16)]


def test_a_net_built_without_its_input_shape_takes_it_from_its_first_batch():
    net = ll.LocalNet([ll.Stage(Doubling(), nn.Linear(8, 2))])
    with pytest.raises(ValueError, match="does not know its input shape"):
        net.stage_shapes()
    ll.backward(net, torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0]), "local")
    assert net.stage_shapes() == [StageShape((4,), (8,), (2,))]


def test_replacing_a_block_records_the_shapes_again():
    net = _flat_net()
    assert net.stage_shapes()[2].output == (20,)
    net.stages[2].block, net.stages[2].head = nn.Sequential(nn.Linear(10, 4), Doubling()), nn.Linear(8, 3)
    assert net.stage_shapes()[2].output == (8,)


@pytest.mark.parametrize("make", [_flat_net, _map_net], ids=["flat", "map"])
@pytest.mark.parametrize("rule", ["predsim", "infopro", "auglocal", "forward-forward", "dtp"])
def test_rules_size_their_modules_for_blocks_whose_width_no_layer_tells(make, rule):
    if rule == "dtp" and make is _map_net:
        pytest.skip("dtp trains MLP blocks only")
    net = make()
    instance = ll.prepare(net, rule)
    x = torch.randn(6, *net.input_shape)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    step = ll.backward(net, x, y, instance)
    losses = [float(v) for v in step.losses]
    assert len(losses) == 3 and all(v == v and abs(v) < float("inf") for v in losses)
    if rule == "predsim":
        projections = [stage.aux["predsim"] for stage in net.stages]
        widths = [p.in_features for p in projections] if make is _flat_net else [p.in_channels for p in projections]
        assert widths == ([12, 10, 20] if make is _flat_net else [4, 8, 16])
