"""The local-loss recipe's pieces (Nøkland & Eidnes 2019, anokland/local-loss): the step decays, the paper suite."""

from __future__ import annotations

from bisect import bisect_right

import pytest
import torch

import locallearn as ll
from locallearn.bench.suites import SUITES
from locallearn.data import Dataset


class _LearningRates(ll.Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_epoch_end(self, trainer, record) -> None:
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("epochs, milestones", [(200, [100, 150, 175, 188]), (24, [12, 18, 21, 22])])
def test_steps_schedule_is_the_authors_decay(epochs, milestones):
    """train.py: lr = lr0 * 0.25 ** bisect_right(milestones, epoch - 1) in epoch ``epoch`` (1-based);
    run_experiments.sh gives F-MNIST milestones 100 150 175 188 for 200 epochs."""
    g = torch.Generator().manual_seed(0)
    tiny = Dataset("tiny", torch.randn(8, 3, generator=g), torch.arange(8) % 2, torch.randn(4, 3), torch.arange(4) % 2,
                   torch.randn(4, 3), torch.arange(4) % 2, num_classes=2)
    lrs = _LearningRates()
    net = ll.build_mlp((3,), (4,), 2)
    config = ll.TrainConfig(epochs=epochs, batch_size=8, lr=5e-4, lr_schedule="steps", progress=False, eval_every=0)
    ll.Trainer(net, tiny, rule="local", config=config, callbacks=[lrs]).fit()
    # the lr in force during epoch e + 1 is the one seen at the end of epoch e
    used = [5e-4] + lrs.seen[:-1]
    want = [5e-4 * 0.25 ** bisect_right(milestones, epoch - 1) for epoch in range(1, epochs + 1)]
    assert used == pytest.approx(want, rel=1e-12)


def test_paper_suite_is_the_fashion_mlp_recipe():
    cells = SUITES["paper"].cells(seeds=1)
    assert sorted(c.spec.rule for c in cells) == ["e2e", "local", "predsim", "predsim-bio", "sim"]
    assert SUITES["paper"].seeds == 3
    for c in cells:
        s = c.spec
        assert (s.data, s.widths, s.batch_size, s.optimizer, s.lr, s.dropout, s.augment, s.lr_schedule) == (
            "fashion-mnist", (1024, 1024, 1024), 128, "adam", 5e-4, 0.025, "crop2,flip", "steps")
        assert s.epochs >= 30
        # as published: BatchNorm, all 60,000 training images, leaky ReLU for the similarity rules (--nonlin leakyrelu)
        assert s.model_kw == {"batch_norm": True} and s.val_size == 0
        assert s.activation == ("leaky-relu" if s.rule in ("sim", "predsim", "predsim-bio") else "relu")
        assert "sim_dim" not in s.rule_kw  # the rules' default: the full width, as the authors' linear_loss
        # train.py zeroes decoder_y (and layer_out) of local-loss runs; --backprop keeps nn.Linear's init
        assert s.head_kw == ({} if s.rule == "e2e" else {"zero_weight": True})
    three = SUITES["paper-3ep"].cells(seeds=1)
    assert {(c.spec.rule, tuple(c.spec.head_kw.items())) for c in three} == {("e2e", ()), ("predsim", (("zero_weight", True),))}


@pytest.mark.parametrize("rule, feedback", [("local", False), ("predsim", False), ("predsim-bio", True)])
def test_a_zero_weight_head_starts_at_zero_and_sends_its_block_no_gradient_at_first(rule, feedback):
    """decoder_y.weight.data.zero_() (train.py): the first step's prediction gradient into the block is
    W^T (p - y) = 0, the head's bias and weight still learn; predsim-bio's widened read-out stays zero, and
    its block does get a signal: feedback alignment sends B^T (p - y), not W^T (their LinearFA's backward)."""
    torch.manual_seed(0)
    net = ll.build_mlp((6,), (5, 4), 3, head_kw={"zero_weight": True})
    rule_obj = ll.rules.create(rule, **({"beta": 0.0} if rule != "local" else {}))
    ll.prepare(net, rule_obj)
    readouts = [[m for m in st.head.modules() if isinstance(m, torch.nn.Linear)][-1] for st in net.stages]
    assert all(bool(r.weight.eq(0).all()) for r in readouts)
    x, y = torch.randn(16, 6), torch.arange(16) % 3
    ll.backward(net, x, y, rule_obj)
    block = net.stages[0].block[1]
    block_signal = 0.0 if block.weight.grad is None else float(block.weight.grad.abs().max())
    assert (block_signal > 0) == feedback
    assert all(float(r.weight.grad.abs().max()) > 0 for r in readouts)
    plain = ll.build_mlp((6,), (5, 4), 3)
    assert float(plain.stages[0].head.linear.weight.detach().abs().min()) > 0
