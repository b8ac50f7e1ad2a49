"""The engine on a CUDA GPU: every rule's backward against CPU, no host read per batch, AMP float16 with a
GradScaler, bfloat16, pinned-memory loaders, the early-exit runner, and data-parallel over gloo on one GPU.

Marked ``cuda`` and skipped without a GPU (``pytest -m cuda`` selects them; ``make gpu-check`` runs them and
writes a report naming the card).
"""

from __future__ import annotations

import copy
import datetime
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

import locallearn as ll
from locallearn.exits import EarlyExitRunner, Thresholds
from locallearn.host_reads import HostReads
from locallearn.rules import RULES

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")


def _pair(name: str) -> tuple[ll.LocalNet, ll.LocalNet, ll.rules.LocalRule, ll.rules.LocalRule]:
    """The same net and rule on CPU and on the GPU (a rule's setup may draw modules: the GPU copy takes CPU's weights)."""
    torch.manual_seed(0)
    cpu = ll.build_cnn((1, 12, 12), (4, 8), 3)
    gpu = copy.deepcopy(cpu)
    rule_cpu, rule_gpu = RULES.create(name), RULES.create(name)
    ll.prepare(cpu, rule_cpu)
    gpu.to(CUDA)
    ll.prepare(gpu, rule_gpu)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu, rule_cpu, rule_gpu


def _grads(net: ll.LocalNet) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().cpu() for p in net.parameters()]


