"""One provenance block for every results store: what made a set of records, on what, and under which load.

Example:
    >>> block = provenance("locallearn compare --rules local")
    >>> sorted(block)
    ['command', 'date', 'git', 'load_start', 'machine', 'version']
    >>> len(load_average())
    3
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import locallearn
from locallearn import io


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (as ``uptime`` shows them)."""
    return [round(v, 2) for v in os.getloadavg()]


def now() -> str:
    """The local date and time, as the provenance blocks write it."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


def git_revision() -> dict[str, Any]:
    """HEAD's commit and whether the package's tracked files differ from it (``{"commit": None}`` outside git)."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent)

    try:
        head = git("rev-parse", "HEAD")
    except OSError:  # no git installed
        return {"commit": None}
    if head.returncode != 0:
        return {"commit": None}
    return {"commit": head.stdout.strip(), "package_modified": git("diff", "--quiet", "HEAD", "--", ".").returncode != 0}


def provenance(command: str, **fields: Any) -> dict[str, Any]:
    """An invocation's provenance: its command (and ``fields``, such as its settings), the package version, the git
    commit, the machine, the date and the load at the start (add ``load_end`` and ``finished`` with :func:`finish`)."""
    return {"command": command, **fields, "version": locallearn.__version__, "git": git_revision(),
            "machine": io.machine(), "date": now(), "load_start": load_average()}


def finish() -> dict[str, Any]:
    """The fields that close an invocation's provenance: the load and the time at its end."""
    return {"load_end": load_average(), "finished": now()}
