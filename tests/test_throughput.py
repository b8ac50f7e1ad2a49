"""The throughput program: FLOPs counted per step, the sgemm limit measured, the engine against a hand loop."""

from __future__ import annotations

import torch

import locallearn as ll
from locallearn.bench.programs import throughput


def test_the_hand_written_loop_trains_the_same_net_as_the_engine(synthetic):
    ds = ll.data.Dataset("synthetic", synthetic.x_train[:64], synthetic.y_train[:64], synthetic.x_val, synthetic.y_val,
                         synthetic.x_test, synthetic.y_test, synthetic.num_classes)
    original = dict(throughput.MODELS)
    throughput.MODELS.clear()
    throughput.MODELS["mlp"] = lambda d: ll.build_mlp(d.input_shape, (16, 16), d.num_classes)
    try:
        for rule in ("local", "e2e"):
            run = throughput._Run("mlp", rule, ds, {"batch_size": 16, "lr": 1e-2})
            assert run.engine_epoch() > 0 and run.hand_epoch(0) > 0  # epoch 0 of both: the same batches
            for a, b in zip(run.trainer.net.parameters(), run.hand_net.parameters()):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # the same work, so the comparison is fair
            # a Linear(a, b) costs 2ab per sample forward, 2ab for its weight gradient, 2ab for its input's gradient (none for
            # a detached input); local: blocks 16->16 twice (no input gradient) + 2 heads 16->4 (with); e2e: the second
            # block gets its input gradient, the first head runs once, as a probe on detached features (no input gradient)
            expected = {"local": 2 * 4 * 256 + 2 * 6 * 64, "e2e": 4 * 256 + 6 * 256 + 6 * 64 + 4 * 64}[rule]
            assert run.flops_per_sample == expected
    finally:
        throughput.MODELS.clear()
        throughput.MODELS.update(original)


def test_sgemm_rate_is_a_rate():
    assert throughput.sgemm_rate(repeat=2) > 1e6
