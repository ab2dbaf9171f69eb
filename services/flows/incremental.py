"""Incremental batches: F7 and F6 read only what changed since their last good run (issue 8).

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from services.core.errors import ValidationError
from services.flows import rules

log = logging.getLogger("services.flows.incremental")

# Bump when the decision code changes what a run would do: the next run is full. 2: issue 12 (O1-O5, E1, F3c).
VERSION = 2
OVERLAP = dt.timedelta(minutes=2)
IGNORED_TOLERANCE = dt.timedelta(days=1)
REPROBE_AFTER = dt.timedelta(days=7)
# What a run processed is skipped by the next run only if it changed at least this long before the
# run started: a second change of the object in the same (whole) second as the first, after the run
# read it, would carry the same timestamp (Docebo has whole seconds; the service's servers' clocks
# may differ by a few seconds).
SKIP_MARGIN = dt.timedelta(seconds=10)
MAX_TOUCHED = 500
IGNORED_KEY = "incremental.filter_ignored"
SERVICE_NAMES = {"docebo": "Docebo", "credly": "Credly"}


def state_key(flow: str) -> str:
    return f"incremental.{flow}"


class FilterIgnored(Exception):
    """A changed-since read answered with items the filter should have left out."""

    def __init__(self, service: str, source: str, detail: str) -> None:
        self.service, self.source, self.detail = service, source, detail
        super().__init__(f"{SERVICE_NAMES.get(service, service)} ignores the changed-since filter on {source}: {detail}")


def fingerprint(components: dict[str, Any]) -> dict[str, str]:
    """A short hash per component (so a log line can say which one changed)."""
    out = {"decision code": str(VERSION)}
    for name, value in components.items():
        text = json.dumps(value, sort_keys=True, default=str)
        out[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso_precise(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(text: Any) -> dt.datetime | None:
    return rules.parse_datetime(text) if text else None


def _parse_stamp(text: str) -> dt.datetime:
    """A timestamp this module wrote (`_iso`, `_iso_precise`): it always parses."""
    moment = rules.parse_datetime(text)
    if moment is None:
        raise ValueError(f"not a timestamp: {text!r}")
    return moment


def read_state(store: Any, flow: str) -> dict[str, Any] | None:
    raw = store.get_meta(state_key(flow))
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("version") == VERSION else None


def ignored_services(store: Any) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(store.get_meta(IGNORED_KEY) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def gather(*aws: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run concurrently; on the first failure cancel the rest and raise that failure itself (a
    FilterIgnored first), not an ExceptionGroup."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(a) for a in aws]
    except BaseExceptionGroup as eg:  # noqa: F821 - builtin in 3.11
        flat: list[BaseException] = []

        def walk(e: BaseException) -> None:
            if isinstance(e, BaseExceptionGroup):  # noqa: F821
                for sub in e.exceptions:
                    walk(sub)
            else:
                flat.append(e)

        walk(eg)
        flat.sort(key=lambda e: 0 if isinstance(e, FilterIgnored) else 1)
        raise flat[0] from None
    return [t.result() for t in tasks]


@dataclasses.dataclass
class Incremental:
    """The mode and watermark of one batch run (module doc). Create with `begin()`."""

    job: Any
    flow: str
    clients: dict[str, Any]
    prints: dict[str, str]
    mode: str = "full"
    reason: str = ""
    since: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)
    previous: dict[str, Any] | None = None
    changes: dict[str, int] = dataclasses.field(default_factory=dict)
    # (source → item key → timestamp) of the changes this run processed, and those the previous
    # run processed inside the overlap (skipped when they come back unchanged).
    seen: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    done_before: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    started_mono: float = 0.0
    started_wall: dt.datetime | None = None

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    # -- start ----------------------------------------------------------------------------
    @classmethod
    def begin(cls, job: Any, flow: str, clients: dict[str, Any], components: dict[str, Any]) -> Incremental:
        """Decide full or incremental, say so in the run's first log line and in its summary,
        and (real runs) register the watermark's commit for when the run ends well."""
        inc = cls(job, flow, clients, fingerprint(components))
        inc.started_mono = time.monotonic()
        inc.started_wall = dt.datetime.now(dt.UTC)
        inc._decide()
        if inc.incremental:
            bounds = ", ".join(
                f"{SERVICE_NAMES.get(s, s)} since {_iso(t)}" for s, t in sorted(inc.since.items())
            )
            prev = inc.previous or {}
            job.rec.info(
                f"incremental run: only changes ({bounds}; watermark of run {prev.get('run_id')} "
                f"minus {int(OVERLAP.total_seconds())} s, last full run {prev.get('full_run_id')})"
            )
        else:
            job.rec.info(f"full run: {inc.reason}")
        job.rec.mode = inc.mode
        if not job.dry_run:
            job.after_success.append(inc.commit)
        return inc

    def _decide(self) -> None:
        job = self.job
        state = read_state(job.store, self.flow)
        self.previous = state
        if getattr(job, "full", False):
            self.reason = "asked for (--full)"
            return
        if state is None:
            self.reason = "no earlier full run to continue from"
            return
        old = state.get("fingerprint") or {}
        differ = sorted(k for k in set(old) | set(self.prints) if old.get(k) != self.prints.get(k))
        if differ:
            self.reason = "changed since the last full run: " + ", ".join(differ)
            return
        ignored = self._ignored()
        if ignored:
            self.reason = ignored
            return
        full_at = _parse(state.get("full_at"))
        due = _daily_reconciliation(job.ctx.now())
        if full_at is None or (due is not None and full_at < due):
            self.reason = "the daily full reconciliation (first run after 02:00 America/Los_Angeles)"
            return
        bounds = state.get("bounds") or {}
        for service in self.clients:
            moment = _parse(bounds.get(service))
            if moment is None:
                self.reason = f"no watermark for {SERVICE_NAMES.get(service, service)}"
                return
            self.since[service] = moment - OVERLAP
        self.plan = json.loads(json.dumps(state.get("plan") or {}))
        recent = state.get("recent") or {}
        self.done_before = {src: dict(v) for src, v in recent.items() if isinstance(v, dict)}
        self.mode = "incremental"

    def _ignored(self) -> str:
        marks = ignored_services(self.job.store)
        now = dt.datetime.now(dt.UTC)
        for service, client in self.clients.items():
            mark = marks.get(service)
            if not isinstance(mark, dict):
                continue
            at = _parse(mark.get("at"))
            same_tenant = str(mark.get("base_url") or "") == str(getattr(client, "base_url", "") or "")
            if at is not None and same_tenant and now - at < REPROBE_AFTER:
                return (
                    f"{SERVICE_NAMES.get(service, service)} ignores the changed-since filter on "
                    f"{mark.get('source')} (found by run {mark.get('run_id')} on {at.date()}; tried again "
                    f"after {REPROBE_AFTER.days} days)"
                )
        return ""

    # -- during the run -------------------------------------------------------------------
    async def changed(self, items: AsyncIterator[dict[str, Any]], service: str, source: str, field: str,
                      key: Any) -> AsyncIterator[dict[str, Any]]:
        """The items of a changed-since read that changed at or after the bound, less those the
        previous run already processed with the same timestamp (`key(item)` names an item).
        Items are checked, never trusted: one updated well before the bound (or without `field`)
        means the service ignored the filter → FilterIgnored."""
        since = self.since[service]
        floor = since - IGNORED_TOLERANCE
        done = self.done_before.get(source, {})
        seen = self.seen.setdefault(source, {})
        iterator = items.__aiter__()
        while True:
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except ValidationError as exc:  # 400/422: this tenant does not take the filter
                raise FilterIgnored(service, source, f"the filtered read was refused ({exc.status}: {exc.message})") from exc
            moment = rules.parse_datetime(item.get(field))
            if moment is None:
                raise FilterIgnored(service, source, f"its items carry no {field}")
            if moment < floor:
                raise FilterIgnored(service, source, f"an item updated {_iso(moment)} came back for changes since {_iso(since)}")
            if moment < since:
                continue
            name, stamp = str(key(item)), _iso_precise(moment)
            seen[name] = stamp
            if done.get(name) == stamp:
                continue
            self.changes[source] = self.changes.get(source, 0) + 1
            yield item

    def to_full(self, reason: str) -> None:
        """Continue this run as a full run (before it has changed anything)."""
        self.mode = "full"
        self.reason = reason
        self.plan = {}
        self.job.rec.mode = "full"
        self.job.rec.info(f"full run from here: {reason}")

    def fallback(self, exc: FilterIgnored) -> None:
        """The tenant ignores a filter: remember it (real runs), say so once, go full."""
        job = self.job
        job.rec.warning(
            f"{exc}. Incremental mode falls back to full reads for this "
            f"{SERVICE_NAMES.get(exc.service, exc.service)} tenant (tried again after {REPROBE_AFTER.days} days)"
        )
        if not job.dry_run:
            marks = ignored_services(job.store)
            marks[exc.service] = {
                "source": exc.source,
                "detail": exc.detail,
                "run_id": job.run_id,
                "at": _iso(dt.datetime.now(dt.UTC)),
                "base_url": str(getattr(self.clients.get(exc.service), "base_url", "") or ""),
            }
            with job.store.write():
                job.store.set_meta(IGNORED_KEY, json.dumps(marks, sort_keys=True))
        self.to_full(f"{SERVICE_NAMES.get(exc.service, exc.service)} ignores the changed-since filter")

    # -- end --------------------------------------------------------------------------------
    def service_time_at_start(self, service: str) -> tuple[dt.datetime, str]:
        """The service's time when this run started (lower bound), and where it came from."""
        clock = getattr(self.clients.get(service), "service_clock", None)
        moment = clock.at(self.started_mono) if clock is not None else None
        if moment is not None:
            return moment.replace(microsecond=0), "Date header"
        log.warning("%s sent no Date header: the watermark of %s uses this computer's clock",
                    SERVICE_NAMES.get(service, service), self.flow)
        assert self.started_wall is not None
        return self.started_wall.replace(microsecond=0), "local clock"

    def commit(self) -> None:
        """After the run ended `succeeded` with no failed item (never for a dry run)."""
        job = self.job
        prev = self.previous or {}
        bounds, sources = {}, {}
        for service in self.clients:
            moment, source = self.service_time_at_start(service)
            bounds[service], sources[service] = _iso(moment), source
        # What this run processed inside the next run's overlap (never for a full run: its reads
        # are not tracked item by item, so the first incremental run after it reads them again).
        recent: dict[str, dict[str, str]] = {}
        if self.incremental:
            started = min(_parse_stamp(b) for b in bounds.values())
            low, high = started - OVERLAP, started - SKIP_MARGIN
            for source, items in self.seen.items():
                kept = {k: t for k, t in items.items() if low <= _parse_stamp(t) <= high}
                if kept:
                    recent[source] = kept
        state = {
            "version": VERSION,
            "flow": self.flow,
            "run_id": job.run_id,
            "bounds": bounds,
            "clock": sources,
            "plan": self.plan,
            "recent": recent,
        }
        if self.incremental:
            state.update(fingerprint=prev.get("fingerprint"), full_run_id=prev.get("full_run_id"),
                         full_at=prev.get("full_at"))
        else:
            state.update(fingerprint=self.prints, full_run_id=job.run_id, full_at=_iso(job.ctx.now()))
        with job.store.write():
            job.store.set_meta(state_key(self.flow), json.dumps(state, sort_keys=True))


def begin(job: Any, flow: str, clients: dict[str, Any], components: dict[str, Any]) -> Incremental:
    return Incremental.begin(job, flow, clients, components)


def _daily_reconciliation(now: dt.datetime) -> dt.datetime | None:
    """The latest 02:00 America/Los_Angeles (F1's daily time) not after `now`."""
    from services.core.schedule import last_occurrence

    try:
        return last_occurrence("templates", now)
    except Exception:  # pragma: no cover - a scheduler without the job
        return None
