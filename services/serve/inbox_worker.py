"""Inbox workers (W2, W3): drain the webhook inbox through the flows' real-time handlers.

Design notes: docs/design/serve.md
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.core import metrics
from services.core.errors import CredlyConsoleError, is_expected
from services.store import inbox
from services.store.db import Store

log = logging.getLogger("credly_console.worker")


@dataclasses.dataclass
class Outcome:
    """What processing one event came to."""

    status: str  # done | skipped | failed
    run_id: int | None = None
    reason: str = ""
    retryable: bool = False


Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]
Resolver = Callable[[Any, dict[str, Any]], Awaitable[str]]


class ResolveError(CredlyConsoleError):
    """The learner of a Credly notice could not be learned; ``retryable`` as for API errors."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def outcome_of(result: Any) -> Outcome:
    """An ``Outcome`` from a handler's return value (a flows ``RunSummary`` or an ``Outcome``)."""
    if isinstance(result, Outcome):
        return result
    status = getattr(result, "status", None)
    run_id = getattr(result, "run_id", None)
    reason = getattr(result, "reason", "") or ""
    counts = getattr(result, "counts", {}) or {}
    retryable = bool(getattr(result, "retryable", False))
    failed_items = int(counts.get("failed", 0) or 0)
    if status == "succeeded" and not failed_items:
        return Outcome("done", run_id, reason)
    if status == "skipped" and not failed_items:
        return Outcome("skipped", run_id, reason or "skipped")
    if status in ("succeeded", "skipped"):
        reason = reason or f"{failed_items} item{'s' if failed_items != 1 else ''} failed"
    elif not reason:
        reason = f"the run ended {status}"
    return Outcome("failed", run_id, reason, retryable)


# -- the flows' handlers (wired once services.flows exists) --------------------------------------


def flow_handlers() -> dict[str, Handler]:
    """The real handler table: the flows' real-time handlers, run with ``notify=False`` (the
    worker notifies once, when an event finally fails)."""

    async def course_completion(ctx: Any, row: dict[str, Any]) -> Any:
        from services import flows

        return await flows.handle_course_completion(ctx, row["data"], notify=False)

    async def certification(ctx: Any, row: dict[str, Any]) -> Any:
        from services import flows

        return await flows.handle_certification_event(ctx, row["event_type"], row["data"], notify=False)

    async def badge(ctx: Any, row: dict[str, Any]) -> Any:
        from services import flows

        return await flows.handle_badge_event(ctx, row["data"], notify=False)

    async def template(ctx: Any, row: dict[str, Any]) -> Any:
        from services import flows

        return await flows.handle_template_event(ctx, row["data"], notify=False)

    return {
        "course_completion": course_completion,
        "certification": certification,
        "badge": badge,
        "template": template,
    }


async def resolve_credly(ctx: Any, row: dict[str, Any]) -> str:
    """The learner key of a Credly notice: read the event (``CredlyClient.get_event``) and key it
    by the badge's recipient e-mail (``credly-email:...``) or the template id
    (``credly-template:...``); an event naming neither is keyed by itself."""
    event_id = str(row["data"].get("id") or "")
    if ctx.credly is None:
        raise ResolveError("no Credly connection is configured", retryable=True)
    try:
        data = await ctx.credly.get_event(event_id)
    except Exception as exc:
        raise ResolveError(f"reading Credly event {event_id} failed: {exc}", bool(getattr(exc, "retryable", False))) from exc
    badge = data.get("badge") if isinstance(data, dict) else None
    template = data.get("badge_template") if isinstance(data, dict) else None
    if isinstance(badge, dict) and badge.get("recipient_email"):
        return f"credly-email:{str(badge['recipient_email']).strip().lower()}"
    if isinstance(template, dict) and template.get("id"):
        return f"credly-template:{template['id']}"
    return f"credly-event:{event_id}"


