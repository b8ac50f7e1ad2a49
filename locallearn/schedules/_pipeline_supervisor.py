"""The process supervisor of the ``pipeline`` schedule: the Trainer's process starts one worker process
per stage group, hands them the rendezvous port, watches their exits and heartbeats, names the root
cause when one fails (its own fault, then a death without a word, then a broken link to a peer),
stops and reaps them all, and loads the stages' states they send back.

Example:
    >>> import torch.distributed as dist
    >>> from datetime import timedelta
    >>> store = loopback_store(timedelta(seconds=5))
    >>> store.port > 0
    True
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
from locallearn.plugins import PluginsFirst
from locallearn.schedules import _pipeline_worker as worker
from locallearn.schedules.base import TrainState


class PipelineWorkerError(RuntimeError):
    """A pipeline worker raised, died or timed out; the message names its stages and the cause."""


class Supervisor:
    """Runs pipeline epochs in child processes: ``timeout_s`` bounds the rendezvous (a worker that has not
    joined by then is named as stuck), ``stall_s`` the silence of a worker's heartbeat."""

    def __init__(self, *, timeout_s: float, stall_s: float) -> None:
        self.timeout_s, self.stall_s = timeout_s, stall_s

    def run_epoch(self, state: TrainState, plan: worker.WorkerPlan, backend: str, method: str) -> dict[str, Any]:
        """One epoch in ``len(plan.groups)`` worker processes started with ``method``; the stages' states
        come back into ``state``'s net and optimisers, and the epoch's stats are returned."""
        workers = len(plan.groups)
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
                failure = self.watch(processes, heartbeats, plan, state.epoch, result_dir, store)
                if failure is not None:
                    raise failure
            finally:
                stop(processes)
                store = None  # stops its server thread now, even when a failure's traceback keeps this frame
            reports = [io.load_checkpoint(os.path.join(result_dir, f"worker{rank}.pt")) for rank in range(workers)]
        for report in reports:
            worker.load_stages(state, report)
        stats = worker.summarise([report["stats"] for report in reports])
        stats["overhead_s"] = time.perf_counter() - start - max(stats["worker_wall_s"])
        return stats

    def watch(
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
            stalled = self.stalled(processes, heartbeats, plan, epoch, set(running.values()))
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
                return worker_error(failed, processes, plan, epoch, result_dir)
        return None

    def stalled(
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


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def worker_error(failed: list[int], processes: list, plan: worker.WorkerPlan, epoch: int, result_dir: str) -> PipelineWorkerError:
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
            f"{report['type']}: {first_line(report['message'])}"
        )
        error.add_note(f"Traceback in worker {rank}:\n{report['traceback']}")
    return error


def stop(processes: list) -> None:
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
