"""Bad input gets a clear error that says what was wrong and what is expected."""

from __future__ import annotations

import gzip

import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn import data
from locallearn.data import IdxFormatError, read_idx


def _write_idx(path, header: bytes, body: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(header + body)


def test_missing_fashion_mnist_folder_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        data.load("fashion-mnist", data_dir=tmp_path / "nowhere")


def test_missing_idx_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load("mnist", data_dir=tmp_path)


def test_mnist_without_folder_asks_for_one():
    with pytest.raises(FileNotFoundError, match="data_dir"):
        data.load("mnist")


def test_truncated_idx_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    _write_idx(path, bytes([0, 0, 0x08, 1, 0, 0, 0, 10]), bytes(range(7)))
    with pytest.raises(IdxFormatError, match=r"declares shape \(10,\) \(10 bytes of data\) but the file holds 7"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage-that-is-not-deflate")
    with pytest.raises(IdxFormatError, match="truncated or corrupt"):
        read_idx(path)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"PK\x03\x04hello")
    with pytest.raises(IdxFormatError, match="bad magic number"):
        read_idx(path)


def test_idx_round_trip_of_images(tmp_path):
    images = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4).numpy()
    path = tmp_path / "imgs-idx3-ubyte.gz"
    _write_idx(path, bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 3, 4)), images.tobytes())
    assert (read_idx(path) == images).all()


def test_label_outside_class_range():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"label 7 in the val split is outside the class range \[0, 2\]"):
        data.Dataset("toy", x, torch.tensor([0, 1, 2]), x, torch.tensor([0, 7, 1]), x, torch.tensor([0, 1, 2]), num_classes=3)


def test_inputs_and_labels_must_match_in_count():
    with pytest.raises(ValueError, match="has 3 inputs but 2 labels"):
        data.Dataset("toy", torch.zeros(3, 2), torch.tensor([0, 1]), torch.zeros(1, 2), torch.tensor([0]),
                     torch.zeros(1, 2), torch.tensor([0]), num_classes=2)


def test_split_naming_no_layer_lists_the_children():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 4, 3))
    model.add_module("relu", nn.ReLU())
    with pytest.raises(ValueError, match="'layer9' names no layer of the model. Its children are: conv, relu"):
        ll.wrap(model, split=["layer9"], num_classes=10, input_shape=(1, 8, 8))


def test_split_index_out_of_range():
    with pytest.raises(ValueError, match="not a child index in 1..1"):
        ll.wrap(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), split=[5], num_classes=2, input_shape=(4,))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ll.rules.create("backprop-ish"), "Unknown rule 'backprop-ish'. Known rules: .*e2e.*joint.*local"),
        (lambda: ll.schedules.create("random"), "Unknown schedule 'random'. Known schedules: .*sequential.*simultaneous"),
        (lambda: ll.make_head("attention", (8,), 3), "Unknown head 'attention'. Known heads: conv, .*linear, mlp"),
        (lambda: data.load("cifar-10"), "Unknown dataset 'cifar-10'. Known datasets: cifar10, cifar100, digits, fashion-mnist"),
    ],
)
def test_unknown_names_list_the_known_ones(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_hyper_parameters_are_validated_with_one_message_shape():
    with pytest.raises(ValueError, match="The 'lr' parameter of TrainConfig must be a float > 0.0. Got -1 instead."):
        ll.TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="The 'weights' parameter of JointSupervision must be a float >= 0.0"):
        ll.rules.create("joint", weights=(1.0, -2.0))
    with pytest.raises(ValueError, match="The 'pool' parameter of ConvHead must be one of 'avg', 'mixed'"):
        ll.make_head("conv", (4, 8, 8), 10, pool="median")


def test_conv_head_on_flat_features_says_what_to_use():
    with pytest.raises(ValueError, match="Use head='linear' or 'mlp' for flat features"):
        ll.make_head("conv", (64,), 10)


def test_nan_loss_stops_with_a_clear_error(synthetic):
    good = (synthetic.x_train[:32], synthetic.y_train[:32])
    batches = [good, good, (synthetic.x_train[:32].clone().fill_(float("nan")), synthetic.y_train[:32])]  # a loader: not checked up front
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    # read once at the end of the epoch (no host read per batch), naming the step that went wrong
    with pytest.raises(ll.schedules.NonFiniteLossError, match="stage 1 became nan at epoch 1, step 3 .*Lower the learning rate"):
        ll.train(net, batches, epochs=1, progress=False)


def test_corrupt_checkpoint_is_refused(tmp_path, synthetic):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    trainer = ll.Trainer(ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes), synthetic)
    with pytest.raises(ValueError, match="cannot be read"):
        trainer.load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        trainer.load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_of_another_rule_is_refused(tmp_path, synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    ll.Trainer(net, synthetic, rule="local", config=ll.TrainConfig(epochs=1, progress=False)).save_checkpoint(tmp_path / "a.pt")
    other = ll.Trainer(ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes), synthetic, rule="joint")
    with pytest.raises(ValueError, match="was made with another configuration: rule.name is .local. there, .joint. now"):
        other.load_checkpoint(tmp_path / "a.pt")


def test_unknown_hyper_parameter_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="The rule 'joint' has no parameter 'wieghts'. Its parameters are: weights."):
        ll.rules.create("joint", wieghts=(1.0,))
    with pytest.raises(ValueError, match="The schedule 'simultaneous' has no parameter 'capacity'. Its parameters are: none."):
        ll.schedules.create("simultaneous", capacity=2)


def test_compare_with_no_rule_is_a_clean_error(tmp_path, capsys):
    from locallearn.cli import main

    assert main(["compare", "--data", "synthetic", "--rules", ",", "--out", str(tmp_path / "r.json")]) == 2
    assert "--rules names no rule" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
