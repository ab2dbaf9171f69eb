"""Run records of flows (SPEC §2: "Every flow writes a run record (start, end, status, counts)
and per-item log lines, reports progress while it runs, can be cancelled between items").

A run row starts `running` with this process's pid; counts and log lines are written in batches
(never a commit per line); action lines list what a run did or, dry, would do; `finish()` sets
`succeeded`, `failed`, `cancelled` or `skipped`; a `running` row whose process died becomes
`interrupted` when next looked at. Failed items do not fail the run. Flow locks: locks.py; the
reported types: services/core/flow_types.py; design notes: docs/design/store.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from services.core.flow_types import Callbacks, Cancelled, LogLine, RunSummary
from services.store.db import Store, Where, inserted_rowid, utcnow
from services.store.locks import drop_run, hold_run, run_alive

COUNT_KEYS: tuple[str, ...] = (
    "examined",
    "issued",
    "replaced",
    "revoked",
    "created",
    "updated",
    "deleted",
    "skipped",
    "failed",
)
END_STATUSES = frozenset({"succeeded", "failed", "cancelled", "skipped"})
ALL_STATUSES = END_STATUSES | {"running", "interrupted"}
LEVELS = ("debug", "info", "warning", "error")

# Log lines are written in batches: when this many are buffered, or when the oldest buffered line
# is this old (checked whenever a line is added or progress is reported).
FLUSH_LINES = 200
FLUSH_SECONDS = 0.5
# Progress callbacks are coalesced: at most one per interval, plus the last one.
PROGRESS_INTERVAL = 0.1



def reap_interrupted(store: Store) -> list[int]:
    """Mark `running` rows whose process is gone as `interrupted`; returns their ids.

    Errors collected for a digest by an interrupted batch get their digest now (N1)."""
    rows = list(store.db.query("SELECT id, pid FROM runs WHERE status = 'running'"))
    dead = [r["id"] for r in rows if not run_alive(store, r["id"], r["pid"])]
    if not dead:
        return []
    now = utcnow()
    with store.write():
        for run_id in dead:
            store.db.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ?, "
                "reason = CASE WHEN reason = '' THEN 'the process running it stopped' ELSE reason END "
                "WHERE id = ? AND status = 'running'",
                (now, run_id),
            )
            store.db.execute("DELETE FROM flow_locks WHERE run_id = ?", (run_id,))
    from services.store import notifications  # local: notifications imports nothing from here at import

    for run_id in dead:
        notifications.close_digest(store, run_id)
    return dead


# -- the recorder --------------------------------------------------------------------------------


class RunRecorder:
    """Records one run: counts, batched log lines, coalesced progress, cancellation.

    Use from one thread (the store's). Typical use::

        rec = RunRecorder.start(store, "docebo_to_credly", trigger="cli", callbacks=cb)
        try:
            ...; rec.count("examined"); rec.action("issue_badge", obj, "issued badge ...")
            summary = rec.finish("succeeded")
        except BaseException as exc:
            rec.finish("failed", reason=str(exc)); raise
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        flow: str,
        *,
        trigger: str,
        dry_run: bool,
        callbacks: Callbacks | None = None,
    ) -> None:
        self.store = store
        self.id = run_id
        self.flow = flow
        self.trigger = trigger
        self.dry_run = dry_run
        self.callbacks = callbacks or Callbacks()
        self.counts: dict[str, int] = {k: 0 for k in COUNT_KEYS}
        self.actions: list[dict[str, str]] = []
        self.status = "running"
        self.reason = ""
        self.retryable = False
        self.mode = ""  # F6/F7: full | incremental
        self._buffer: list[LogLine] = []
        self._buffer_since = 0.0
        self._done = 0
        self._total: int | None = None
        self._progress_sent_at = 0.0
        self._progress_dirty = False
        self._cancel_seen = False
        self._dirty = False

    @classmethod
    def start(
        cls,
        store: Store,
        flow: str,
        *,
        trigger: str = "cli",
        dry_run: bool = False,
        parent_run_id: int | None = None,
        callbacks: Callbacks | None = None,
    ) -> RunRecorder:
        reap_interrupted(store)
        with store.write():
            cur = store.db.execute(
                "INSERT INTO runs (flow, trigger, dry_run, status, started_at, pid, parent_run_id) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?)",
                (flow, trigger, 1 if dry_run else 0, utcnow(), os.getpid(), parent_run_id),
            )
            run_id = inserted_rowid(cur)
        hold_run(store, run_id)
        return cls(store, run_id, flow, trigger=trigger, dry_run=dry_run, callbacks=callbacks)

    # -- counts ---------------------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        if key not in self.counts:
            raise KeyError(f"unknown count {key!r}; expected one of {', '.join(COUNT_KEYS)}")
        self.counts[key] += n
        self._dirty = True

    # -- log lines ------------------------------------------------------------------------
    def log(self, message: str, *, level: str = "info", action: str = "", object: str = "") -> LogLine:
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        line = LogLine(self.id, utcnow(), level, message, action, object)
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(line)
        if action:
            self.actions.append({"action": action, "object": object, "message": message})
        if self.callbacks.on_log is not None:
            self.callbacks.on_log(line)
        self._maybe_flush()
        return line

    def info(self, message: str, *, object: str = "") -> LogLine:
        return self.log(message, level="info", object=object)

    def warning(self, message: str, *, object: str = "") -> LogLine:
        return self.log(message, level="warning", object=object)

    def error(self, message: str, *, object: str = "") -> LogLine:
        return self.log(message, level="error", object=object)

    def debug(self, message: str, *, object: str = "") -> LogLine:
        return self.log(message, level="debug", object=object)

    def action(self, action: str, object: str, message: str) -> LogLine:
        """A write to a service: performed, or in a dry run planned ("would ...")."""
        if not action:
            raise ValueError("an action line needs an action name")
        return self.log(message, level="info", action=action, object=object)

    # -- progress and cancellation --------------------------------------------------------
    def set_total(self, total: int | None) -> None:
        self._total = total
        self._progress(force=True)

    def advance(self, n: int = 1) -> None:
        self._done += n
        self._progress()

    def progress(self, done: int, total: int | None) -> None:
        changed_total = total != self._total
        self._done, self._total = done, total
        self._progress(force=changed_total)

    @property
    def done(self) -> int:
        return self._done

    @property
    def total(self) -> int | None:
        return self._total

    def _progress(self, force: bool = False) -> None:
        self._progress_dirty = True
        self._dirty = True
        now = time.monotonic()
        final = self._total is not None and self._done >= self._total
        if force or final or now - self._progress_sent_at >= PROGRESS_INTERVAL:
            self._send_progress(now)
        self._maybe_flush()

    def _send_progress(self, now: float | None = None) -> None:
        self._progress_sent_at = time.monotonic() if now is None else now
        self._progress_dirty = False
        if self.callbacks.on_progress is not None:
            self.callbacks.on_progress(self._done, self._total)

    def cancel_requested(self) -> bool:
        """Poll `should_cancel` (sticky: once True, stays True)."""
        if not self._cancel_seen and self.callbacks.should_cancel is not None:
            self._cancel_seen = bool(self.callbacks.should_cancel())
        return self._cancel_seen

    def check_cancel(self) -> None:
        """Raise Cancelled when a cancel was requested (call between items)."""
        if self.cancel_requested():
            raise Cancelled()

    # -- persistence ----------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if len(self._buffer) >= FLUSH_LINES:
            self.flush()
        elif (self._buffer or self._dirty) and time.monotonic() - self._buffer_since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write buffered log lines, counts and progress in one transaction."""
        lines, self._buffer = self._buffer, []
        self._buffer_since = time.monotonic()
        self._dirty = False
        with self.store.write():
            if lines:
                self.store.db.conn.executemany(
                    "INSERT INTO run_log (run_id, at, level, action, object, message) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(ln.run_id, ln.at, ln.level, ln.action, ln.object, ln.message) for ln in lines],
                )
            sets = ", ".join(f"{k} = ?" for k in COUNT_KEYS)
            self.store.db.execute(
                f"UPDATE runs SET {sets}, progress_done = ?, progress_total = ? WHERE id = ?",
                (*[self.counts[k] for k in COUNT_KEYS], self._done, self._total, self.id),
            )

    def finish(self, status: str, reason: str = "") -> RunSummary:
        """End the run with `status` (succeeded|failed|cancelled|skipped) and return its summary."""
        if status not in END_STATUSES:
            raise ValueError(f"unknown end status {status!r}")
        if self.status != "running":
            return self.summary()
        if self._progress_dirty:
            self._send_progress()
        self.flush()
        self.status, self.reason = status, reason
        with self.store.write():
            self.store.db.execute(
                "UPDATE runs SET status = ?, reason = ?, ended_at = ? WHERE id = ?",
                (status, reason, utcnow(), self.id),
            )
        drop_run(self.store, self.id)
        return self.summary()

    def summary(self) -> RunSummary:
        return RunSummary(
            run_id=self.id,
            flow=self.flow,
            status=self.status,
            counts=dict(self.counts),
            reason=self.reason,
            actions=list(self.actions),
            dry_run=self.dry_run,
            trigger=self.trigger,
            retryable=self.retryable,
            mode=self.mode,
        )


# -- queries for the console ---------------------------------------------------------------------


# Runs that start on their own, not from an admin's command: webhook handlers (one per event) and
# the scheduler's batches. The console's history hides them unless asked.
AUTOMATIC_TRIGGERS = ("webhook", "schedule")


def _run_where(flow: str | None, status: str | None, parent_run_id: int | None | bool,
               exclude_triggers: Iterable[str] = ()) -> Where:
    where = Where()
    if flow:
        where.add("flow = ?", flow)
    if status:
        where.add("status = ?", status)
    if parent_run_id is False:
        where.add("parent_run_id IS NULL")
    elif parent_run_id is not None and parent_run_id is not True:
        where.add("parent_run_id = ?", parent_run_id)
    hidden = list(exclude_triggers)
    if hidden:
        where.add(f"trigger NOT IN ({', '.join('?' * len(hidden))})", *hidden)
    return where


def query_runs(
    store: Store,
    *,
    flow: str | None = None,
    status: str | None = None,
    parent_run_id: int | None | bool = None,
    exclude_triggers: Iterable[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Runs, newest first. `parent_run_id=False` lists top-level runs only; an int lists the
    children of that 'all' run. `exclude_triggers` leaves out runs of those triggers (e.g.
    AUTOMATIC_TRIGGERS)."""
    reap_interrupted(store)
    where = _run_where(flow, status, parent_run_id, exclude_triggers)
    return store.page("runs", where, order="id DESC", limit=limit, offset=offset)


