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

Stages are split into ``workers`` contiguous groups of (nearly) equal count; balance
the stages' costs (FLOPs) when building the net, the slowest group sets the pace.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import tempfile
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from locallearn import io
from locallearn._params import check_choice, check_number
from locallearn.data.batches import TensorBatches
from locallearn.distributed import launched as launched_by_torchrun
from locallearn.plugins import PluginsFirst
from locallearn.rules.base import LocalRule
from locallearn.schedules import _pipeline_worker as worker
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState
from locallearn.watchdog import start_watchdog


#: The shortest ``timeout_s``: starting the workers and their rendezvous alone take a good part of a second.
MIN_TIMEOUT_S = 1.0


class PipelineWorkerError(RuntimeError):
    """A pipeline worker raised, died or timed out; the message names its stages and the cause."""


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
        plan = self._plan(state, workers)
        method = self.start_method
        if method == "auto":
            method = "fork" if backend == "gloo" and "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = torch.multiprocessing.get_context(method)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="locallearn-pipeline-") as result_dir:
            processes: list = []
            heartbeats = [context.Value("d", 0.0, lock=False) for _ in range(workers)]
            store = None
            try:
                ports = []
                for rank in range(workers):
                    mine = dataclasses.replace(state, on_batch=None)  # the trainer's callbacks stay in this process
                    if rank > 0 and method == "spawn":  # only rank 0 reads the data
                        mine = dataclasses.replace(mine, source=None, x_train=torch.zeros(1), y_train=torch.zeros(1))
                    receive, send = context.Pipe(duplex=False)
                    process = context.Process(
                        target=worker.worker_main,
                        # PluginsFirst: a spawned worker loads the run's plugins before it unpickles the state
                        args=(PluginsFirst(), rank, mine, plan, receive, os.getpid(), backend, result_dir, heartbeats[rank]),
                        name=f"locallearn-pipeline-{rank}",
                        daemon=True,
                    )
                    processes.append(process)
                    process.start()
                    ports.append(send)
                store = loopback_store(timedelta(seconds=self.timeout_s))
                for send in ports:
                    try:
                        send.send(store.port)
                    except OSError:  # that worker is gone already (BrokenPipeError): the watch names it
                        pass
                failure = self._watch(processes, heartbeats, plan, state.epoch, result_dir, store)
                if failure is not None:
                    raise failure
            finally:
                _stop(processes)
                store = None  # stops its server thread now, even when a failure's traceback keeps this frame
            reports = [io.load_checkpoint(os.path.join(result_dir, f"worker{rank}.pt")) for rank in range(workers)]
        for report in reports:
            _load_stages(state, report)
        stats = _summarise([report["stats"] for report in reports])
        stats["overhead_s"] = time.perf_counter() - start - max(stats["worker_wall_s"])
        return stats

    def _watch(
        self, processes: list, heartbeats: list, plan: worker.WorkerPlan, epoch: int, result_dir: str, store: dist.Store
    ) -> PipelineWorkerError | None:
        """Wait for every worker; on the first failure, return the most telling error among those that failed.

        A worker whose heartbeat has stopped for ``stall_s`` is a failure, and so is one that has not
        joined the process group ``timeout_s`` after the start (its peers' own timeouts only start once
        it has joined)."""
        running = {p.sentinel: rank for rank, p in enumerate(processes)}
        deadline = time.monotonic() + self.timeout_s
        joining = True
        while running:
            ready = multiprocessing.connection.wait(list(running), timeout=worker.HEARTBEAT_S)
            stalled = self._stalled(processes, heartbeats, plan, epoch, set(running.values()))
            if stalled is not None:
                return stalled
            if joining and not ready:
                joining = not all(store.check([worker.store_key("joined", r)]) for r in range(len(processes)))
                if joining and time.monotonic() > deadline:  # a rank stuck before the rendezvous: name it
                    stuck = [r for r in range(len(processes)) if not store.check([worker.store_key("started", r)])]
                    stuck = stuck or [r for r in range(len(processes)) if not store.check([worker.store_key("joined", r)])]
                    names = ", ".join(f"{r} ({worker.group_name(plan.groups[r])})" for r in stuck)
                    return PipelineWorkerError(
                        f"Pipeline rank {names} did not join the process group within {self.timeout_s} s "
                        f"at epoch {epoch + 1}; it is stuck before its first batch."
                    )
            failed = []
            for sentinel in ready:
                rank = running.pop(sentinel)
                processes[rank].join()
                if processes[rank].exitcode != 0:
                    failed.append(rank)
            if failed:
                time.sleep(0.2)  # let a peer that broke on the same fault report too
                failed += [r for s, r in list(running.items()) if processes[r].exitcode not in (None, 0)]
                return _worker_error(failed, processes, plan, epoch, result_dir)
        return None

    def _stalled(
        self, processes: list, heartbeats: list, plan: worker.WorkerPlan, epoch: int, running: set[int]
    ) -> PipelineWorkerError | None:
        """The error for the first running worker whose heartbeat, once started, is ``stall_s`` old."""
        now = time.monotonic()
        for rank in sorted(running):
            last = heartbeats[rank].value
            if last and now - last > self.stall_s and processes[rank].exitcode is None:
                return PipelineWorkerError(
                    f"Pipeline rank {rank} ({worker.group_name(plan.groups[rank])}) stalled during epoch {epoch + 1}: "
                    f"no heartbeat for {now - last:.1f} s{_process_state(processes[rank].pid)}."
                )
        return None

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
                f"{worker.batch_name(progress.batch)} ({progress.phase}): {type(error).__name__}: {_first_line(str(error))}"
            ) from error
        torch.set_rng_state(rng)
        for owner, stages in enumerate(plan.groups):
            payload = [_stage_states(state, stages)] if owner == rank else [None]
            dist.broadcast_object_list(payload, src=owner)
            if owner != rank:
                _load_stages(state, payload[0])
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, mine)
        stats = _summarise(everyone)
        stats["overhead_s"] = time.perf_counter() - start - max(stats["worker_wall_s"])
        return stats


