"""Adversarial evaluation and training data given as loaders or datasets (issue 24): empty splits, labels of
the wrong shape or range, endless iterators, augmentations that do not fit. Each is one line, never a
silent 0 % or an "accuracy" of 18. A new data entry point gets a row in ``BAD_VAL``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import locallearn as ll
from locallearn import cli
from tests._adversarial import one_line_error


@pytest.fixture
def net(synthetic):
    return ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)


def _train(net, synthetic, val):
    return ll.train(net, [(synthetic.x_train, synthetic.y_train)], val_data=val, epochs=1, progress=False)


BAD_VAL = {  # name -> (validation loader from the synthetic set, message)
    "labels (N, 1)": (lambda ds: [(ds.x_val, ds.y_val[:, None])], r"The val labels have shape \(60, 1\).*flatten them"),
    "labels out of range": (lambda ds: [(ds.x_val, ds.y_val + 10)], r"Label 1[0-3] in the val data is outside the exits' class range \[0, 3\]"),
    "negative labels": (lambda ds: [(ds.x_val, ds.y_val - 5)], r"Label -5 in the val data is outside"),
}


@pytest.mark.parametrize("case", list(BAD_VAL))
def test_bad_validation_loaders_are_refused_instead_of_a_wrong_accuracy(case, synthetic, net):
    make, message = BAD_VAL[case]
    with pytest.raises(ValueError, match=message):
        _train(net, synthetic, make(synthetic))


def test_an_empty_validation_loader_gives_no_accuracy_not_0_percent(synthetic, net):
    result = _train(net, synthetic, [])
    assert result.history[-1].get("val_accuracy", []) == []  # was [0.0]: "0.00 %"


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_dataset_with_an_empty_evaluation_split_reports_no_accuracy_for_it(split, synthetic, net):
    fields = {k: getattr(synthetic, k) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    fields[f"x_{split}"], fields[f"y_{split}"] = fields[f"x_{split}"][:0], fields[f"y_{split}"][:0]
    empty = ll.data.Dataset("holey", **fields, num_classes=synthetic.num_classes)
    result = ll.Trainer(net, empty, config=ll.TrainConfig(epochs=1, progress=False)).fit()
    assert result.history[-1].get(f"{split}_accuracy", []) == []  # was [0.0]


def test_an_endless_iterator_as_training_data_is_refused_at_once(synthetic, net):
    endless = itertools.repeat((synthetic.x_train[:8], synthetic.y_train[:8]))
    with pytest.raises(TypeError, match="Training data must be re-iterable.*got a repeat, an iterator that is read once"):
        ll.Trainer(net, endless, val_data=[(synthetic.x_val, synthetic.y_val)])
    generator = ((x, y) for x, y in [(synthetic.x_train, synthetic.y_train)])
    with pytest.raises(TypeError, match="got a generator"):
        ll.Trainer(net, generator)


def test_a_crop_larger_than_the_images_is_refused(digits, capsys):
    net = ll.build_mlp(digits.input_shape, (8,), digits.num_classes)
    with pytest.raises(ValueError, match="Augmentation crop99 pads by 99 pixels, as much as or more than the 8 x 8 images"):
        ll.Trainer(net, digits, config=ll.TrainConfig(augment="crop99", progress=False))
    err = one_line_error(capsys, cli.main(["train", "--data", "digits", "--widths", "8", "--augment", "crop8", "--no-progress"]))
    assert "crop8 pads by 8 pixels" in err
