"""The scheduler of ``credly-console serve`` (W4).

Design notes: docs/design/serve.md
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.core.schedule import JOBS, UTC, format_stamp, is_due, job_name, next_occurrence, parse_stamp
from services.store.db import Store

log = logging.getLogger("credly_console.scheduler")

# -- the schedule table --------------------------------------------------------------------------


def list_jobs(store: Store, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every job with its row of ``schedule`` plus ``rule``, ``flow`` and ``next_run_at`` (when it
    will next run while ``serve`` is up; '' when disabled)."""
    now = now or dt.datetime.now(UTC)
    rows = {r["job"]: r for r in store.db.query("SELECT * FROM schedule")}
    out = []
    for job, spec in JOBS.items():
        row = rows.get(job, {"job": job, "enabled": 0, "last_started_at": None, "last_finished_at": None,
                             "last_run_id": None})
        enabled = bool(row["enabled"])
        last = parse_stamp(row["last_started_at"])
        if not enabled:
            nxt = ""
        elif is_due(job, last, now):
            nxt = format_stamp(now)
        else:
            nxt = format_stamp(next_occurrence(job, last))  # type: ignore[arg-type]
        out.append({**row, "enabled": enabled, "flow": spec.flow, "rule": spec.description, "next_run_at": nxt,
                    "due_now": bool(enabled and is_due(job, last, now))})
    return out


def set_enabled(store: Store, job: str, enabled: bool) -> None:
    """Switch a job on or off (W4: F6/F7 run on schedule only when switched on)."""
    key = job_name(job)
    with store.write():
        store.conn.execute(
            "INSERT INTO schedule (job, enabled) VALUES (?, ?) ON CONFLICT(job) DO UPDATE SET enabled = excluded.enabled",
            (key, 1 if enabled else 0),
        )


# -- the scheduler -------------------------------------------------------------------------------

RunJob = Callable[[str], Awaitable[Any]]


class Scheduler:
    """Starts due jobs (see the module docstring). ``run_job(job)`` runs the job's flow and returns
    its ``RunSummary`` (or anything with ``run_id``); it is awaited in its own task."""

    def __init__(
        self,
        store: Store,
        run_job: RunJob,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        max_sleep_s: float = 30.0,
    ) -> None:
        self.store = store
        self.run_job = run_job
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.max_sleep_s = max_sleep_s
        self.running: dict[str, asyncio.Task] = {}
        self.started: list[tuple[str, dt.datetime]] = []  # (job, at) — for tests and the log
        self._wake: asyncio.Event | None = None

    def due_jobs(self, now: dt.datetime | None = None) -> list[str]:
        now = now or self.clock()
        out = []
        for row in self.store.db.query("SELECT job, enabled, last_started_at FROM schedule ORDER BY rowid"):
            if row["job"] not in JOBS or not row["enabled"]:
                continue
            if is_due(row["job"], parse_stamp(row["last_started_at"]), now):
                out.append(row["job"])
        return out

    def tick(self) -> list[str]:
        """Start every due job that is not already running; returns the jobs started."""
        now = self.clock()
        started = []
        for job in self.due_jobs(now):
            task = self.running.get(job)
            if task is not None and not task.done():
                continue  # never two runs of one flow at once (W4)
            first = JOBS[job].after
            if first and (first in started or (self.running.get(first) and not self.running[first].done())):
                continue  # F2 waits for a running F1, then sees its templates (it stays due meanwhile)
            with self.store.write():
                self.store.conn.execute("UPDATE schedule SET last_started_at = ? WHERE job = ?", (format_stamp(now), job))
            self.started.append((job, now))
            self.running[job] = asyncio.get_running_loop().create_task(self._run(job), name=f"schedule:{job}")
            started.append(job)
            log.info("scheduled run of %s started", job)
        return started

    async def _run(self, job: str) -> None:
        run_id = None
        try:
            result = await self.run_job(job)
            run_id = getattr(result, "run_id", None)
            status = getattr(result, "status", "")
            log.info("scheduled run of %s ended %s%s", job, status or "", f" (run {run_id})" if run_id else "")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled run of %s failed", job)
        finally:
            try:
                with self.store.write():
                    self.store.conn.execute(
                        "UPDATE schedule SET last_finished_at = ?, last_run_id = COALESCE(?, last_run_id) WHERE job = ?",
                        (format_stamp(self.clock()), run_id, job),
                    )
            except Exception:
                log.exception("could not record the end of the scheduled run of %s", job)
            if self._wake is not None:
                self._wake.set()

    def next_wakeup(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """The next time a job not running now becomes due (None when there is none)."""
        now = now or self.clock()
        times = []
        for row in self.store.db.query("SELECT job, enabled, last_started_at FROM schedule"):
            if row["job"] not in JOBS or not row["enabled"]:
                continue
            task = self.running.get(row["job"])
            if task is not None and not task.done():
                continue  # its end wakes the loop
            first = self.running.get(JOBS[row["job"]].after)
            if first is not None and not first.done():
                continue  # waits for that job, whose end wakes the loop
            last = parse_stamp(row["last_started_at"])
            times.append(now if last is None else max(now, next_occurrence(row["job"], last)))
        return min(times) if times else None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; sleeps until the next occurrence (at most ``max_sleep_s``, so a job
        switched on from the CLI is noticed). Scheduled runs in progress are cancelled at stop
        (their flow records the run as cancelled and releases its lock)."""
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
                now = self.clock()
                nxt = self.next_wakeup(now)
                delay = self.max_sleep_s if nxt is None else min(self.max_sleep_s, max(0.05, (nxt - now).total_seconds()))
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
        finally:
            await self.stop_runs()

    async def stop_runs(self, grace_s: float = 0.0) -> None:
        tasks = [t for t in self.running.values() if not t.done()]
        if tasks and grace_s:
            await asyncio.wait(tasks, timeout=grace_s)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
