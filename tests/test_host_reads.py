"""No host read (a GPU synchronisation) per batch in the training core: ``locallearn.backward``,
a training epoch and evaluation; counted by patching ``Tensor.item`` / ``.cpu`` / ``.tolist`` / ``bool``..."""

from __future__ import annotations

import pytest
import torch

import locallearn as ll
from locallearn.host_reads import HostReads
from locallearn.rules import RULES

# Every registered rule at its defaults, and the options that take another path through the step
VARIANTS = [(name, {}) for name in RULES.names()] + [
    ("ib", {"variant": "kde"}), ("ib", {"sigma": None}), ("ib", {"sigma": None, "median": "distance"}),
    ("e2e", {"checkpoint": True}),
]


@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}{o or ''}" for n, o in VARIANTS])
def test_backward_reads_nothing_back_for_every_rule(name, options):
    net = ll.build_cnn((1, 12, 12), (4, 4), 3)
    rule = ll.prepare(net, RULES.create(name, **options) if options else name)
    x, y = torch.randn(8, 1, 12, 12), torch.arange(8) % 3
    ll.backward(net, x, y, rule)  # the first call may set up lazily
    with HostReads() as reads:
        step = ll.backward(net, x, y, rule)
    assert reads.by_method == {}, reads.by_method
    # the losses stay 0-d tensors (NaN floats where none), which the user reads when they want
    assert all(isinstance(v, float) or (torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad) for v in step.losses)
    assert [f"{v:.3f}" for v in step.losses]


def _epoch_reads(synthetic, batches: int, *, rule: str, schedule: str) -> dict[str, int]:
    n = 16 * batches
    ds = ll.data.Dataset("synthetic", synthetic.x_train[:n], synthetic.y_train[:n], synthetic.x_val[:40],
                         synthetic.y_val[:40], synthetic.x_test[:40], synthetic.y_test[:40], synthetic.num_classes)
    torch.manual_seed(0)
    net = ll.build_mlp(ds.input_shape, (8, 8), ds.num_classes)
    # SGD: torch's Adam reads its own step counter (a CPU tensor) with .item() per parameter
    trainer = ll.Trainer(net, ds, rule=rule, schedule=schedule,
                         config=ll.TrainConfig(epochs=1, batch_size=16, optimizer="sgd", progress=False))
    with HostReads() as reads:
        trainer.fit()
    return reads.by_method


@pytest.mark.parametrize("rule, schedule", [("local", "simultaneous"), ("e2e", "simultaneous"), ("predsim", "simultaneous"),
                                            ("local", "sequential")])
def test_a_training_epoch_reads_back_once_not_per_batch(synthetic, rule, schedule):
    few, many = _epoch_reads(synthetic, 2, rule=rule, schedule=schedule), _epoch_reads(synthetic, 7, rule=rule, schedule=schedule)
    assert few == many, (few, many)  # nothing grows with the number of batches
    # per epoch: the losses once (epoch_losses), each evaluated split once (evaluate)
    assert sum(many.values()) <= 3 * (2 if schedule == "sequential" else 1), many


def test_evaluation_counts_on_the_device(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8, 8), synthetic.num_classes)
    trainer = ll.Trainer(net, synthetic, config=ll.TrainConfig(epochs=1, progress=False))
    with HostReads() as reads:
        accuracy = trainer.evaluate("test", batch_size=8)  # many batches, one read
    assert reads.count == 1 and len(accuracy) == 2
    with torch.inference_mode():
        expected = [(logits.argmax(1) == synthetic.y_test).float().mean().item() for logits in net(synthetic.x_test)]
    assert accuracy == pytest.approx(expected, abs=1e-6)
