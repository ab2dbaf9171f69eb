"""Inbox workers against an injected handler table (W2, W3): kinds to handlers, order per
learner, retries with backoff then failed with one notification, Credly resolution, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any

import pytest

from services.core.flow_types import RunSummary
from services.serve.inbox_worker import EventCache, InboxWorker, Outcome, outcome_of
from services.store import inbox
from services.store.inbox import NewItem, RetryPolicy

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class Ctx:
    store: Any
    credly: Any = None
    docebo: Any = None


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


async def until(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def completion(key: str, user: int) -> NewItem:
    return NewItem("docebo", key, "course.enrollment.completed", f"docebo-user:{user}", {"user_id": user, "k": key})


def status_of(store, key: str) -> str:
    return store.conn.execute("SELECT status FROM inbox WHERE delivery_key = ?", (key,)).fetchone()[0]


@pytest.fixture
async def running(store):
    """Start a worker with given handlers; stops it at the end of the test."""
    started: list[tuple[InboxWorker, asyncio.Event, asyncio.Task]] = []

    def start(handlers, **kw) -> InboxWorker:
        kw.setdefault("poll_s", 0.02)
        kw.setdefault("clock", Clock())
        worker = InboxWorker(Ctx(store), handlers=handlers, **kw)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        started.append((worker, stop, task))
        return worker

    yield start
    for _, stop, task in started:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_each_kind_goes_to_its_handler_and_the_row_ends_done(store, running):
    seen: list[tuple[str, Any]] = []

    async def completion_handler(ctx, row):
        seen.append(("course_completion", row["data"]["user_id"]))
        return RunSummary(run_id=41, flow="course_completion", status="succeeded", counts={"issued": 1})

    async def cert_handler(ctx, row):
        seen.append(("certification", row["event_type"]))
        return Outcome("done", 42)

    inbox.insert_items(store, [
        completion("a", 1),
        NewItem("docebo", "b", "certification.revoked", "docebo-user:2", {"user_id": 2}),
    ])
    running({"course_completion": completion_handler, "certification": cert_handler})
    await until(lambda: inbox.counts(store)["done"] == 2, what="both done")
    assert sorted(seen) == [("certification", "certification.revoked"), ("course_completion", 1)]
    runs = dict(store.conn.execute("SELECT delivery_key, run_id FROM inbox").fetchall())
    assert runs == {"a": 41, "b": 42}


async def test_events_of_one_learner_run_in_order_and_learners_in_parallel(store, running):
    active: dict[str, int] = {}
    order: list[str] = []
    overlap = {"max": 0}

    async def handler(ctx, row):
        learner = row["learner_key"]
        assert active.get(learner, 0) == 0, "two events of one learner at once"
        active[learner] = 1
        overlap["max"] = max(overlap["max"], sum(active.values()))
        await asyncio.sleep(0.01)
        order.append(row["delivery_key"])
        active[learner] = 0
        return Outcome("done")

    items = [completion(f"{user}-{n}", user) for n in range(5) for user in (1, 2, 3)]
    inbox.insert_items(store, items)
    running({"course_completion": handler}, concurrency=3)
    await until(lambda: inbox.counts(store)["done"] == 15, what="all done")
    for user in (1, 2, 3):
        assert [k for k in order if k.startswith(f"{user}-")] == [f"{user}-{n}" for n in range(5)]
    assert overlap["max"] > 1  # different learners did run side by side


async def test_a_failing_event_is_retried_with_backoff_then_succeeds(store, running):
    clock = Clock()
    calls = []

    async def flaky(ctx, row):
        calls.append(clock())
        if len(calls) < 3:
            return Outcome("failed", None, "Docebo answered 503", retryable=True)
        return Outcome("done")

    inbox.insert_items(store, [completion("a", 1), completion("a2", 1)])
    running({"course_completion": flaky}, clock=clock, policy=RetryPolicy(delays=(30, 120), max_attempts=5))
    await until(lambda: inbox.get_item(store, 1)["next_attempt_at"], what="first failure")
    row = inbox.get_item(store, 1)
    assert row["status"] == "queued" and row["last_error"] == "Docebo answered 503"
    assert row["next_attempt_at"] == inbox.stamp(T0 + dt.timedelta(seconds=30))
    await asyncio.sleep(0.1)
    assert len(calls) == 1 and status_of(store, "a2") == "queued"  # a2 waits behind a (same learner)
    clock.advance(31)
    await until(lambda: len(calls) == 2, what="second attempt")
    await until(lambda: inbox.get_item(store, 1)["attempts"] == 2 and inbox.get_item(store, 1)["status"] == "queued")
    assert inbox.get_item(store, 1)["next_attempt_at"] == inbox.stamp(clock() + dt.timedelta(seconds=120))
    clock.advance(121)
    await until(lambda: inbox.counts(store)["done"] == 2, what="both done")
    assert inbox.get_item(store, 1)["last_error"] == ""


async def test_after_the_last_try_the_event_stays_failed_with_one_notification(store, running):
    clock = Clock()

    async def broken(ctx, row):
        return RunSummary(run_id=None, flow="course_completion", status="succeeded",
                          counts={"failed": 1}, retryable=True)

    inbox.insert_items(store, [completion("a", 1)])
    running({"course_completion": broken}, clock=clock, policy=RetryPolicy(delays=(10,), max_attempts=3))
    for attempt in (1, 2):
        def queued_after(n=attempt):
            item = inbox.get_item(store, 1)
            return item["attempts"] == n and item["status"] == "queued"

        await until(queued_after)
        clock.advance(11)
    await until(lambda: inbox.get_item(store, 1)["status"] == "failed", what="failed")
    row = inbox.get_item(store, 1)
    assert row["attempts"] == 3 and row["last_error"] == "1 item failed"
    [note] = list(store.db.query("SELECT * FROM notifications"))
    assert note["kind"] == "error" and note["flow"] == "course_completion"
    assert "failed after 3 attempts" in note["body"] and "inbox retry 1" in note["body"]
    assert note["object"] == "Docebo course.enrollment.completed (user 1)"


async def test_a_permanent_error_gives_up_sooner(store, running):
    clock = Clock()

    async def refused(ctx, row):
        raise ValueError("422 Invalid badge template")

    inbox.insert_items(store, [completion("a", 1)])
    running(
        {"course_completion": refused}, clock=clock, policy=RetryPolicy(delays=(10,), max_attempts=8, max_attempts_permanent=2)
    )
    await until(lambda: inbox.get_item(store, 1)["attempts"] == 1 and inbox.get_item(store, 1)["status"] == "queued")
    clock.advance(11)
    await until(lambda: inbox.get_item(store, 1)["status"] == "failed")
    assert inbox.get_item(store, 1)["last_error"] == "ValueError: 422 Invalid badge template"


async def test_admin_retry_runs_a_failed_event_again(store, running):
    fixed = {"ok": False}

    async def handler(ctx, row):
        return Outcome("done") if fixed["ok"] else Outcome("failed", None, "mapping missing")

    inbox.insert_items(store, [completion("a", 1)])
    running({"course_completion": handler}, policy=RetryPolicy(delays=(0,), max_attempts_permanent=1))
    await until(lambda: inbox.get_item(store, 1)["status"] == "failed")
    fixed["ok"] = True
    assert inbox.retry_all_failed(store) == 1
    await until(lambda: inbox.get_item(store, 1)["status"] == "done")


async def test_a_gated_off_run_marks_the_event_skipped(store, running):
    async def handler(ctx, row):
        return RunSummary(
            run_id=7, flow="course_completion", status="skipped", counts={}, reason="CREDLY_INTEGRATION_MASTER is CREDLY (G1)"
        )

    inbox.insert_items(store, [completion("a", 1)])
    running({"course_completion": handler})
    await until(lambda: inbox.get_item(store, 1)["status"] == "skipped")
    assert "G1" in inbox.get_item(store, 1)["last_error"]


async def test_credly_notices_are_resolved_to_their_learner_first(store, running):
    handled = []

    async def resolver(ctx, row):
        return "credly-email:ada@example.com"

    async def badge_handler(ctx, row):
        handled.append((row["delivery_key"], row["learner_key"]))
        return Outcome("done")

    inbox.insert_items(store, [NewItem("credly", "credly:e1", "badge.created", inbox.UNRESOLVED, {"id": "e1"})])
    running({"badge": badge_handler}, resolver=resolver)
    await until(lambda: inbox.get_item(store, 1)["status"] == "done")
    assert handled == [("credly:e1", "credly-email:ada@example.com")]
    assert inbox.get_item(store, 1)["attempts"] == 1  # the resolution is not an attempt


async def test_shutdown_releases_the_event_in_hand(store):
    entered = asyncio.Event()

    async def slow(ctx, row):
        entered.set()
        await asyncio.sleep(3600)

    inbox.insert_items(store, [completion("a", 1)])
    worker = InboxWorker(Ctx(store), handlers={"course_completion": slow}, poll_s=0.02, grace_s=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(entered.wait(), 5)
    assert inbox.get_item(store, 1)["status"] == "processing"
    stop.set()
    await asyncio.wait_for(task, 5)
    row = inbox.get_item(store, 1)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["lease_owner"] == ""


async def test_shutdown_lets_a_short_event_finish(store):
    entered = asyncio.Event()

    async def short(ctx, row):
        entered.set()
        await asyncio.sleep(0.2)
        return Outcome("done")

    inbox.insert_items(store, [completion("a", 1)])
    worker = InboxWorker(Ctx(store), handlers={"course_completion": short}, poll_s=0.02, grace_s=5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(entered.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert inbox.get_item(store, 1)["status"] == "done"


async def test_an_event_with_no_handler_is_skipped(store, running):
    inbox.insert_items(store, [NewItem("credly", "credly:t", "badge_template.changed", "credly-template:x", {"id": "t"})])
    running({})
    await until(lambda: inbox.get_item(store, 1)["status"] == "skipped")


def test_outcome_of_run_summaries():
    ok = RunSummary(run_id=1, flow="f", status="succeeded", counts={"issued": 1})
    assert outcome_of(ok) == Outcome("done", 1, "")
    failed = RunSummary(run_id=2, flow="f", status="failed", counts={}, reason="Credly 503", retryable=True)
    assert outcome_of(failed) == Outcome("failed", 2, "Credly 503", True)
    partial = RunSummary(run_id=3, flow="f", status="succeeded", counts={"failed": 2})
    assert outcome_of(partial).status == "failed" and outcome_of(partial).reason == "2 items failed"


async def test_the_event_cache_answers_a_second_read_of_an_event():
    class Client:
        calls = 0
        concurrency = "sem"

        async def get_event(self, event_id):
            Client.calls += 1
            return {"id": event_id}

    cached = EventCache(Client(), size=2)
    assert await cached.get_event("a") == {"id": "a"}
    assert await cached.get_event("a") == {"id": "a"}
    assert Client.calls == 1
    await cached.get_event("b")
    await cached.get_event("c")
    await cached.get_event("a")  # evicted (size 2)
    assert Client.calls == 4
    assert cached.concurrency == "sem"


async def test_a_handler_meeting_a_busy_database_is_retried_with_its_message_and_no_traceback(store, running, caplog):
    """One error family (issue 11): an expected error from a handler is the event's reason as the
    admin reads it (no class name, no traceback in the log); a busy database is retryable (W3)."""
    from services.store.db import DatabaseBusyError

    clock = Clock()
    message = "the database x.db is locked by another process (waited 30 s)"

    async def locked(ctx, row):
        raise DatabaseBusyError(message)

    inbox.insert_items(store, [completion("a", 1)])
    with caplog.at_level("WARNING", logger="credly_console.worker"):
        running({"course_completion": locked}, clock=clock, policy=RetryPolicy(delays=(30,), max_attempts=5))
        await until(lambda: inbox.get_item(store, 1)["next_attempt_at"], what="first failure")
    row = inbox.get_item(store, 1)
    assert (row["status"], row["last_error"]) == ("queued", message)
    assert row["next_attempt_at"] == inbox.stamp(T0 + dt.timedelta(seconds=30))
    mine = [r for r in caplog.records if "inbox event 1" in r.getMessage()]
    assert mine and all(r.exc_info is None for r in mine)
