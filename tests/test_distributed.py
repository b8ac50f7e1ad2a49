"""Data-parallel training (locallearn.distributed): 2 gloo processes on CPU train the parameters of 1 process.

The reference is always an ordinary one-process run on the same global batches; the workers are
forked from the test (torch.multiprocessing, a file store, bounded by a deadline) or launched by
torchrun for the command line.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import locallearn as ll
from locallearn import distributed
from locallearn.schedules import Sequential

WORLD = 2
DEADLINE_S = 240
CONFIG = dict(batch_size=45, epochs=2, lr=1e-2, progress=False, eval_every=0)  # 420 samples: shards 23/22 and 8/7
RUNS = {  # name -> (rule, schedule, TrainConfig overrides)
    "local": ("local", "simultaneous", {}),
    "e2e": ("e2e", "simultaneous", {}),
    "local-sequential": ("local", "sequential", {"epochs": 1}),
    "local-sgd": ("local", "simultaneous", {"optimizer": "sgd"}),
    "local-freezeout": ("local", "freezeout", {}),
}


def _net(ds: ll.data.Dataset, seed: int) -> ll.LocalNet:
    ll.seed_everything(seed)
    return ll.build_mlp(ds.input_shape, (24, 24, 24), ds.num_classes)


def _trainer(ds: ll.data.Dataset, name: str, *, seed: int = 0, checkpoint: str | None = None, **extra) -> ll.Trainer:
    rule, schedule, overrides = RUNS[name]
    config = ll.TrainConfig(**{**CONFIG, **overrides, **extra}, checkpoint_path=checkpoint)
    return ll.Trainer(_net(ds, seed), ds, rule=rule, schedule=schedule, config=config)


def _worker(rank: int, store_path: str, out: str) -> None:
    """One data-parallel process: train every run of RUNS, a resumed run and a hand-written backward loop."""
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, WORLD)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    ds = ll.data.load("synthetic")
    saved = {}
    for name in RUNS:
        # each rank builds its net from a different seed: DataParallel starts them from rank 0's weights
        trainer = _trainer(ds, name, seed=rank)
        trainer.fit()
        saved[name] = {"net": trainer.net.state_dict(), "record": trainer.result.history[-1],
                       "config": trainer.result.config}
    # resume: 1 epoch with a checkpoint (written by rank 0 only), then a new trainer continues to 2 epochs
    checkpoint = os.path.join(out, "resume.pt")
    _trainer(ds, "local", checkpoint=checkpoint, epochs=1).fit()
    dist.barrier()
    resumed = _trainer(ds, "local", epochs=2)
    resumed.load_checkpoint(checkpoint)
    resumed.fit()
    saved["resumed"] = {"net": resumed.net.state_dict()}
    saved["checkpoint"] = checkpoint
    saved["backward"] = {"net": _backward_loop(ds, rank)}
    try:
        distributed.DataParallel(_net(ds, 0)).shard(torch.zeros(1, 16), torch.zeros(1, dtype=torch.long))
    except ValueError as error:
        saved["small_batch_error"] = str(error)
    torch.save(saved, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _backward_loop(ds: ll.data.Dataset, rank: int | None) -> dict[str, torch.Tensor]:
    """A plain loop over global batches with locallearn.backward; data-parallel when ``rank`` is given."""
    net = _net(ds, 0)
    rule = ll.prepare(net, "local")
    parallel = distributed.DataParallel(net) if rank is not None else None
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for x, y in zip(ds.x_train[:135].split(45), ds.y_train[:135].split(45)):
        if parallel is not None:
            x, y, _ = parallel.shard(x, y)
        opt.zero_grad()
        ll.backward(net, x, y, rule, grad_sync=None if parallel is None else parallel.grad_sync)
        opt.step()
    return net.state_dict()


@pytest.fixture(scope="module")
def parallel_runs(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dp")
    context = mp.start_processes(_worker, args=(str(out / "store"), str(out)), nprocs=WORLD, join=False, start_method="fork")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} data-parallel processes did not finish within {DEADLINE_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _assert_same_net(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", list(RUNS))
def test_two_processes_train_the_parameters_of_one_on_the_same_global_batches(parallel_runs, synthetic, name):
    single = _trainer(synthetic, name)
    single.fit()
    for rank in range(WORLD):
        _assert_same_net(parallel_runs[rank][name]["net"], single.net.state_dict())
    changed = [not torch.equal(p, q) for p, q in zip(single.net.state_dict().values(), _net(synthetic, 0).state_dict().values())]
    assert all(changed)  # the comparison is not between untrained nets


def test_results_record_the_world_size_backend_and_each_stages_all_reduce(parallel_runs):
    local, e2e = parallel_runs[0]["local"], parallel_runs[0]["e2e"]
    assert local["config"]["data_parallel"]["world_size"] == WORLD and local["config"]["data_parallel"]["backend"] == "gloo"
    # local: one all-reduce per stage per batch, issued after that stage's backward; e2e: one for all stages
    assert [entry["stages"] for entry in local["record"]["grad_sync"]] == [[0], [1], [2]]
    assert [entry["stages"] for entry in e2e["record"]["grad_sync"]] == [[0, 1, 2]]
    assert {entry["calls"] for entry in local["record"]["grad_sync"]} == {10}  # ceil(420 / 45) batches
    assert parallel_runs[0]["local"]["record"]["process_samples"] + parallel_runs[1]["local"]["record"]["process_samples"] == 420


def test_a_resumed_parallel_run_continues_exactly(parallel_runs, synthetic):
    single = _trainer(synthetic, "local")
    single.fit()
    for rank in range(WORLD):
        _assert_same_net(parallel_runs[rank]["resumed"]["net"], single.net.state_dict())


def test_a_checkpoint_of_two_processes_resumes_in_one(parallel_runs, synthetic):
    single = _trainer(synthetic, "local")
    single.fit()
    resumed = _trainer(synthetic, "local")
    resumed.load_checkpoint(parallel_runs[0]["checkpoint"])
    resumed.fit()
    _assert_same_net(resumed.net.state_dict(), single.net.state_dict())
    change = resumed.result.config["resumed"][-1]["changes"]["data_parallel"]
    assert change[0]["world_size"] == WORLD and change[1] is None


def test_the_backward_path_averages_each_stages_gradients(parallel_runs, synthetic):
    single = _backward_loop(synthetic, None)
    for rank in range(WORLD):
        _assert_same_net(parallel_runs[rank]["backward"]["net"], single)


def test_a_global_batch_smaller_than_the_world_is_a_clear_error(parallel_runs):
    assert "A global batch of 1 samples cannot give each of the 2 processes a sample" in parallel_runs[0]["small_batch_error"]


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_schedules_that_cannot_run_data_parallel_are_refused(one_process_group, synthetic):
    with pytest.raises(ValueError, match="'decoupled' schedule cannot train data-parallel under torchrun"):
        ll.Trainer(_net(synthetic, 0), synthetic, schedule="decoupled", config=ll.TrainConfig(progress=False))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(synthetic.x_train, synthetic.y_train), batch_size=32,
        sampler=torch.utils.data.DistributedSampler(torch.utils.data.TensorDataset(synthetic.x_train), num_replicas=1, rank=0),
    )
    with pytest.raises(ValueError, match="has a DistributedSampler, but locallearn shards each global batch itself"):
        ll.Trainer(_net(synthetic, 0), loader, test_data=[], config=ll.TrainConfig(progress=False))
    assert Sequential.data_parallel and not ll.schedules.create("decoupled").data_parallel


def test_outside_torchrun_nothing_is_parallel(synthetic, monkeypatch):
    for key in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    trainer = _trainer(synthetic, "local")
    assert trainer.data_parallel is None and trainer.result.config["data_parallel"] is None and distributed.is_writer()
    with pytest.raises(ValueError, match="DataParallel needs a torch.distributed process group"):
        distributed.DataParallel(trainer.net)


@pytest.mark.slow
def test_torchrun_trains_digits_and_rank_0_alone_writes(tmp_path):
    """The issue's command: 2 processes, digits, rule local, 3 epochs; one results file, >= 85 % at the last exit."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "locallearn.cli", "train", "--data", "digits", "--rule", "local", "--epochs", "3",
               "--no-progress", "--out", "results.json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results written to") == 1 and done.stdout.count("exit 3: val") == 1
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["results.json"]
    result = ll.io.read_json(tmp_path / "results.json")
    assert result["config"]["data_parallel"]["world_size"] == 2
    assert result["history"][-1]["test_accuracy"][-1] >= 0.85
