"""Data-parallel training under ``torchrun``: every process trains on its shard of each global batch.

Launch any training command under ``torchrun`` (one node or several)::

    torchrun --standalone --nproc_per_node 2 -m locallearn.cli train --data digits --rule local --epochs 3

and the Trainer (``train``, ``compare``, the Python API) joins torchrun's process group
(gloo for CPU nets, NCCL for CUDA nets, one GPU per process: ``cuda:LOCAL_RANK``) and:

* **Data.** Every process draws the same seeded global batches (the in-memory order of
  ``TensorBatches``, or the loader's batches) and trains on its contiguous slice of each
  (``torch.tensor_split``: rank r takes the r-th of ``world_size`` near-equal pieces). So N
  processes see exactly the global batches of one process.
* **Gradients.** After each stage's backward (under a local rule, while the next stage
  computes; under a global rule such as ``e2e``, once after the single backward) the stage's
  gradients are averaged across the processes with one asynchronous all-reduce per stage,
  weighted by shard size: ``g = sum_r n_r g_r / sum_r n_r``. For a loss that is a mean over
  samples this is exactly the gradient of the whole global batch, also when the batch does
  not split evenly; the optimisers step on the same gradients from the same parameters, so
  every process keeps the same parameters as one process on the global batches.
* **Watchdog.** Every rank beats in torchrun's store; a rank stopped, frozen or killed is named in
  one line within ``LOCALLEARN_STALL_S`` seconds (default 5; ``locallearn.watchdog``) and the job
  stops, instead of waiting for gloo's 300 s timeout.
* **Writing.** Only rank 0 writes results and checkpoints; every rank evaluates the same
  net (rank 0's buffers are copied to every rank after each epoch), so they agree. A
  resumed run (every rank loads the same checkpoint) continues exactly, with any number of
  processes.

Why an all-reduce per stage through a hook in ``locallearn.engine.run_stages`` rather than
``DistributedDataParallel`` per stage: DDP syncs inside the forward/backward of the module it
wraps, but ``run_stages`` calls each stage's block and head apart (the rules read the block's
input and output), so every stage would need its own wrapper called in a new way; DDP averages
with equal weights, so an uneven batch would not give the global batch's gradient; and the hook
is a few lines in the one place every path goes through, so the Trainer, every data-parallel
schedule and a hand-written ``locallearn.backward`` loop share it.

Schedules: ``simultaneous``, ``sequential`` and ``freezeout`` train data-parallel (every update
is a ``train_step`` on a global batch; a feature cache is the same on every rank). ``decoupled``
is refused: its replay buffers hold the outputs of each process's own training passes, so the
replicas would train on different data with no global batch to match. ``pipeline`` keeps its own
meaning under torchrun (the ranks are its stage groups); stage groups x data replicas is not
implemented: it needs a 2-D grid of process groups (a pipeline per replica, an all-reduce group
per stage) that the pipeline's point-to-point workers do not have.

Not the same as one process: rules whose loss couples the samples of a batch (``predsim``'s
similarity matching, HSIC-based rules, BatchNorm in training mode) see only their shard, as
under ``DistributedDataParallel``; dropout masks are drawn per shard. The reported training
loss is rank 0's shard's. NCCL on GPUs is the same code path but has not been run here
(no GPU in the session that wrote this).

In your own loop::

    dp = DataParallel(net)  # after locallearn.prepare, before the optimiser; needs the process group
    for x, y in global_batches:
        x, y, _ = dp.shard(x, y)
        opt.zero_grad()
        locallearn.backward(net, x, y, rule, grad_sync=dp.grad_sync)
        opt.step()
    dp.end_epoch()  # after each epoch: rank 0's buffers (BatchNorm statistics) to every process

Example (one process: a world of size 1, gloo on a local file store):
    >>> import os, tempfile, torch, torch.distributed as dist
    >>> import locallearn as ll
    >>> store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
    >>> dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    >>> net = ll.build_mlp((4,), (8, 8), 3)
    >>> dp = DataParallel(net)
    >>> x, y, _ = dp.shard(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
    >>> step = ll.backward(net, x, y, "local", grad_sync=dp.grad_sync)
    >>> dp.describe()["world_size"], [entry["stages"] for entry in dp.grad_sync.stats()]
    (1, [[0], [1]])
    >>> dist.destroy_process_group()
"""