def count_runs(
    store: Store, *, flow: str | None = None, status: str | None = None, parent_run_id: int | None | bool = None,
    exclude_triggers: Iterable[str] = (),
) -> int:
    return store.count("runs", _run_where(flow, status, parent_run_id, exclude_triggers))


def run_position(
    store: Store, run_id: int, *, flow: str | None = None, status: str | None = None,
    parent_run_id: int | None | bool = None, exclude_triggers: Iterable[str] = (),
) -> int | None:
    """Where run `run_id` stands (0 = first) in `query_runs` with the same filters, so a caller
    can open the page that holds it; None when the filters leave it out (or it does not exist)."""
    where = _run_where(flow, status, parent_run_id, exclude_triggers)
    itself = Where(list(where.clauses), list(where.params))
    itself.add("id = ?", run_id)
    if not store.count("runs", itself):
        return None
    where.add("id > ?", run_id)
    return store.count("runs", where)


def get_run(store: Store, run_id: int) -> dict[str, Any] | None:
    reap_interrupted(store)
    rows = list(store.db.query("SELECT * FROM runs WHERE id = ?", (run_id,)))
    return rows[0] if rows else None


def last_run(store: Store, flow: str, *, dry_run: bool | None = None) -> dict[str, Any] | None:
    reap_interrupted(store)
    sql = "SELECT * FROM runs WHERE flow = ?"
    params: list[Any] = [flow]
    if dry_run is not None:
        sql += " AND dry_run = ?"
        params.append(1 if dry_run else 0)
    rows = list(store.db.query(sql + " ORDER BY id DESC LIMIT 1", params))
    return rows[0] if rows else None


