"""LocalNet, builders, heads and wrap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import locallearn as ll


def test_forward_returns_every_exit_and_features_on_request():
    net = ll.build_mlp((1, 8, 8), (32, 16), 10)
    logits, features = net(torch.zeros(3, 1, 8, 8), return_features=True)
    assert [t.shape for t in logits] == [torch.Size([3, 10])] * 2
    assert [t.shape for t in features] == [torch.Size([3, 32]), torch.Size([3, 16])]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
@pytest.mark.parametrize("head", ["conv", "linear", "mlp"])
def test_cnn_builder_fits_both_image_sizes_with_every_head(shape, head):
    net = ll.build_cnn(shape, (4, 8, 8), 10, head=head)
    assert [t.shape for t in net(torch.zeros(2, *shape))] == [torch.Size([2, 10])] * 3


def test_heads_infer_their_input_size_and_accept_instances_and_factories():
    assert ll.make_head("mlp", (4, 3, 3), 5, hidden=(7, 6))(torch.zeros(2, 4, 3, 3)).shape == (2, 5)
    module = nn.Linear(8, 2)
    assert ll.make_head(module, (8,), 2) is module
    factory = lambda in_shape, n: nn.Linear(in_shape[0], n)  # noqa: E731
    assert ll.make_head(factory, (8,), 2).in_features == 8
    mixed = ll.make_head("conv", (3, 4, 4), 2, pool="mixed", grid=1)
    h = torch.randn(5, 3, 4, 4)
    pooled = 0.5 * (h.mean((2, 3)) + h.amax((2, 3)))
    torch.testing.assert_close(mixed(h), mixed.linear(pooled))


def test_wrap_sequential_keeps_the_users_parameters():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    before = {id(p) for p in model.parameters()}
    net = ll.wrap(model, split=[3, 5], num_classes=10, input_shape=(1, 8, 8), head="mlp")
    block_params = {id(p) for s in net.stages for p in s.block.parameters()}
    assert block_params == before
    assert isinstance(net.stages[-1].head, nn.Identity)  # the model's own classifier is the last exit
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(net(x)[-1], model(x))


class TinyResNet(nn.Module):
    """Children in forward order, with a flatten in forward as in torchvision's ResNet."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.conv1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_wrap_named_stages_of_a_resnet_like_model():
    model = TinyResNet()
    net = ll.wrap(model, split=["layer1", "layer2"], num_classes=10, input_shape=(1, 8, 8), head="conv")
    assert len(net.stages) == 3
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(net(x)[-1], model(x))
    assert net.stages[2].block.get_submodule("layer2.0") is model.layer2[0]  # the traced block runs the user's own modules


def test_wrapped_model_trains_with_a_local_rule(digits):
    model = TinyResNet()
    net = ll.wrap(model, split=["layer2"], num_classes=10, input_shape=(1, 8, 8), head="conv")
    weight = model.conv1.weight.detach().clone()
    result = ll.train(net, digits, rule="local", epochs=3, batch_size=32, lr=3e-3, progress=False)
    assert not torch.equal(weight, model.conv1.weight)  # the user's own parameter object was trained
    assert min(result.final("test")) > 0.3  # chance is 0.1


def test_trainer_class_and_train_function_agree(synthetic):
    ll.seed_everything(5)
    a = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    ll.seed_everything(5)
    b = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    config = dict(epochs=2, batch_size=32, seed=4, progress=False)
    ra = ll.Trainer(a, synthetic, rule="joint", config=ll.TrainConfig(**config)).fit()
    rb = ll.train(b, synthetic, rule="joint", **config)
    assert ra.final("test") == rb.final("test")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_same_seed_repeats_and_another_seed_differs(synthetic):
    from locallearn.experiment import RunSpec, run

    spec = RunSpec(data="synthetic", widths=(16,), epochs=1, progress=False, dropout=0.1)
    first, again = run(spec), run(spec)
    other = run(RunSpec(data="synthetic", widths=(16,), epochs=1, progress=False, dropout=0.1, seed=1))
    assert first.history[0]["train_loss"] == again.history[0]["train_loss"]
    assert first.history[0]["train_loss"] != other.history[0]["train_loss"]
