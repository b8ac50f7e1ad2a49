"""The worker side of the ``pipeline`` schedule: one epoch of one rank, and the process entry point.

Rank ``r`` owns a group of consecutive stages. Rank 0 reads the mini-batches; every
other rank receives the detached output of the rank below and its labels. Each rank
trains its own stages from their own heads (``train_step``) and sends the output of
its last stage and the labels on to rank ``r + 1``. Nothing is sent backward.

Receives are posted ``max_in_flight`` batches ahead and at most ``max_in_flight``
sends are outstanding, so communication overlaps compute and memory stays bounded.

A daemon thread stamps a shared heartbeat every ``HEARTBEAT_S`` seconds while the
process runs, so the parent sees a worker that is stopped (SIGSTOP) or frozen within
seconds instead of waiting for a peer's communication timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from locallearn import io
from locallearn.schedules.base import TrainState, epoch_losses, update_stages


@dataclasses.dataclass
class WorkerPlan:
    """What every rank of one pipeline epoch must agree on."""

    groups: list[list[int]]  # stage indices owned by each rank, in order
    batch_sizes: list[int]  # size of every batch of the epoch, in order (rank 0 reads them)
    input_shape: tuple[int, ...]  # shape of one network input, without the batch
    threads: int  # torch intra-op threads per worker
    max_in_flight: int  # batches posted ahead on receive / outstanding on send
    timeout_s: float  # bound on every collective and on the rendezvous


HEARTBEAT_S = 0.5  # seconds between two stamps of a worker's heartbeat

#: Phases in which a worker waits on its peers: an error there is more often a peer's fault than its own.
COMMUNICATION_PHASES = ("rendezvous", "receive", "send", "barrier")


@dataclasses.dataclass
class Progress:
    """Where a worker is, for the error message when it fails."""

    batch: int = -1
    phase: str = "starting"  # starting | rendezvous | receive | compute | send | finishing | barrier


def store_key(event: str, rank: int) -> str:
    """The store key a worker sets on ``event``: "started" (reached the store), "joined" (the group)."""
    return f"locallearn/{event}/{rank}"


def group_name(stages: list[int]) -> str:
    """The stages (0-based indices) in words, numbered from 1 as everywhere in messages: ``"stage 3"``, ``"stages 1-2"``.

    Example:
        >>> group_name([2]), group_name([0, 1])
        ('stage 3', 'stages 1-2')
    """
    return f"stage {stages[0] + 1}" if len(stages) == 1 else f"stages {stages[0] + 1}-{stages[-1] + 1}"


def batch_name(batch: int) -> str:
    """A 0-based batch index in words, numbered from 1: ``"batch 1"``, or ``"before its first batch"``."""
    return "before its first batch" if batch < 0 else f"batch {batch + 1}"


@torch.no_grad()
def _boundary(state: TrainState, plan_input_shape: tuple[int, ...], first_stage: int, device: torch.device) -> tuple[tuple[int, ...], torch.dtype]:
    """Shape (without batch) and dtype of the input of ``first_stage``, probed in eval mode under the run's
    autocast, as training computes it (under ``amp`` a stage's output is bfloat16 or float16, not float32)."""
    h = torch.zeros((2, *plan_input_shape), device=device)
    autocast = (torch.autocast(device.type, dtype=state.autocast_dtype) if state.autocast_dtype is not None
                else contextlib.nullcontext())
    for stage in state.net.stages[:first_stage]:
        was_training = stage.training
        stage.eval()
        with autocast:
            h = stage.block(h)
        stage.train(was_training)
    return tuple(h.shape[1:]), h.dtype


def run_epoch(state: TrainState, plan: WorkerPlan, rank: int, progress: Progress) -> dict[str, Any]:
    """Train this rank's stages for one epoch inside an initialised process group; return its stats."""
    stages = plan.groups[rank]
    last_rank = len(plan.groups) - 1
    device = next(state.net.parameters()).device
    sizes = plan.batch_sizes
    mine = dataclasses.replace(state, on_batch=None)  # per-update events belong to the trainer's process
    losses: list[list[torch.Tensor | float]] = []
    compute_s = receive_s = send_s = 0.0
    limit = timedelta(seconds=plan.timeout_s)  # no wait on another worker is unbounded

    if rank < last_rank:  # what the next rank posts its receives for: every send must match it exactly
        sent_shape, sent_dtype = _boundary(state, plan.input_shape, plan.groups[rank + 1][0], device)
    if rank == 0:
        source = state.train_batches()
    else:
        shape, dtype = _boundary(state, plan.input_shape, stages[0], device)
        posted: deque = deque()

        def post(i: int) -> None:
            h = torch.empty((sizes[i], *shape), dtype=dtype, device=device)
            y = torch.empty(sizes[i], dtype=torch.long, device=device)
            posted.append((h, y, dist.irecv(h, src=rank - 1, tag=0), dist.irecv(y, src=rank - 1, tag=1)))

        for i in range(min(plan.max_in_flight, len(sizes))):
            post(i)
    sending: deque = deque()
    start = time.perf_counter()
    for i in range(len(sizes)):
        progress.batch = i
        if rank == 0:
            h, y = next(source)
            if len(h) != sizes[i]:
                raise RuntimeError(f"Batch {i} of the training data has {len(h)} samples; the plan says {sizes[i]}.")
        else:
            progress.phase = "receive"
            t = time.perf_counter()
            h, y, wait_h, wait_y = posted.popleft()
            wait_h.wait(limit)
            wait_y.wait(limit)
            receive_s += time.perf_counter() - t
            if i + plan.max_in_flight < len(sizes):
                post(i + plan.max_in_flight)
        progress.phase = "compute"
        t = time.perf_counter()
        result = update_stages(mine, h, y, stages)
        losses.append(result.losses)
        compute_s += time.perf_counter() - t
        if rank < last_rank:
            progress.phase = "send"
            t = time.perf_counter()
            out = result.outputs[-1].contiguous()
            if out.dtype != sent_dtype or tuple(out.shape[1:]) != sent_shape:
                raise RuntimeError(f"the output of {group_name(stages[-1:])} is {out.dtype} of shape {tuple(out.shape[1:])} "
                                   f"but the next worker expects {sent_dtype} of shape {sent_shape}")
            sending.append((out, y, dist.isend(out, dst=rank + 1, tag=0), dist.isend(y, dst=rank + 1, tag=1)))
            while len(sending) > plan.max_in_flight:
                for request in sending.popleft()[2:]:
                    request.wait(limit)
            send_s += time.perf_counter() - t
    progress.phase = "send"
    t = time.perf_counter()
    for item in sending:
        for request in item[2:]:
            request.wait(limit)
    send_s += time.perf_counter() - t
    wall_s = time.perf_counter() - start
    progress.phase = "finishing"
    columns = list(zip(*epoch_losses(state, losses, first_stages=[stages[0]] * len(losses))))
    return {
        "stages": stages,
        "train_loss": [float(sum(c) / len(c)) for c in columns],
        "samples": sum(plan.batch_sizes),
        "wall_s": wall_s,
        "compute_s": compute_s,
        "idle_s": receive_s,
        "send_wait_s": send_s,
        "samples_per_s": sum(plan.batch_sizes) / wall_s if wall_s > 0 else float("nan"),
    }


def stage_states(state: TrainState, stages: list[int]) -> dict[str, Any]:
    """The parameters, buffers and optimiser states of ``stages``, as a worker sends them back."""
    return {
        "stages": {k: state.net.stages[k].state_dict() for k in stages},
        "optimizers": {k: None if state.optimizers[k] is None else state.optimizers[k].state_dict() for k in stages},
    }


def load_stages(state: TrainState, report: dict[str, Any]) -> None:
    """Copy the stages' parameters, buffers and optimiser states a worker sent back into the net."""
    for k, weights in report["stages"].items():
        state.net.stages[int(k)].load_state_dict(weights)
    for k, optimizer_state in report["optimizers"].items():
        if optimizer_state is not None:
            state.optimizers[int(k)].load_state_dict(optimizer_state)


def summarise(per_worker: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch record's entries from every worker's stats, in stage order."""
    return {
        "train_loss": [loss for stats in per_worker for loss in stats["train_loss"]],
        "worker_stages": [stats["stages"] for stats in per_worker],
        **{f"worker_{key}": [stats[key] for stats in per_worker] for key in ("samples_per_s", "idle_s", "send_wait_s", "compute_s", "wall_s")},
    }


def seed_worker(state: TrainState, rank: int) -> None:
    """Seed this rank's dropout from the run's seed, the epoch and the rank."""
    torch.manual_seed(state.seed * 1_000_003 + state.epoch * 1_009 + rank + 1)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so no worker is ever orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_heartbeat(beat: Any) -> Callable[[], None]:
    """Stamp ``beat.value`` with ``time.monotonic()`` (one clock for every process) every ``HEARTBEAT_S``
    from a daemon thread, which stops with the process (or when the process is stopped). Returns
    ``finish``: stop stamping and set ``beat.value`` to ``inf``, "done, never stalled" (a process
    that has done its work may take seconds to exit: under spawn, interpreter shutdown)."""
    done = threading.Event()

    def stamp() -> None:
        while not done.is_set():
            beat.value = time.monotonic()
            done.wait(HEARTBEAT_S)

    thread = threading.Thread(target=stamp, name="locallearn-heartbeat", daemon=True)
    thread.start()

    def finish() -> None:
        done.set()
        thread.join()
        beat.value = math.inf

    return finish


def worker_main(
    plugins: tuple[str, ...],
    rank: int,
    state: TrainState,
    plan: WorkerPlan,
    port: Connection,
    parent: int,
    backend: str,
    result_dir: str,
    heartbeat: Any,
) -> None:
    """Process entry point: join the group, run one epoch, write the stages' states or the error.

    ``plugins`` are the plugins this worker loaded (``locallearn.plugins.PluginsFirst`` in the
    parent: a spawned worker loads them before it unpickles ``state``, whose rule may be theirs).
    The rendezvous port arrives on ``port`` once every worker has started (the parent opens its
    store only after forking, so no store thread is ever copied into a worker). ``heartbeat`` is
    a shared double the worker stamps while it runs (see :func:`start_heartbeat`)."""
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    finish = start_heartbeat(heartbeat)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops every worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's handler, inherited through fork
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(plan.threads)
    progress = Progress()
    out = Path(result_dir)
    try:
        timeout = timedelta(seconds=plan.timeout_s)
        world = len(plan.groups)
        if not port.poll(plan.timeout_s):
            raise TimeoutError(f"no rendezvous port from the parent within {plan.timeout_s} s")
        progress.phase = "rendezvous"
        store = dist.TCPStore("127.0.0.1", port.recv(), world, False, timeout=timeout)
        store.set(store_key("started", rank), "1")
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
        store.set(store_key("joined", rank), "1")
        progress.phase = "starting"
        seed_worker(state, rank)
        stats = run_epoch(state, plan, rank, progress)
        stages = plan.groups[rank]
        payload = {**stage_states(state, stages), "stats": stats}
        io.save_checkpoint(out / f"worker{rank}.pt", payload)
        progress.phase = "barrier"
        if backend == "gloo":
            dist.monitored_barrier(timeout=timeout)  # names a rank that never arrives
        else:
            dist.barrier()
        dist.destroy_process_group()
        finish()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # as a forked worker does: a spawned one's interpreter shutdown took seconds
    except BaseException as error:  # report anything, then exit non-zero
        io.write_json(
            out / f"worker{rank}.error.json",
            {
                "rank": rank,
                "batch": progress.batch,
                "phase": progress.phase,
                "type": type(error).__name__,
                "message": str(error),
                "traceback": traceback.format_exc(),
            },
        )
        sys.stdout.flush()
        os._exit(1)


def read_error(result_dir: str, rank: int) -> dict[str, Any] | None:
    """The error a worker reported, or ``None`` when it wrote none (it was killed)."""
    path = Path(result_dir) / f"worker{rank}.error.json"
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)
