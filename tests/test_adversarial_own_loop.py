"""Adversarial use of ``locallearn.backward`` in one's own loop (issue 24): labels of the wrong type or
value, non-tensors, empty batches, an optimiser missing a stage, two rules on one net, nets kept alive.
A new argument of ``backward`` gets a row in ``BAD_BATCHES``.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

import locallearn as ll

X, Y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])

BAD_BATCHES = {  # name -> (x, y, error type, message)
    "int32 labels": (X, Y.int(), ValueError, r"dtype torch.int32. Convert them with y.long\(\)"),
    "int16 labels": (X, Y.short(), ValueError, r"dtype torch.int16. Convert them with y.long\(\)"),
    "numpy inputs": (X.numpy(), Y, TypeError, r"The inputs x must be a torch.Tensor; got a ndarray"),
    "list labels": (X, Y.tolist(), TypeError, r"The labels y must be a torch.Tensor; got a list"),
    "empty batch": (X[:0], Y[:0], ValueError, r"The batch is empty \(0 samples\)"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_batch_is_one_clear_error_before_any_loss(case):
    x, y, kind, message = BAD_BATCHES[case]
    net = ll.build_mlp((4,), (8, 8), 3)
    with pytest.raises(kind, match=message):
        ll.backward(net, x, y, "local")
    assert all(p.grad is None for p in net.parameters())  # nothing was backpropagated


def test_a_dataset_refuses_int32_labels():
    with pytest.raises(ValueError, match=r"train labels have shape \(6,\) and dtype torch.int32.*convert them with y.long\(\)"):
        ll.data.Dataset("toy", X, Y.int(), X, Y, X, Y, num_classes=3)


def test_an_optimiser_missing_a_stage_is_refused_after_prepare_too():
    net = ll.build_mlp((4,), (8, 8), 3)
    rule = ll.prepare(net, "local")
    partial = torch.optim.SGD(net.stages[0].parameters(), lr=0.1)
    with pytest.raises(ValueError, match="trainable parameters of the net are in no optimiser"):
        ll.backward(net, X, Y, rule, optimizer=partial)


@pytest.mark.parametrize("first", ["dfa", "fa-heads"])
def test_a_second_rule_on_a_net_a_setup_changed_is_refused(first):
    net = ll.build_mlp((4,), (8, 8), 3)
    ll.prepare(net, first)
    with pytest.raises(ValueError, match=f"This net was prepared for rule '{first}'; rule 'local' cannot train it too"):
        ll.backward(net, X, Y, "local")


def test_rules_whose_setups_change_nothing_may_share_a_net():
    net = ll.build_mlp((4,), (8, 8), 3)
    names = [name for name, _ in net.named_parameters()]
    local = ll.backward(net, X, Y, "local")
    net.zero_grad(set_to_none=True)
    e2e = ll.backward(net, X, Y, "e2e")  # neither changes the net: allowed as before, no error
    assert [name for name, _ in net.named_parameters()] == names  # no setup added anything
    assert len(local.losses) == len(e2e.losses) == 2
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.stages[0].block.parameters())  # e2e trained it


def test_joint_cost_keeps_no_net_alive():
    """60 nets through joint-cost took 513 MB: the rule, kept per net, held its net."""
    ds = ll.data.load("synthetic")
    refs = []
    for _ in range(3):
        net = ll.build_mlp(ds.input_shape, (8, 8), ds.num_classes)
        ll.backward(net, ds.x_train[:8], ds.y_train[:8], "joint-cost")
        refs.append(weakref.ref(net))
        trained = ll.build_mlp(ds.input_shape, (8,), ds.num_classes)
        ll.Trainer(trained, ds, rule="joint-cost", config=ll.TrainConfig(epochs=1, progress=False, eval_every=0)).fit()
        refs.append(weakref.ref(trained))
        del net, trained
    gc.collect()
    assert [r() is None for r in refs] == [True] * len(refs)


def test_inf_is_refused_for_float_hyper_parameters():
    with pytest.raises(ValueError, match="The 'sigma' parameter of InformationBottleneck must be a finite float"):
        ll.rules.create("ib", sigma=float("inf"))
    with pytest.raises(ValueError, match="The 'lr' parameter of TrainConfig must be a finite float > 0.0. Got inf instead."):
        ll.TrainConfig(lr=float("inf"))
    assert np.isfinite(ll.TrainConfig(lr=1e-3).lr)


def test_messages_number_stages_from_1():
    """"Stage 0's exit gives 3 scores" against the README's "numbered from 1 everywhere"."""
    net = ll.build_mlp((4,), (8, 8), 3)
    with pytest.raises(ValueError, match="Stage 1's exit gives 3 scores per sample, but the labels reach 5"):
        ll.backward(net, X, torch.tensor([0, 1, 2, 5, 1, 2]), "local")