def loopback_store(timeout: timedelta) -> dist.TCPStore:
    """A rendezvous store listening on 127.0.0.1 only (``TCPStore`` itself listens on every interface,
    whatever host it is given): the socket is bound here and handed over as ``master_listen_fd``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    fd = sock.detach()  # the store owns the descriptor from here and closes it
    return dist.TCPStore("127.0.0.1", 0, None, True, timeout=timeout, wait_for_workers=False, master_listen_fd=fd)


def _stage_states(state: TrainState, stages: list[int]) -> dict[str, Any]:
    return {
        "stages": {k: state.net.stages[k].state_dict() for k in stages},
        "optimizers": {k: None if state.optimizers[k] is None else state.optimizers[k].state_dict() for k in stages},
    }


def _load_stages(state: TrainState, report: dict[str, Any]) -> None:
    """Copy the stages' parameters, buffers and optimiser states a worker sent back into the net."""
    for k, weights in report["stages"].items():
        state.net.stages[int(k)].load_state_dict(weights)
    for k, optimizer_state in report["optimizers"].items():
        if optimizer_state is not None:
            state.optimizers[int(k)].load_state_dict(optimizer_state)


def _summarise(per_worker: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch record's entries from every worker's stats, in stage order."""
    return {
        "train_loss": [loss for stats in per_worker for loss in stats["train_loss"]],
        "worker_stages": [stats["stages"] for stats in per_worker],
        **{f"worker_{key}": [stats[key] for stats in per_worker] for key in ("samples_per_s", "idle_s", "send_wait_s", "compute_s", "wall_s")},
    }


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _process_state(pid: int | None) -> str:
    """``" (its process is stopped, e.g. by SIGSTOP)"`` when Linux says so, else nothing."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
    return " (its process is stopped, e.g. by SIGSTOP)" if state in ("T", "t") else ""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _worker_error(failed: list[int], processes: list, plan: worker.WorkerPlan, epoch: int, result_dir: str) -> PipelineWorkerError:
    """One error for the failure, naming the root cause rather than its echo: a worker's own fault, then
    a worker that died without a report (killed), then a worker whose link to a peer broke (the peer
    died or stalled: a killed worker 0 surfaces in worker 1 as "Connection reset by peer")."""

    def rank_of_cause(rank: int) -> int:
        report = worker.read_error(result_dir, rank)
        if report is None:
            return 1
        return 2 if report["phase"] in worker.COMMUNICATION_PHASES else 0

    rank = min(failed, key=lambda r: (rank_of_cause(r), r))
    name = worker.group_name(plan.groups[rank])
    report = worker.read_error(result_dir, rank)
    if report is None:
        error = PipelineWorkerError(
            f"Pipeline rank {rank} ({name}) died during epoch {epoch + 1}: {_describe_exit(processes[rank].exitcode)}."
        )
    else:
        error = PipelineWorkerError(
            f"Pipeline rank {rank} ({name}) failed at epoch {epoch + 1}, {worker.batch_name(report['batch'])} ({report['phase']}): "
            f"{report['type']}: {_first_line(report['message'])}"
        )
        error.add_note(f"Traceback in worker {rank}:\n{report['traceback']}")
    return error


def _stop(processes: list) -> None:
    """Terminate and reap every worker still running (SIGTERM, then SIGKILL after a grace period)."""
    processes = [p for p in processes if p.pid is not None]  # a Ctrl-C may come between creating and starting
    for process in processes:
        if process.is_alive():
            process.terminate()
            try:
                os.kill(process.pid, signal.SIGCONT)  # a stopped worker acts on SIGTERM only once continued
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
