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
