"""What every flow shares: its context, the run wrapper (record, lock, gate, settings, errors),
and bounded concurrent iteration with cancellation between items.

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from services.core.errors import CredlyConsoleError, is_expected
from services.core.flow_types import Callbacks, Cancelled, RunSummary
from services.flows import rules
from services.store import notifications
from services.store.db import Store
from services.store.locks import FlowBusyError, acquire_lock, release_lock
from services.store.runs import RunRecorder
from services.store.settings import SettingsSnapshot, configuration_problems, read_settings

T = TypeVar("T")
log = logging.getLogger("services.flows")

# Upper bound of concurrent items when a client does not say (`client.concurrency`).
DEFAULT_CONCURRENCY = 8


@dataclasses.dataclass
class FlowContext:
    """What a flow runs against: the store (used from the flow's thread only) and the two async
    clients (either may be None for a flow that does not need it; the flow then fails with a
    clear reason). `now` is injectable for tests."""

    store: Store
    credly: Any = None
    docebo: Any = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


class FlowFailed(CredlyConsoleError):
    """The flow could not do its job; the message is the run's reason."""


class Job:
    """One running flow: the context, its run recorder, the settings snapshot and helpers."""

    def __init__(
        self,
        ctx: FlowContext,
        rec: RunRecorder,
        settings: SettingsSnapshot,
        *,
        dry_run: bool,
        batch: bool,
        notify: bool,
        full: bool = False,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.rec = rec
        self.settings = settings
        self.dry_run = dry_run
        self.batch = batch
        self.notify = notify
        self.errors = 0
        # F6/F7: a full run was asked for (`--full`); otherwise services/flows/incremental.py decides.
        self.full = full
        # Called once the run has ended `succeeded` with no failed item (e.g. the watermark of
        # an incremental batch is committed then, never earlier).
        self.after_success: list[Callable[[], None]] = []
        # T does not change during a run: read once, on first use (docebo_to_credly._template_name).
        self.template_rows_cache: dict[str, dict[str, Any]] | None = None

    @property
    def run_id(self) -> int:
        return self.rec.id

    @property
    def credly(self) -> Any:
        if self.ctx.credly is None:
            raise FlowFailed("no Credly connection is configured for this flow")
        return self.ctx.credly

    @property
    def docebo(self) -> Any:
        if self.ctx.docebo is None:
            raise FlowFailed("no Docebo connection is configured for this flow")
        return self.ctx.docebo

    # -- reporting ------------------------------------------------------------------------
    def action(self, action: str, obj: str, message: str) -> None:
        """A write performed, or in a dry run planned (the message then starts 'would')."""
        self.rec.action(action, obj, ("would " + message) if self.dry_run else message)

    def skip(self, obj: str, message: str, *, level: str = "info") -> None:
        self.rec.count("skipped")
        self.rec.log(message, level=level, object=obj)

    def item_failed(self, obj: str, exc: BaseException, *, what: str) -> None:
        """An item could not be processed: error line, `failed` count, notification (N1)."""
        self.errors += 1
        self.rec.count("failed")
        self.rec.retryable = self.rec.retryable or bool(getattr(exc, "retryable", False))
        detail = str(exc) if is_expected(exc) else f"{type(exc).__name__}: {exc}"
        self.rec.error(f"{what} failed: {detail}", object=obj)
        if self.notify:
            notifications.notify_exception(
                self.store,
                exc,
                title=f"{what} failed",
                flow=self.rec.flow,
                run_id=self.rec.id,
                object=obj,
                in_digest=self.batch,
            )

    def check_cancel(self) -> None:
        self.rec.check_cancel()

    # -- concurrency ----------------------------------------------------------------------
    def concurrency(self, *clients: Any) -> int:
        """How many items to work on at once: the clients' concurrency bound (HttpPolicy)."""
        bounds = []
        for c in clients:
            value = getattr(getattr(c, "policy", None), "concurrency", None)
            if isinstance(value, int) and value > 0:
                bounds.append(value)
        return max(1, min(bounds)) if bounds else DEFAULT_CONCURRENCY

    async def for_each(
        self,
        items: Iterable[T],
        worker: Callable[[T], Awaitable[None]],
        *,
        limit: int,
        progress: bool = True,
    ) -> None:
        """Run `worker(item)` for every item, at most `limit` at once, in order of start.

        Cancellation is checked before each item starts; once requested, no new item starts,
        the ones in flight finish, then `Cancelled` is raised. A worker must handle its own item
        errors (`item_failed`); anything it lets escape stops the iteration and propagates."""
        pending: set[asyncio.Task] = set()
        failure: BaseException | None = None
        cancelled = False
        try:
            for item in items:
                if self.rec.cancel_requested():
                    cancelled = True
                    break
                while len(pending) >= limit:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    failure = failure or _first_error(done)
                    if progress:
                        self.rec.advance(len(done))
                if failure:
                    break
                pending.add(asyncio.ensure_future(worker(item)))
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failure = failure or _first_error(done)
                if progress:
                    self.rec.advance(len(done))
        finally:
            for task in pending:  # only on an outer cancellation
                task.cancel()
        if failure:
            raise failure
        if cancelled:
            raise Cancelled()


def _first_error(done: set[asyncio.Task]) -> BaseException | None:
    for task in done:
        exc = task.exception()
        if exc is not None:
            return exc
    return None


async def collect(aiter: AsyncIterator[T], job: Job | None = None) -> list[T]:
    """Read every item of an async iterator (every page), checking cancellation per item."""
    out: list[T] = []
    async for item in aiter:
        out.append(item)
        if job is not None and len(out) % 200 == 0:
            job.check_cancel()
    return out


async def execute(
    ctx: FlowContext,
    flow: str,
    body: Callable[[Job], Awaitable[None]],
    *,
    dry_run: bool = False,
    trigger: str = "cli",
    callbacks: Callbacks | None = None,
    parent_run_id: int | None = None,
    lock: bool = True,
    batch: bool = True,
    notify: bool = True,
    full: bool = False,
) -> RunSummary:
    """Run a flow body inside its run record (see the module docstring). `full`: F6/F7 read
    everything instead of only what changed (services/flows/incremental.py)."""
    store = ctx.store
    key = rules.flow_key(flow)
    rec = RunRecorder.start(
        store, key, trigger=trigger, dry_run=dry_run, parent_run_id=parent_run_id, callbacks=callbacks
    )
    locked = False
    try:
        if lock:
            try:
                acquire_lock(store, key, rec.id)
                locked = True
            except FlowBusyError as exc:
                rec.warning(str(exc))
                summary = rec.finish("skipped", reason=str(exc))
                summary.busy = True
                return summary
        settings = read_settings(store)
        reason = rules.gate_reason(key, settings.integration_master)
        if reason:
            rec.info(reason)
            return rec.finish("skipped", reason=reason)
        problems = configuration_problems(store, list(rules.required_settings(key)))
        if problems:
            reason = "blocked by the configuration (S3): " + "; ".join(p.message for p in problems)
            for p in problems:
                rec.error(p.message, object=f"setting {p.key}")
            if notify:
                notifications.notify_config_problem(
                    store, f"{key} flow blocked by the configuration", reason, flow=key, run_id=rec.id
                )
            return rec.finish("failed", reason=reason)
        job = Job(ctx, rec, settings, dry_run=dry_run, batch=batch, notify=notify, full=full)
        try:
            await body(job)
        except Cancelled:
            rec.warning("cancelled by the user; items already done stay done")
            return rec.finish("cancelled", reason="cancelled")
        except Exception as exc:
            if is_expected(exc):  # explained (API error, FlowFailed, a busy database...): its message
                rec.retryable = bool(getattr(exc, "retryable", False))
                rec.error(f"the flow could not finish: {exc}")
                reason = str(exc)
            else:  # a bug: record it with its traceback, never lose the run
                rec.error(f"unexpected error: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                reason = f"unexpected error: {type(exc).__name__}: {exc}"
            if notify:
                notifications.notify_exception(
                    store, exc, title=f"{key} flow failed", flow=key, run_id=rec.id, in_digest=batch
                )
            return rec.finish("failed", reason=reason)
        summary = rec.finish("succeeded")
        if not summary.counts.get("failed") and not dry_run:
            for hook in job.after_success:
                try:
                    hook()
                except Exception:  # the run is done; not advancing only means reading again
                    log.exception("after the run %s of %s: could not record its end state", rec.id, key)
        return summary
    except BaseException as exc:  # asyncio cancellation, KeyboardInterrupt: close the row
        if rec.status == "running":
            rec.finish("cancelled" if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) else "failed",
                       reason=f"stopped: {type(exc).__name__}")
        raise
    finally:
        if locked:
            release_lock(store, key, rec.id)
        if batch:
            notifications.close_digest(store, rec.id, flow=key)