def _draws_at_random(name: str) -> bool:
    """True if the rule's step depends on random draws (CPU and CUDA generators then differ)."""
    grads = []
    for seed in (1, 2):
        cpu, _, rule, _ = _pair(name)
        torch.manual_seed(seed)
        ll.backward(cpu, torch.ones(6, 1, 12, 12), torch.arange(6) % 3, rule)
        grads.append(_grads(cpu))
    return any(a is not None and not torch.equal(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize("name", RULES.names())
def test_every_rule_backward_on_cuda_matches_cpu(name):
    cpu, gpu, rule_cpu, rule_gpu = _pair(name)
    x, y = torch.randn(16, 1, 12, 12), torch.arange(16) % 3
    torch.manual_seed(1)
    step_cpu = ll.backward(cpu, x, y, rule_cpu)
    torch.manual_seed(1)
    step_gpu = ll.backward(gpu, x.to(CUDA), y.to(CUDA), rule_gpu)
    assert all(isinstance(v, float) or v.device.type == "cuda" for v in step_gpu.losses)  # left on the device
    if _draws_at_random(name):  # other random draws on the GPU: the same shapes, finite
        assert all(torch.isfinite(torch.as_tensor(float(v))) or v != v for v in step_gpu.losses)
        return
    torch.testing.assert_close(torch.tensor([float(v) for v in step_gpu.losses]),
                               torch.tensor([float(v) for v in step_cpu.losses]), rtol=1e-4, atol=1e-5, equal_nan=True)
    for a, b in zip(_grads(gpu), _grads(cpu)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["local", "e2e", "e2e:checkpoint=true", "predsim", "joint"])
def test_backward_on_cuda_reads_nothing_back(name):
    from locallearn.compare import parse_named

    rule_name, kw = parse_named(name, what="rule")
    net = ll.build_cnn((1, 12, 12), (4, 8), 3).to(CUDA)
    rule = ll.prepare(net, ll.rules.create(rule_name, **kw))
    x, y = torch.randn(16, 1, 12, 12, device=CUDA), torch.arange(16, device=CUDA) % 3
    ll.backward(net, x, y, rule)
    with HostReads() as reads:
        ll.backward(net, x, y, rule)
    assert reads.by_method == {}


def _digits_trainer(*, mlp: bool = False, **config) -> ll.Trainer:
    ds = ll.data.load("digits")
    torch.manual_seed(0)
    # data-parallel uses the MLP: BatchNorm's statistics of a shard are not those of the global batch
    net = ll.build_mlp(ds.input_shape, (64, 64), ds.num_classes) if mlp else ll.build_cnn(ds.input_shape, (8, 16), ds.num_classes)
    return ll.Trainer(net, ds, rule="local", config=ll.TrainConfig(epochs=2, batch_size=64, progress=False, **config))


def test_amp_float16_with_a_grad_scaler_trains_like_float32():
    amp, full = _digits_trainer(device="cuda", amp=True), _digits_trainer(device="cuda")
    assert amp.scaler is not None and amp.autocast_dtype == torch.float16
    a, f = amp.fit().final("test"), full.fit().final("test")
    assert a[-1] > 0.8 and abs(a[-1] - f[-1]) < 0.05, (a, f)


def test_bfloat16_autocast_gives_close_gradients():
    torch.manual_seed(0)
    net = ll.build_cnn((1, 12, 12), (8, 8), 3).to(CUDA)
    twin = copy.deepcopy(net)
    x, y = torch.randn(32, 1, 12, 12, device=CUDA), torch.arange(32, device=CUDA) % 3
    ll.backward(net, x, y, "local", autocast_dtype=torch.bfloat16)
    ll.backward(twin, x, y, "local")
    for a, b in zip(net.parameters(), twin.parameters()):
        assert a.grad.dtype == torch.float32  # parameters and their gradients stay float32
        torch.testing.assert_close(a.grad, b.grad, rtol=0.1, atol=0.05)


def test_pinned_loaders_train_on_the_gpu():
    trainer = _digits_trainer(device="cuda")
    assert trainer.train_source.x.is_pinned()  # in-memory data: pinned, copied without blocking
    ds = ll.data.load("digits")
    loader = DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=64, shuffle=True, pin_memory=True,
                        generator=torch.Generator().manual_seed(0))
    test = DataLoader(TensorDataset(ds.x_test, ds.y_test), batch_size=256, pin_memory=True)
    torch.manual_seed(0)
    net = ll.build_cnn(ds.input_shape, (8, 16), ds.num_classes)
    result = ll.train(net, loader, test_data=test, epochs=2, device="cuda", progress=False)
    assert next(net.parameters()).device.type == "cuda" and result.final("test")[-1] > 0.8


def test_early_exit_runner_on_cuda_equals_cpu():
    trainer = _digits_trainer(device="cuda")
    trainer.fit()
    net = trainer.net.eval()
    x = ll.data.load("digits").x_test[:200]
    thresholds = Thresholds.fixed("max-prob", [0.9])
    on_gpu = EarlyExitRunner(net, thresholds).run(x.to(CUDA))
    on_cpu = EarlyExitRunner(copy.deepcopy(net).cpu(), thresholds).run(x)
    agree = (on_gpu.exit.cpu() == on_cpu.exit).float().mean()
    assert agree > 0.98  # a sample right at the threshold may fall either side in float32
    assert 0 < (on_gpu.exit.cpu() == 0).sum() < len(x)  # some exit early, some run on


def _dp_worker(rank: int, store_path: str, out: str) -> None:
    store = dist.FileStore(store_path, 2)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    trainer = _digits_trainer(mlp=True, device="cuda:0", eval_every=0)
    trainer.fit()
    torch.save({k: v.cpu() for k, v in trainer.net.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_data_parallel_with_gloo_on_one_gpu_trains_the_one_process_net():
    with tempfile.TemporaryDirectory() as out:
        context = mp.start_processes(_dp_worker, args=(str(Path(out) / "store"), out), nprocs=2, join=True,
                                     start_method="spawn")
        assert context is None or context.join()
        ranks = [torch.load(Path(out) / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = _digits_trainer(mlp=True, device="cuda", eval_every=0)
    single.fit()
    for key, value in single.net.state_dict().items():
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0)  # the ranks agree exactly
        if value.is_floating_point():
            torch.testing.assert_close(ranks[0][key], value.cpu(), rtol=1e-4, atol=1e-4)

