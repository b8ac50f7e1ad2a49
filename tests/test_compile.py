"""TrainConfig.compile / --compile: every stage's block through torch.compile, the same training as eager,
refused with a reason by a rule (dfa) or schedule (pipeline) that cannot."""

from __future__ import annotations

import copy

import pytest
import torch

import locallearn as ll
from locallearn.commands.common import spec_from_args
from locallearn.cli import build_parser


def _trainer(synthetic, **config) -> ll.Trainer:
    torch.manual_seed(0)
    net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    return ll.Trainer(net, synthetic, rule=config.pop("rule", "local"), schedule=config.pop("schedule", "simultaneous"),
                      config=ll.TrainConfig(epochs=1, batch_size=64, progress=False, eval_every=0, **config))


@pytest.mark.slow
def test_compiled_blocks_train_the_eager_net(synthetic):
    from torch._dynamo.utils import counters

    eager, compiled = _trainer(synthetic), _trainer(synthetic, compile=True)
    before = counters["frames"]["ok"]
    eager.fit(), compiled.fit()
    assert counters["frames"]["ok"] > before  # dynamo really compiled the blocks (nn.Module.compile would not have)
    twin = copy.deepcopy(compiled.net)  # a copy runs its own weights, not the original's
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    assert not twin.stages[0].block(synthetic.x_train[:4]).any()
    assert list(compiled.net.state_dict()) == list(eager.net.state_dict())  # checkpoints keep their keys
    for a, b in zip(compiled.net.parameters(), eager.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_rules_and_schedules_that_cannot_say_why(synthetic):
    with pytest.raises(ValueError, match="Rule 'dfa' cannot train compiled blocks: its feedback layers"):
        _trainer(synthetic, rule="dfa", compile=True)
    with pytest.raises(ValueError, match="'pipeline' schedule runs its stages in worker processes"):
        _trainer(synthetic, schedule="pipeline", compile=True)


def test_the_command_line_flag_reaches_the_train_config():
    args = build_parser().parse_args(["train", "--data", "synthetic", "--compile"])
    assert spec_from_args(args).train_config().compile is True
    assert spec_from_args(build_parser().parse_args(["train", "--data", "synthetic"])).train_config().compile is False
