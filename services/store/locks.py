"""Flow locks (table ``flow_locks``, W4: never two runs of the same flow at once) and process
liveness. A lock is taken in one transaction; one whose pid is dead is stale and taken over.
Within one process a row with this pid counts only while this process really holds the run or
lock (the held registry), so rows left by an earlier process with the same pid are stale too.
Design notes: docs/design/store.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services.core.errors import EXIT_BUSY, CredlyConsoleError
from services.store.db import Store, utcnow


class FlowBusyError(CredlyConsoleError):
    """Another live run holds the lock of this flow (W4)."""

    exit_code = EXIT_BUSY

    def __init__(self, flow: str, run_id: int | None, pid: int) -> None:
        self.flow, self.run_id, self.pid = flow, run_id, pid
        super().__init__(f"flow {flow} is already running (run {run_id}, process {pid})")


# -- process liveness ----------------------------------------------------------------------------


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # Linux: a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


# Runs and locks this process holds right now (any thread). Used to tell our own live rows from
# rows left behind by an earlier process that happened to have the same pid.
_HELD_LOCK = threading.Lock()
_HELD_RUNS: set[tuple[str, int]] = set()
_HELD_FLOWS: set[tuple[str, str]] = set()


def run_alive(store: Store, run_id: int | None, pid: int | None) -> bool:
    if pid == os.getpid():
        with _HELD_LOCK:
            return (str(store.path), int(run_id or 0)) in _HELD_RUNS
    return pid_alive(pid)


def hold_run(store: Store, run_id: int) -> None:
    """This process now runs `run_id` (its row stays `running` while we live)."""
    with _HELD_LOCK:
        _HELD_RUNS.add((str(store.path), run_id))


def drop_run(store: Store, run_id: int) -> None:
    with _HELD_LOCK:
        _HELD_RUNS.discard((str(store.path), run_id))


# -- flow locks (W4) -----------------------------------------------------------------------------


def acquire_lock(store: Store, flow: str, run_id: int) -> None:
    """Take the cross-process lock of `flow` for `run_id`; raise FlowBusyError if a live run has it."""
    with store.write():
        row = store.db.execute(
            "SELECT run_id, pid FROM flow_locks WHERE flow = ?", (flow,)
        ).fetchone()
        if row is not None:
            holder_run, holder_pid = row
            held_here = False
            if holder_pid == os.getpid():
                with _HELD_LOCK:
                    held_here = (str(store.path), flow) in _HELD_FLOWS
            if held_here or (holder_pid != os.getpid() and pid_alive(holder_pid)):
                raise FlowBusyError(flow, holder_run, holder_pid)
        store.db.execute(
            "INSERT INTO flow_locks (flow, run_id, pid, acquired_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(flow) DO UPDATE SET run_id = excluded.run_id, pid = excluded.pid, "
            "acquired_at = excluded.acquired_at",
            (flow, run_id, os.getpid(), utcnow()),
        )
    with _HELD_LOCK:
        _HELD_FLOWS.add((str(store.path), flow))


def release_lock(store: Store, flow: str, run_id: int) -> None:
    with store.write():
        store.db.execute(
            "DELETE FROM flow_locks WHERE flow = ? AND run_id = ? AND pid = ?",
            (flow, run_id, os.getpid()),
        )
    with _HELD_LOCK:
        _HELD_FLOWS.discard((str(store.path), flow))


@contextmanager
def flow_lock(store: Store, flow: str, run_id: int) -> Iterator[None]:
    acquire_lock(store, flow, run_id)
    try:
        yield
    finally:
        release_lock(store, flow, run_id)


def lock_holder(store: Store, flow: str) -> dict[str, Any] | None:
    """The live holder of a flow's lock ({flow, run_id, pid, acquired_at}), or None."""
    rows = list(store.db.query("SELECT * FROM flow_locks WHERE flow = ?", (flow,)))
    if not rows:
        return None
    row = rows[0]
    if row["pid"] == os.getpid():
        with _HELD_LOCK:
            alive = (str(store.path), flow) in _HELD_FLOWS
    else:
        alive = pid_alive(row["pid"])
    return row if alive else None


__all__ = [
    "FlowBusyError",
    "acquire_lock",
    "drop_run",
    "flow_lock",
    "hold_run",
    "lock_holder",
    "pid_alive",
    "release_lock",
    "run_alive",
]