from __future__ import annotations

import atexit
import os
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from locallearn._params import check_choice
from locallearn.net import LocalNet
from locallearn.watchdog import start_watchdog

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR")


def launched() -> bool:
    """True in a process that ``torchrun`` started or inside an initialised process group."""
    if not dist.is_available():
        return False
    return dist.is_initialized() or all(key in os.environ for key in TORCHRUN_VARIABLES)


def is_writer() -> bool:
    """True where results and checkpoints are written: rank 0, or any process outside a process group."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def process_device(device: torch.device) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA device given without an index."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def join_process_group(device: torch.device, *, timeout_s: float = 300.0) -> None:
    """Join torchrun's process group (``env://``) unless already in one: gloo for CPU, NCCL for CUDA."""
    if dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s))
    atexit.register(_leave)
    if "MASTER_PORT" in os.environ:  # torchrun's store: a stalled or dead rank is named within seconds
        start_watchdog(rank=dist.get_rank(), world_size=dist.get_world_size())


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wanted(schedule: Any) -> bool:
    """True if this process should train data-parallel with ``schedule``; a clear error if it cannot."""
    if not launched() or schedule.owns_process_group:
        return False
    schedule.check_data_parallel()
    return True


def start(net: LocalNet, source: Any, device: torch.device) -> "DataParallel":
    """Join torchrun's process group and return this process's ``DataParallel`` for ``net`` fed by ``source``."""
    sampler = getattr(getattr(source, "loader", None), "sampler", None)
    if isinstance(sampler, torch.utils.data.DistributedSampler):
        raise ValueError(
            "The training loader has a DistributedSampler, but locallearn shards each global batch itself under "
            "torchrun; give every process the same loader of global batches (e.g. locallearn.data.SeededSampler)."
        )
    join_process_group(device)
    world = dist.get_world_size()
    sizes = source.batch_sizes() if hasattr(source, "x") else []
    if sizes and min(sizes) < world:
        raise ValueError(
            f"The last training batch has {min(sizes)} samples, fewer than the {world} processes; choose a batch size "
            f"whose last batch (training samples modulo the batch size, if not 0) is >= {world}."
        )
    return DataParallel(net)