def _log_where(run_id: int, failures_only: bool, level: str | None, actions_only: bool, text: str) -> Where:
    where = Where()
    where.add("run_id = ?", run_id)
    if failures_only:
        where.add("level = 'error'")
    elif level:
        where.add("level = ?", level)
    if actions_only:
        where.add("action != ''")
    if text:
        where.add("(message LIKE ? OR object LIKE ?)", f"%{text}%", f"%{text}%")
    return where


def query_run_log(
    store: Store,
    run_id: int,
    *,
    failures_only: bool = False,
    level: str | None = None,
    actions_only: bool = False,
    text: str = "",
    limit: int = 500,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A page of a run's log lines in the order written. `failures_only` keeps `error` lines."""
    where = _log_where(run_id, failures_only, level, actions_only, text)
    return store.page("run_log", where, order="id", limit=limit, offset=offset)


def count_run_log(
    store: Store,
    run_id: int,
    *,
    failures_only: bool = False,
    level: str | None = None,
    actions_only: bool = False,
    text: str = "",
) -> int:
    return store.count("run_log", _log_where(run_id, failures_only, level, actions_only, text))


def run_actions(store: Store, run_id: int) -> list[dict[str, str]]:
    """The action lines of a run (its plan, for a dry run), including those of its child runs."""
    ids = [run_id] + [
        r[0] for r in store.db.execute("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY id", (run_id,))
    ]
    out: list[dict[str, str]] = []
    for rid in ids:
        out += [
            {"action": r["action"], "object": r["object"], "message": r["message"]}
            for r in store.db.query(
                "SELECT action, object, message FROM run_log WHERE run_id = ? AND action != '' ORDER BY id",
                (rid,),
            )
        ]
    return out
