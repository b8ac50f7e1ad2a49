"""``pipeline``: one OS process per stage (or group of stages) over ``torch.distributed``.

Rank ``r`` owns a group of consecutive stages. Rank 0 reads the mini-batches; each
rank trains its stages from their own heads and sends the detached output of its
last stage, with the labels, to rank ``r + 1`` (``isend``/``irecv`` with a bounded
number of batches in flight). Nothing is ever sent backward, so the ranks run
concurrently: a true pipeline of local learners. The backend is gloo for CPU
tensors and NCCL for CUDA (one GPU per worker); workers meet on 127.0.0.1 only.

Stage ``k + 1`` trains on the output stage ``k`` computed for the same batch before
its own update, which is what ``simultaneous`` does: without dropout the pipeline
gives the same parameters (with one thread per worker, bitwise), so it changes the
speed, not the result. With dropout only the masks differ (each worker seeds its own).

**How it fits the Trainer unchanged.** ``train_epoch`` runs one whole epoch across
the workers and then gathers every stage's parameters, buffers and optimiser state
back into the ordinary ``LocalNet`` and optimisers. The Trainer therefore evaluates,
checkpoints, steps LR schedules and calls callbacks after every epoch exactly as for
any other schedule, a resumed run continues from an ordinary checkpoint, and an
epoch that fails leaves the previous epoch's checkpoint untouched. The price is a
fresh set of worker processes per epoch (forked on Linux, so it takes milliseconds
plus the rendezvous) and one copy of the parameters back per epoch.

**Two ways to launch.**

* From Python or ``locallearn train --schedule pipeline --schedule-opt workers=2``:
  the Trainer's process starts the workers itself (``multiprocessing``; the parent
  is not a rank) and watches them. A worker that raises or dies ends the epoch
  with :class:`PipelineWorkerError` naming its stages, the batch and the cause;
  the other workers are stopped and reaped (none is left behind, and a worker
  whose parent dies is killed by the kernel). When several fail, the error names
  the cause, not its echo: a worker's own fault first, then a worker that died
  without a word (killed), and only then a worker whose link to a peer broke.
  Every worker stamps a heartbeat from a thread; one silent for ``stall_s``
  seconds (stopped with SIGSTOP, frozen) is named as stalled. A worker that has
  not joined the process group after ``timeout_s`` is named as stuck. Ctrl-C
  stops every worker.
* Under ``torchrun --standalone --nproc-per-node N -m locallearn.cli train --schedule pipeline``:
  every process is a rank already; each trains its own group inline, then every
  rank receives every stage's state (``broadcast_object_list``), so each ends the
  epoch with the same full net and evaluates it. Every rank writes the same
  checkpoint and results (atomically). A failing rank makes torchrun stop the rest;
  a rank stopped or killed is named within ``stall_s`` by the watchdog
  (``locallearn.watchdog``: heartbeats in torchrun's store), and the collective
  timeout bounds any other wait.

The epoch record gets, per worker: ``worker_stages``, ``worker_samples_per_s``
(samples through the worker per second of its training loop), ``worker_idle_s``
(time blocked waiting to receive), ``worker_send_wait_s`` (time blocked because
``max_in_flight`` sends were outstanding), ``worker_compute_s``, ``worker_wall_s``;
and ``overhead_s``: the epoch's wall time outside the slowest worker's loop
(process start, rendezvous, gathering the states).

Where the parts live: this module is the schedule (options, the plan, the torchrun path);
``_pipeline_supervisor`` starts, watches and stops the worker processes; ``_pipeline_worker``
is one rank's epoch and the process entry point.

Stages are split into ``workers`` contiguous groups of (nearly) equal count; balance
the stages' costs (FLOPs) when building the net, the slowest group sets the pace.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from locallearn._params import check_choice, check_number
from locallearn.data.batches import TensorBatches
from locallearn.distributed import launched as launched_by_torchrun
from locallearn.schedules import _pipeline_worker as worker
from locallearn.schedules._pipeline_supervisor import PipelineWorkerError, Supervisor, first_line, loopback_store
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState
from locallearn.watchdog import start_watchdog

__all__ = ["MIN_TIMEOUT_S", "Pipeline", "PipelineWorkerError", "loopback_store", "split_stages"]


#: The shortest ``timeout_s``: starting the workers and their rendezvous alone take a good part of a second.
MIN_TIMEOUT_S = 1.0


def split_stages(num_stages: int, workers: int) -> list[list[int]]:
    """Consecutive groups of stage indices, as equal in count as possible (earlier groups get the extra).

    Example:
        >>> split_stages(5, 2)
        [[0, 1, 2], [3, 4]]
    """
    size, extra = divmod(num_stages, workers)
    groups, start = [], 0
    for g in range(workers):
        end = start + size + (1 if g < extra else 0)
        groups.append(list(range(start, end)))
        start = end
    return groups


@SCHEDULES.register("pipeline")
class Pipeline(Schedule):
    """Local learning as a multi-process pipeline: one worker per stage group, outputs sent forward only.

    Args:
        workers: number of processes (``None``: one per stage; under torchrun: the world size).
        threads: torch intra-op threads in each worker (1 by default: a worker per core).
        max_in_flight: batches a worker may have posted ahead on receive and outstanding on send.
        timeout_s: bound on the rendezvous and on every wait for another worker (at least 1 s).
        stall_s: a worker whose heartbeat (stamped every 0.5 s by a thread) stops for this long is
            reported as stalled and the epoch ends.
        start_method: ``"auto"`` (``fork`` for CPU nets on Linux, else ``spawn``), ``"fork"``
            or ``"spawn"``. ``spawn`` pickles the net, rule and optimisers to each worker.

    Source: Belilovsky, Eickenberg & Oyallon, ICML 2020 (DGL: local learners as parallel workers that only send forward; eugenium/DGL).

    Example:
        >>> from locallearn import data, build_mlp, Trainer, TrainConfig
        >>> ds = data.load("synthetic")
        >>> net = build_mlp(ds.input_shape, (16, 16), ds.num_classes)
        >>> trainer = Trainer(net, ds, schedule=Pipeline(workers=2), config=TrainConfig(epochs=1, progress=False))
        >>> record = trainer.fit().history[-1]
        >>> record["worker_stages"], len(record["test_accuracy"])
        ([[0], [1]], 2)
    """

    source = 'Belilovsky, Eickenberg & Oyallon, ICML 2020 (DGL: local learners as parallel workers that only send forward; eugenium/DGL)'

    owns_process_group = True  # under torchrun its ranks are the stage groups, not data replicas
    needs_local_rule = True
    carries_input = False  # a later worker receives only the features of the stage below
    carries_batch_transform = False  # a later worker must know each batch's size before receiving it
    batch_events = False  # the updates run in the workers: no per-update events in the trainer's process

    def __init__(
        self,
        *,
        workers: int | None = None,
        threads: int = 1,
        max_in_flight: int = 4,
        timeout_s: float = 60.0,
        stall_s: float = 5.0,
        start_method: str = "auto",
    ) -> None:
        owner = "Pipeline"
        if workers is not None:
            workers = check_number(workers, name="workers", owner=owner, low=1, integer=True)
        self.workers = workers
        self.threads = check_number(threads, name="threads", owner=owner, low=1, integer=True)
        self.max_in_flight = check_number(max_in_flight, name="max_in_flight", owner=owner, low=1, integer=True)
        self.timeout_s = check_number(timeout_s, name="timeout_s", owner=owner, low=MIN_TIMEOUT_S)
        self.stall_s = check_number(stall_s, name="stall_s", owner=owner, low=2 * worker.HEARTBEAT_S, low_inclusive=False)
        self.start_method = check_choice(start_method, name="start_method", owner=owner, choices=("auto", "fork", "spawn"))

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        if self.workers is not None and self.workers > num_stages:
            raise ValueError(
                f"The 'workers' parameter of Pipeline asks for {self.workers} workers but the network has only "
                f"{num_stages} stages; use at most one worker per stage."
            )
        return epochs

    def train_epoch(self, state: TrainState) -> list[int]:
        num_stages = len(state.net.stages)
        if launched_by_torchrun():
            stats = self._epoch_as_rank(state, num_stages)
        else:
            stats = self._epoch_with_children(state, num_stages)
        state.stats.update(stats)
        return list(range(num_stages))

    # -- the Trainer's process starts the workers ------------------------------------------------

    def _backend(self, state: TrainState, workers: int) -> str:
        device = next(state.net.parameters()).device
        if device.type == "cpu":
            return "gloo"
        if device.type == "cuda" and torch.cuda.device_count() >= workers:
            return "nccl"
        raise ValueError(
            f"The pipeline schedule runs on CPU (gloo) or on CUDA with one GPU per worker; the net is on "
            f"{device} and {workers} workers were asked for. Use device 'cpu' or fewer workers."
        )

    def _plan(self, state: TrainState, workers: int) -> worker.WorkerPlan:
        return worker.WorkerPlan(
            groups=split_stages(len(state.net.stages), workers),
            batch_sizes=state.source.batch_sizes(),
            input_shape=self._input_shape(state),
            threads=self.threads,
            max_in_flight=self.max_in_flight,
            timeout_s=self.timeout_s,
        )

    @staticmethod
    def _input_shape(state: TrainState) -> tuple[int, ...]:
        if isinstance(state.source, TensorBatches):
            return tuple(state.source.x.shape[1:])
        x, _ = next(iter(state.train_batches()))
        return tuple(x.shape[1:])

    def _epoch_with_children(self, state: TrainState, num_stages: int) -> dict[str, Any]:
        workers = self.workers or num_stages
        backend = self._backend(state, workers)
        method = self.start_method
        if method == "auto":
            method = "fork" if backend == "gloo" and "fork" in multiprocessing.get_all_start_methods() else "spawn"
        supervisor = Supervisor(timeout_s=self.timeout_s, stall_s=self.stall_s)
        return supervisor.run_epoch(state, self._plan(state, workers), backend, method)

    # -- this process is one rank of a torchrun job --------------------------------------------

    def _epoch_as_rank(self, state: TrainState, num_stages: int) -> dict[str, Any]:
        timeout = timedelta(seconds=self.timeout_s)
        if not dist.is_initialized():
            backend = "gloo" if next(state.net.parameters()).device.type == "cpu" else "nccl"
            dist.init_process_group(backend, timeout=timeout)
        rank, world = dist.get_rank(), dist.get_world_size()
        if "MASTER_PORT" in os.environ:  # torchrun's store: a stalled or dead rank named within stall_s
            start_watchdog(rank=rank, world_size=world, stall_s=self.stall_s)
        if self.workers is not None and self.workers != world:
            raise ValueError(f"The pipeline was asked for {self.workers} workers but torchrun started {world} processes.")
        if world > num_stages:
            raise ValueError(f"torchrun started {world} processes but the network has only {num_stages} stages.")
        plan = self._plan(state, world)
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        rng = torch.get_rng_state()
        worker.seed_worker(state, rank)
        progress = worker.Progress()
        try:
            mine = worker.run_epoch(state, plan, rank, progress)
        except Exception as error:
            raise PipelineWorkerError(
                f"Pipeline rank {rank} ({worker.group_name(plan.groups[rank])}) failed at epoch {state.epoch + 1}, "
                f"{worker.batch_name(progress.batch)} ({progress.phase}): {type(error).__name__}: {first_line(str(error))}"
            ) from error
        torch.set_rng_state(rng)
        for owner, stages in enumerate(plan.groups):
            payload = [worker.stage_states(state, stages)] if owner == rank else [None]
            dist.broadcast_object_list(payload, src=owner)
            if owner != rank:
                worker.load_stages(state, payload[0])
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, mine)
        stats = worker.summarise(everyone)
        stats["overhead_s"] = time.perf_counter() - start - max(stats["worker_wall_s"])
        return stats
