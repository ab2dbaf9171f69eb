"""Scheduler rules with a fake clock (W4): F1 daily at 02:00 Los Angeles (also across DST), F2
every 5 minutes, F6/F7 only when switched on, missed runs once at start, never two at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from services.core import schedule
from services.core.schedule import LOS_ANGELES, is_due, next_occurrence
from services.serve.scheduler import Scheduler, list_jobs, set_enabled

UTC = dt.UTC


def la(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LOS_ANGELES)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def until(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    spins = 0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        spins += 1
        await asyncio.sleep(0 if spins < 50 else 0.005)


# -- rules ----------------------------------------------------------------------------------------


def test_templates_run_daily_at_two_in_los_angeles():
    assert next_occurrence("templates", la(2026, 1, 10, 1, 59)) == la(2026, 1, 10, 2, 0)
    assert next_occurrence("templates", la(2026, 1, 10, 2, 0)) == la(2026, 1, 11, 2, 0)
    # summer: 02:00 PDT is 09:00 UTC; winter: 02:00 PST is 10:00 UTC
    assert next_occurrence("templates", dt.datetime(2026, 7, 1, 12, tzinfo=UTC)) == dt.datetime(2026, 7, 2, 9, tzinfo=UTC)
    assert next_occurrence("templates", dt.datetime(2026, 1, 1, 12, tzinfo=UTC)) == dt.datetime(2026, 1, 2, 10, tzinfo=UTC)


def test_the_daily_run_across_daylight_saving_changes():
    # 2026-03-08: clocks jump from 02:00 to 03:00 — 02:00 does not exist; the run is at 03:00 PDT.
    assert next_occurrence("templates", la(2026, 3, 7, 12, 0)) == dt.datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
    assert next_occurrence("templates", la(2026, 3, 8, 12, 0)) == la(2026, 3, 9, 2, 0)
    # 2026-11-01: 01:00-02:00 happens twice; 02:00 PST happens once.
    assert next_occurrence("templates", la(2026, 10, 31, 12, 0)) == dt.datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_five_minute_jobs_fall_on_five_minute_marks():
    t = dt.datetime(2026, 1, 1, 10, 3, 20, tzinfo=UTC)
    assert next_occurrence("dropdown", t) == dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert next_occurrence("docebo-to-credly", dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC)) == dt.datetime(
        2026, 1, 1, 10, 10, tzinfo=UTC
    )
    assert next_occurrence("dropdown", dt.datetime(2026, 1, 1, 23, 58, tzinfo=UTC)) == dt.datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def test_due_when_never_run_or_an_occurrence_passed_since_the_last_start():
    now = dt.datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    assert is_due("dropdown", None, now)
    assert not is_due("dropdown", dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC), now)
    assert is_due("dropdown", dt.datetime(2026, 1, 1, 10, 4, 59, tzinfo=UTC), now)
    assert not is_due("templates", la(2026, 1, 1, 2, 0), la(2026, 1, 2, 1, 59))
    assert is_due("templates", la(2026, 1, 1, 2, 0), la(2026, 1, 2, 2, 0))


def test_unknown_job_names_are_refused(store):
    with pytest.raises(ValueError, match="unknown job"):
        set_enabled(store, "everything", True)


# -- the scheduler --------------------------------------------------------------------------------


def make(store, clock, calls, *, block: asyncio.Event | None = None):
    async def run_job(job):
        calls.append((job, clock()))
        if block is not None:
            await block.wait()

        class Summary:
            run_id = len(calls)
            status = "succeeded"

        return Summary()

    return Scheduler(store, run_job, clock=clock)


async def test_first_start_runs_the_enabled_jobs_once(store):
    clock = Clock(dt.datetime(2026, 1, 1, 10, 3, tzinfo=UTC))
    calls = []
    s = make(store, clock, calls)
    assert s.tick() == ["templates"]  # F6/F7 are off by default; F2 waits for F1 ...
    await until(lambda: not any(not t.done() for t in s.running.values()))
    assert s.tick() == ["dropdown"]  # ... and runs as soon as F1 has filled the templates table
    await until(lambda: not any(not t.done() for t in s.running.values()))
    assert [job for job, _ in calls] == ["templates", "dropdown"]
    assert s.tick() == []
    rows = {r["job"]: r for r in list_jobs(store, now=clock())}
    assert rows["dropdown"]["last_started_at"] == "2026-01-01T10:03:00.000Z"
    assert rows["dropdown"]["last_finished_at"] is not None and rows["dropdown"]["last_run_id"] in (1, 2)
    assert rows["dropdown"]["next_run_at"] == "2026-01-01T10:05:00.000Z"
    assert rows["templates"]["next_run_at"] == "2026-01-02T10:00:00.000Z"
    assert rows["docebo_to_credly"]["enabled"] is False and rows["docebo_to_credly"]["next_run_at"] == ""


async def test_a_day_of_ticks(store):
    clock = Clock(dt.datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    calls = []
    s = make(store, clock, calls)
    end = clock.now + dt.timedelta(days=1)
    while clock.now < end:  # a tick a minute after each 5-minute mark (and when a run ends)
        while s.tick():
            await until(lambda: all(t.done() for t in s.running.values()))
        clock.now += dt.timedelta(minutes=5)
    jobs = [job for job, _ in calls]
    assert jobs.count("templates") == 2  # at start (never ran) and at 02:00 LA (10:00 UTC)
    assert ("templates", dt.datetime(2026, 1, 1, 10, 1, tzinfo=UTC)) in calls
    assert jobs.count("dropdown") == 24 * 12
    assert "docebo_to_credly" not in jobs and "credly_to_docebo" not in jobs


async def test_f6_f7_run_only_when_switched_on(store):
    clock = Clock(dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    calls = []
    s = make(store, clock, calls)
    set_enabled(store, "docebo-to-credly", True)
    assert "docebo_to_credly" in s.tick()
    await until(lambda: all(t.done() for t in s.running.values()))
    set_enabled(store, "docebo_to_credly", False)
    clock.now += dt.timedelta(minutes=5)
    assert "docebo_to_credly" not in s.tick()


async def test_missed_runs_after_downtime_run_once(store):
    with store.write():
        store.conn.execute("UPDATE schedule SET last_started_at = '2026-01-01T09:00:00.000Z'")
    clock = Clock(dt.datetime(2026, 1, 4, 12, 0, tzinfo=UTC))  # three days down: many missed occurrences
    calls = []
    s = make(store, clock, calls)
    assert s.tick() == ["templates"]
    await until(lambda: all(t.done() for t in s.running.values()))
    assert s.tick() == ["dropdown"]
    await until(lambda: all(t.done() for t in s.running.values()))
    assert s.tick() == []
    assert len(calls) == 2


async def test_never_two_runs_of_one_job_at_once(store):
    clock = Clock(dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    calls = []
    block = asyncio.Event()
    s = make(store, clock, calls, block=block)
    s.tick()
    clock.now += dt.timedelta(minutes=15)
    assert s.tick() == []  # dropdown still running: not started again
    assert s.next_wakeup() is None  # nothing to wake for until a run ends
    block.set()
    await until(lambda: all(t.done() for t in s.running.values()))
    assert s.tick() == ["dropdown"]


async def test_the_run_loop_wakes_for_the_next_occurrence_and_stops(store):
    clock = Clock(dt.datetime(2026, 1, 1, 10, 4, 59, 900000, tzinfo=UTC))
    with store.write():
        store.conn.execute("UPDATE schedule SET last_started_at = '2026-01-01T10:00:00.000Z'")
    calls = []
    s = make(store, clock, calls)
    s.max_sleep_s = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(s.run(stop))
    await asyncio.sleep(0.02)
    assert calls == []
    clock.now = dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    await until(lambda: [j for j, _ in calls] == ["dropdown"])
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(store):
    clock = Clock(dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC))

    async def run_job(job):
        raise RuntimeError("no Credly connection")

    s = Scheduler(store, run_job, clock=clock)
    while s.tick():
        await until(lambda: all(t.done() for t in s.running.values()))
    rows = {r["job"]: r for r in list_jobs(store, now=clock())}
    assert rows["dropdown"]["last_finished_at"] == "2026-01-01T10:00:00.000Z"
    clock.now += dt.timedelta(minutes=5)
    assert s.tick() == ["dropdown"]


async def test_a_scheduled_flow_that_raises_in_its_thread_fails_its_job_instead_of_hanging():
    """serve runs each scheduled flow in a thread of its own (services.serve.service._daemon_call): an
    error there reaches the awaiting job, so the job ends and the scheduler can run it again."""
    from services.serve.service import _daemon_call

    def flow():
        raise RuntimeError("the Docebo connection is not configured")

    with pytest.raises(RuntimeError, match="not configured"):
        await asyncio.wait_for(_daemon_call(flow), 5)
    assert await asyncio.wait_for(_daemon_call(lambda: 42), 5) == 42


def test_job_descriptions_cover_every_job():
    assert set(schedule.JOBS) == {"templates", "dropdown", "docebo_to_credly", "credly_to_docebo"}
