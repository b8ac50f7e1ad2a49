"""A heartbeat watchdog for the processes of a ``torchrun`` job: a stalled or dead rank is named within seconds.

Under ``torchrun`` a rank that is stopped (SIGSTOP), frozen or killed leaves the others blocked in a
collective until gloo's timeout (300 s by default) and then a raw traceback. Here every rank runs a
daemon thread that, every ``beat_s`` seconds, bumps its own counter in torchrun's store and reads
everyone else's; a rank whose counter has not moved for ``stall_s`` seconds is named in one line on
stderr and this process exits (status 3), so torchrun stops the whole job at once. The counters, not
clocks, are compared, so machines whose clocks differ agree.

``stall_s`` comes from the caller (the pipeline's ``stall_s``) or the environment variable
``LOCALLEARN_STALL_S`` (default 5 s; ``0`` turns the watchdog off).

Example (one process: a world of one has nobody to watch, so nothing starts):
    >>> start_watchdog(rank=0, world_size=1) is None
    True
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta
from typing import Any, Callable

#: Exit status of a process stopped by the watchdog.
STALL_EXIT = 3
DEFAULT_STALL_S = 5.0


def stall_seconds() -> float:
    """``LOCALLEARN_STALL_S`` (seconds, ``0``: off), else the default; a bad value is one line."""
    text = os.environ.get("LOCALLEARN_STALL_S", "")
    if not text:
        return DEFAULT_STALL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"LOCALLEARN_STALL_S must be a number of seconds >= 0 (0 turns the watchdog off); got {text!r}.")
    return value


def _torchrun_store(timeout_s: float) -> Any:
    """A client of torchrun's own store (MASTER_ADDR:MASTER_PORT), apart from the process group's."""
    import torch.distributed as dist

    return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), None, False,
                         timeout=timedelta(seconds=timeout_s))


class Watchdog:
    """The thread that beats for ``rank`` and watches the other ranks (see the module docstring)."""

    def __init__(self, store: Any, *, rank: int, world_size: int, stall_s: float, beat_s: float,
                 on_stall: Callable[[str], None], prefix: str = "locallearn/heartbeat") -> None:
        self.store, self.rank, self.world_size = store, rank, world_size
        self.stall_s, self.beat_s, self.on_stall = stall_s, beat_s, on_stall
        self.prefix = f"{prefix}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="locallearn-watchdog", daemon=True)

    def _key(self, rank: int) -> str:
        return f"{self.prefix}/{rank}"

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()

    def _run(self) -> None:
        beats = 0
        seen: dict[int, tuple[bytes | None, float]] = {r: (None, time.monotonic()) for r in range(self.world_size) if r != self.rank}
        while not self._done.is_set():
            beats += 1
            try:
                self.store.set(self._key(self.rank), str(beats))
                now = time.monotonic()
                for r, (last, since) in seen.items():
                    value = self.store.get(self._key(r)) if self.store.check([self._key(r)]) else None
                    if value != last:
                        seen[r] = (value, now)
                    elif now - since > self.stall_s:
                        what = "never beat" if last is None else f"no heartbeat for {now - since:.1f} s"
                        self.on_stall(f"rank {r} of {self.world_size} stalled or died ({what}; the watchdog's "
                                      f"limit is {self.stall_s:g} s, LOCALLEARN_STALL_S); rank {self.rank} stops the run.")
                        return
            except Exception as error:  # the store itself is gone: torchrun's agent stopped, the job is ending
                if not self._done.is_set():
                    self.on_stall(f"the job's store stopped answering ({type(error).__name__}); rank {self.rank} stops.")
                return
            self._done.wait(self.beat_s)


def _stop_process(message: str) -> None:
    print(f"locallearn: error: {message}", file=sys.stderr, flush=True)
    os._exit(STALL_EXIT)


def start_watchdog(*, rank: int, world_size: int, stall_s: float | None = None, beat_s: float = 0.5,
                   store: Any = None, on_stall: Callable[[str], None] = _stop_process) -> Watchdog | None:
    """Start this rank's watchdog (once per process); ``None`` for a world of one or ``stall_s == 0``."""
    global _RUNNING
    stall_s = stall_seconds() if stall_s is None else stall_s
    if world_size < 2 or stall_s == 0:
        return None
    if _RUNNING is not None:
        return _RUNNING
    if stall_s <= 2 * beat_s:
        raise ValueError(f"The watchdog's stall_s must be more than twice its beat ({beat_s} s); got {stall_s}.")
    store = store if store is not None else _torchrun_store(timeout_s=max(stall_s, 10.0))
    _RUNNING = Watchdog(store, rank=rank, world_size=world_size, stall_s=stall_s, beat_s=beat_s, on_stall=on_stall).start()
    return _RUNNING


_RUNNING: Watchdog | None = None