class EventCache:
    """Wraps a CredlyClient so ``get_event(id)`` answers from what the resolver just read (events
    are immutable records); everything else goes to the client."""

    def __init__(self, client: Any, *, size: int = 2000, ttl_s: float = 300.0) -> None:
        self._client = client
        self._size, self._ttl = size, ttl_s
        self._cache: collections.OrderedDict[str, tuple[float, Any]] = collections.OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_event(self, event_id: str) -> Any:
        hit = self._cache.get(event_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        data = await self._client.get_event(event_id)
        self._cache[event_id] = (time.monotonic(), data)
        self._cache.move_to_end(event_id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return data


# -- the worker ----------------------------------------------------------------------------------


class InboxWorker:
    """Drains the inbox (see the module docstring).

    ``ctx`` is the flows' ``FlowContext`` (its ``store`` is used by this loop's thread only).
    ``handlers`` maps kinds to handlers (default: ``flow_handlers()``); ``resolver`` resolves
    Credly notices (default ``resolve_credly``). ``clock`` returns an aware datetime (tests)."""

    def __init__(
        self,
        ctx: Any,
        *,
        handlers: dict[str, Handler] | None = None,
        resolver: Resolver | None = None,
        concurrency: int = 4,
        policy: inbox.RetryPolicy | None = None,
        lease_s: float = 120.0,
        poll_s: float = 1.0,
        grace_s: float = 10.0,
        owner: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.ctx = ctx
        self.store: Store = ctx.store
        self.handlers = handlers if handlers is not None else flow_handlers()
        self.resolver = resolver or resolve_credly
        self.concurrency = max(1, concurrency)
        self.policy = policy or inbox.RetryPolicy()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.grace_s = grace_s
        self.owner = owner or inbox.owner_id("worker")
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.in_hand: dict[int, asyncio.Task] = {}
        self.processed = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- waking ---------------------------------------------------------------------------
    def wake(self) -> None:
        """New rows were stored (any thread)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:
            pass

    # -- main -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        freed = inbox.release_dead_owners(self.store, max_attempts=self.policy.max_attempts, now=self.clock())
        if freed:
            log.info("returned %d inbox events left in hand by a stopped process to the queue", len(freed))
        tasks = [asyncio.create_task(self._lane(stop, n), name=f"inbox-worker-{n}") for n in range(self.concurrency)]
        tasks.append(asyncio.create_task(self._maintenance(stop), name="inbox-maintenance"))
        try:
            await stop.wait()
        finally:
            self._wake.set()
            # Rows in hand get grace_s to finish; then they are cancelled and released.
            lanes = tasks[:-1]
            done, pending = await asyncio.wait(lanes, timeout=self.grace_s) if lanes else (set(), set())
            for task in pending:
                task.cancel()
            tasks[-1].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _lane(self, stop: asyncio.Event, n: int) -> None:
        while not stop.is_set():
            rows = inbox.claim(self.store, self.owner, lease_s=self.lease_s, now=self.clock())
            if not rows:
                await self._idle(stop)
                continue
            row = rows[0]
            task = asyncio.current_task()
            assert task is not None
            self.in_hand[row["id"]] = task
            try:
                await self._process(row)
                # Finishing a row may free the next event of its learner for an idle lane.
                if self._wake is not None:
                    self._wake.set()
            except asyncio.CancelledError:
                inbox.release(self.store, row["id"], self.owner)
                log.info("released inbox event %s back to the queue (shutting down)", row["id"])
                raise
            finally:
                self.in_hand.pop(row["id"], None)
                self._close_stray_transaction()

    async def _idle(self, stop: asyncio.Event) -> None:
        assert self._wake is not None
        timeout = self.poll_s
        due = inbox.next_due(self.store)
        if due is not None:
            until_due = (due - self.clock()).total_seconds()
            if until_due > 0:  # rows already due but held back by their learner's order wait for a wake
                timeout = min(timeout, until_due)
        if self._wake.is_set() or stop.is_set():  # woken since the last claim: claim again now
            self._wake.clear()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _maintenance(self, stop: asyncio.Event) -> None:
        """Heartbeat the leases of rows in hand; return expired leases of others to the queue."""
        interval = max(0.05, self.lease_s / 3)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
            try:
                inbox.extend_lease(self.store, list(self.in_hand), self.owner, lease_s=self.lease_s, now=self.clock())
                freed = inbox.release_expired(self.store, max_attempts=self.policy.max_attempts, now=self.clock())
                if freed:
                    log.warning("inbox events %s had expired leases and went back to the queue", freed)
                    self.wake()
            except Exception:
                log.exception("inbox maintenance failed")

    def _close_stray_transaction(self) -> None:
        # A handler that wrote outside `store.write()` leaves sqlite3's implicit transaction open,
        # which would hold the write lock against the receiver; commit it.
        if self.store.conn.in_transaction:
            log.warning("a handler left a transaction open; committing it")
            self.store.conn.commit()

    # -- one event ------------------------------------------------------------------------
    async def _process(self, row: dict[str, Any]) -> None:
        item_id = row["id"]
        if row["learner_key"] == inbox.UNRESOLVED:
            try:
                key = await self.resolver(self.ctx, row)
            except Exception as exc:
                retryable = bool(getattr(exc, "retryable", False))
                self._failed(row, Outcome("failed", None, str(exc), retryable))
                return
            inbox.set_learner_key(self.store, item_id, self.owner, key)
            self.wake()  # it may be claimable at once
            return
        kind = inbox.event_kind(row["source"], row["event_type"])
        handler = self.handlers.get(kind or "")
        if handler is None:
            inbox.complete(self.store, item_id, self.owner, status="skipped",
                           note=f"no handler for {row['source']} event {row['event_type']}", now=self.clock())
            return
        try:
            outcome = outcome_of(await handler(self.ctx, row))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_expected(exc):  # explained (an API error, a busy database): its message is the reason
                log.warning("inbox event %s failed: %s", item_id, exc)
                outcome = Outcome("failed", None, str(exc), bool(getattr(exc, "retryable", False)))
            else:  # a bug: keep the traceback in the log
                log.exception("inbox event %s: the handler raised", item_id)
                outcome = Outcome("failed", None, f"{type(exc).__name__}: {exc}", bool(getattr(exc, "retryable", False)))
        self._close_stray_transaction()
        metrics.EVENTS.labels(_flow_of(row), outcome.status).inc()
        if outcome.status in ("done", "skipped"):
            inbox.complete(self.store, item_id, self.owner, status=outcome.status, run_id=outcome.run_id,
                           note=outcome.reason if outcome.status == "skipped" else "", now=self.clock())
            self.processed += 1
            return
        self._failed(row, outcome)

    def _failed(self, row: dict[str, Any], outcome: Outcome) -> None:
        now = self.clock()
        retry_at = self.policy.next_attempt(row["attempts"], retryable=outcome.retryable, now=now)
        inbox.record_failure(self.store, row["id"], self.owner, outcome.reason, retry_at=retry_at,
                             run_id=outcome.run_id, now=now)
        if retry_at is not None:
            log.info("inbox event %s failed (attempt %d), retrying at %s: %s", row["id"], row["attempts"],
                     inbox.stamp(retry_at), outcome.reason)
            self._notify_service_problem(row, outcome)
            return
        log.warning("inbox event %s failed after %d attempts: %s", row["id"], row["attempts"], outcome.reason)
        self._notify_failed(row, outcome)

    def _notify_service_problem(self, row: dict[str, Any], outcome: Outcome) -> None:
        """A first attempt failed because the service or its credentials are broken (401, 5xx,
        no response): show the problem now (issue 16), not after the last retry; not mailed — the
        final failure is."""
        from services.store import notifications

        cause = notifications.cause_of(outcome.reason)
        if row["attempts"] != 1 or not notifications.is_service_wide(cause):
            return
        try:
            notifications.create_notification(
                self.store, "error", f"Webhook event {row['id']} failed, will be retried: {row['event_type']}",
                body=f"Reason: {outcome.reason}", flow=_flow_of(row), run_id=outcome.run_id, object=describe(row),
                cause=cause, service_message=_service_message(outcome.reason), mail_status="not_mailed",
            )
        except Exception:
            log.exception("could not store the problem notification of inbox event %s", row["id"])

    def _notify_failed(self, row: dict[str, Any], outcome: Outcome) -> None:
        from services.store import notifications

        lines = []
        if outcome.run_id is not None:
            lines = [
                r[0]
                for r in self.store.conn.execute(
                    "SELECT message FROM run_log WHERE run_id = ? AND level = 'error' ORDER BY id LIMIT 10",
                    (outcome.run_id,),
                )
            ]
        what = describe(row)
        body = [
            f"The webhook event {what} failed after {row['attempts']} attempt{'s' if row['attempts'] != 1 else ''} "
            f"and is left in the inbox as failed (W3).",
            f"Reason: {outcome.reason}",
        ]
        if outcome.run_id is not None:
            body.append(f"Run: {outcome.run_id}")
        if lines:
            body += ["", "Errors:"] + [f"- {line}" for line in lines]
        body += ["", "Fix the cause (see the console's Problems), then retry the event from the console's Inbox "
                 f"or with `credly-console inbox retry {row['id']}`."]
        try:
            notifications.create_notification(
                self.store, "error", f"Webhook event {row['id']} failed: {row['event_type']}",
                body="\n".join(body), flow=_flow_of(row), run_id=outcome.run_id, object=what,
                cause=notifications.cause_of(outcome.reason), service_message=_service_message(outcome.reason),
            )
        except Exception:
            log.exception("could not store the failure notification of inbox event %s", row["id"])


def _service_message(reason: str) -> str:
    """The service's own words inside an API failure's text ('' when the reason is not one)."""
    return reason.split("): ", 1)[1] if "): " in reason else ""


def _flow_of(row: dict[str, Any]) -> str:
    return {
        "course_completion": "course_completion",
        "certification": "certification",
        "badge": "badge_event",
        "template": "template_event",
    }.get(inbox.event_kind(row["source"], row["event_type"]) or "", "")


def describe(row: dict[str, Any]) -> str:
    """A short human description of an inbox row's event, e.g. ``Docebo course.enrollment.completed
    (user 12, course 77)``."""
    data = row.get("data")
    if data is None:
        import json

        data = json.loads(row["payload"])
    source = "Docebo" if row["source"] == "docebo" else "Credly"
    parts = []
    for key, label in (("user_id", "user"), ("course_id", "course"), ("certification_code", "certification"),
                       ("award_id", "award"), ("id", "event")):
        if key in data and data[key] not in (None, ""):
            parts.append(f"{label} {data[key]}")
    return f"{source} {row['event_type']}" + (f" ({', '.join(parts)})" if parts else "")