class GradientAverager:
    """Averages each stage's gradients over the processes, one asynchronous all-reduce per call.

    ``stage_done(stages, n)`` packs the stages' gradients times ``n`` and ``n`` itself into one
    buffer and starts a summing all-reduce; ``wait()`` finishes them in order and writes
    ``sum_r n_r g_r / sum_r n_r`` back into every gradient. Parameters without a gradient are
    left alone (every process must give gradients to the same parameters, as under DDP).
    With ``overlap=False`` each all-reduce is waited for at once (to time it alone).
    """

    def __init__(self, net: LocalNet, *, group: Any = None, overlap: bool = True) -> None:
        self.net, self.group = net, group
        self.overlap = check_choice(overlap, name="overlap", owner="GradientAverager", choices=(True, False))
        self._pending: list[tuple[tuple[int, ...], Any, torch.Tensor, list[torch.Tensor], float]] = []
        self._stats: dict[tuple[int, ...], dict[str, float]] = {}

    def stage_done(self, stages: list[int], batch_size: int) -> None:
        grads = [p.grad for k in stages for p in self.net.stages[k].parameters() if p.grad is not None]
        if not grads:
            return
        start = time.perf_counter()
        dtype = grads[0].dtype
        for g in grads[1:]:
            dtype = torch.promote_types(dtype, g.dtype)
        count = torch.tensor([float(batch_size)], dtype=dtype, device=grads[0].device)
        flat = torch.cat([g.reshape(-1).to(dtype) for g in grads] + [count.new_ones(1)]).mul_(count)
        work = dist.all_reduce(flat, group=self.group, async_op=True)
        self._pending.append((tuple(stages), work, flat, grads, time.perf_counter() - start))
        if not self.overlap:
            self.wait()

    def wait(self) -> None:
        for stages, work, flat, grads, issue_s in self._pending:
            start = time.perf_counter()
            work.wait()
            flat = flat[:-1] / flat[-1]
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
            entry = self._stats.setdefault(stages, {"issue_s": 0.0, "wait_s": 0.0, "calls": 0, "bytes": 0})
            entry["issue_s"] += issue_s
            entry["wait_s"] += time.perf_counter() - start
            entry["calls"] += 1
            entry["bytes"] += (flat.numel() + 1) * flat.element_size()
        self._pending.clear()

    def stats(self, *, reset: bool = False) -> list[dict[str, Any]]:
        """Per all-reduce site (its stages, 0-based): seconds to pack and start (``issue_s``),
        seconds blocked waiting for it (``wait_s``; with ``overlap=False`` its whole time),
        number of all-reduces and bytes sent, since the last reset."""
        out = [{"stages": list(stages), **entry} for stages, entry in sorted(self._stats.items())]
        if reset:
            self._stats = {}
        return out


class DataParallel:
    """This process's part of a data-parallel run: its rank, the shard it trains, the gradient averager.

    Built on an initialised process group (``join_process_group``); copies rank 0's parameters and
    buffers to every process, so the replicas start equal even if each built its net differently.
    """

    def __init__(self, net: LocalNet, *, group: Any = None, overlap: bool = True) -> None:
        if not dist.is_initialized():
            raise ValueError(
                "DataParallel needs a torch.distributed process group; launch under torchrun and call "
                "locallearn.distributed.join_process_group(device) first (the Trainer does it itself)."
            )
        self.net, self.group = net, group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        self.grad_sync = GradientAverager(net, group=group, overlap=overlap)
        self.samples = 0  # samples this process has trained on
        self.broadcast_state()

    def shard(
        self, h: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """This rank's contiguous slice of a global batch ``(h, y[, x])``."""
        if len(y) < self.world_size:
            raise ValueError(
                f"A global batch of {len(y)} samples cannot give each of the {self.world_size} processes a sample; "
                f"use a batch size whose last batch (training samples modulo the batch size, if not 0) is >= {self.world_size}."
            )
        pick = lambda t: None if t is None else torch.tensor_split(t, self.world_size)[self.rank]  # noqa: E731
        h, y, x = pick(h), pick(y), pick(x)
        self.samples += len(y)
        return h, y, x

    @torch.no_grad()
    def broadcast_state(self, *, parameters: bool = True) -> None:
        """Copy rank 0's buffers (and parameters) to every process."""
        tensors = list(self.net.buffers()) + (list(self.net.parameters()) if parameters else [])
        source = 0 if self.group is None else dist.get_global_rank(self.group, 0)
        for tensor in tensors:
            dist.broadcast(tensor.data, src=source, group=self.group)

    def end_epoch(self) -> dict[str, Any]:
        """Copy rank 0's buffers to every process; return the epoch's samples on this process and its
        all-reduce times (both reset for the next epoch)."""
        self.broadcast_state(parameters=False)
        stats = {"process_samples": self.samples, "grad_sync": self.grad_sync.stats(reset=True)}
        self.samples = 0
        return stats

    def describe(self) -> dict[str, Any]:
        """What a results file records of the run's parallelism."""
        return {"world_size": self.world_size, "backend": self.backend, "shard": "contiguous slice of each global batch"}
