"""The webhook inbox (W2, W3): durable storage of every delivery, leasing for workers, retries.

Design notes: docs/design/store.md
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

from services.core.errors import EXIT_USAGE, CredlyConsoleError
from services.store.db import Store, Where

# -- what the receiver accepts -------------------------------------------------------------------

SOURCES = ("docebo", "credly")
STATUSES = ("queued", "processing", "done", "failed", "skipped")
OPEN_STATUSES = ("queued", "processing")

# W1: Docebo groups at most 25 events of one type in one delivery (docebo.md §7.1).
MAX_GROUPED = 25
MAX_ID_LENGTH = 200

UNRESOLVED = "?"

# Event type → the kind of handling it gets (the worker's handler table is keyed by kind).
DOCEBO_EVENT_KINDS: dict[str, str] = {
    "course.enrollment.completed": "course_completion",  # F3
    "certification.awarded": "certification",  # F4
    "certification.updated": "certification",
    "certification.revoked": "certification",
}
CREDLY_EVENT_KINDS: dict[str, str] = {
    "badge.created": "badge",  # F5
    "badge.state.changed": "badge",
    "badge.deleted": "badge",
    "badge_template.created": "template",  # F1 for one template
    "badge_template.changed": "template",
    "badge_template.deleted": "template",
}


def event_kind(source: str, event_type: str) -> str | None:
    """The handler kind of an event, or None when the product does nothing with it."""
    table = DOCEBO_EVENT_KINDS if source == "docebo" else CREDLY_EVENT_KINDS
    return table.get(event_type)


class DeliveryError(CredlyConsoleError, ValueError):
    """A delivery body the receiver refuses (W2: 4xx, nothing stored). ``reason`` is one of
    ``malformed`` or ``foreign_organization``; the message says what is wrong without echoing
    the body."""

    exit_code = EXIT_USAGE

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class NewItem:
    """One row to insert."""

    source: str
    delivery_key: str
    event_type: str
    learner_key: str
    payload: dict[str, Any]
    status: str = "queued"
    last_error: str = ""


def _nonempty_str(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != "" and len(value) <= MAX_ID_LENGTH


def docebo_learner_key(payload: dict[str, Any]) -> str:
    user_id = payload.get("user_id")
    if isinstance(user_id, bool) or user_id in (None, ""):
        return ""
    return f"docebo-user:{str(user_id).strip()}"


def parse_docebo_delivery(body: Any) -> list[NewItem]:
    """W1/W2: a Docebo webhook body → one ``NewItem`` per event (``payload`` or ``payloads``).

    Raises ``DeliveryError("malformed", ...)`` when the body is not a webhook message."""
    if not isinstance(body, dict):
        raise DeliveryError("malformed", "the body is not a JSON object")
    message_id = body.get("message_id")
    if not _nonempty_str(message_id):
        raise DeliveryError("malformed", "message_id is missing or not a non-empty string")
    event = body.get("event")
    if not _nonempty_str(event):
        raise DeliveryError("malformed", "event is missing or not a non-empty string")
    has_single, has_group = "payload" in body, "payloads" in body
    if has_single and has_group:
        raise DeliveryError("malformed", "the body has both payload and payloads")
    if has_single:
        items = [body["payload"]]
    elif has_group:
        items = body["payloads"]
        if not isinstance(items, list) or not items:
            raise DeliveryError("malformed", "payloads is not a non-empty list")
        if len(items) > MAX_GROUPED:
            raise DeliveryError("malformed", f"payloads holds {len(items)} events; at most {MAX_GROUPED} are allowed")
    else:
        raise DeliveryError("malformed", "the body has neither payload nor payloads")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise DeliveryError("malformed", f"payload {n} is not a JSON object")
    kind = event_kind("docebo", event)
    out = []
    for n, item in enumerate(items):
        out.append(
            NewItem(
                source="docebo",
                delivery_key=f"docebo:{message_id}:{n}",
                event_type=event,
                learner_key=docebo_learner_key(item),
                payload=item,
                status="queued" if kind else "skipped",
                last_error="" if kind else f"no handler for Docebo event {event}",
            )
        )
    return out


def parse_credly_notice(body: Any, organization_id: str) -> NewItem:
    """W1/W2: a Credly thin notice ``{id, organization_id, event_type, occurred_at}`` → one item.

    Raises ``DeliveryError("malformed")`` or ``DeliveryError("foreign_organization")``."""
    if not isinstance(body, dict):
        raise DeliveryError("malformed", "the body is not a JSON object")
    event_id = body.get("id")
    if not _nonempty_str(event_id):
        raise DeliveryError("malformed", "id is missing or not a non-empty string")
    event_type = body.get("event_type")
    if not _nonempty_str(event_type):
        raise DeliveryError("malformed", "event_type is missing or not a non-empty string")
    org = body.get("organization_id")
    if not _nonempty_str(org):
        raise DeliveryError("malformed", "organization_id is missing or not a non-empty string")
    if "occurred_at" in body and not isinstance(body["occurred_at"], str):
        raise DeliveryError("malformed", "occurred_at is not a string")
    if org.strip().lower() != organization_id.strip().lower():
        raise DeliveryError("foreign_organization", f"the notice is for organization {org}, not the configured one")
    kind = event_kind("credly", event_type)
    notice = {k: body[k] for k in ("id", "organization_id", "event_type", "occurred_at") if k in body}
    return NewItem(
        source="credly",
        delivery_key=f"credly:{event_id}",
        event_type=event_type,
        learner_key=UNRESOLVED if kind else "",
        payload=notice,
        status="queued" if kind else "skipped",
        last_error="" if kind else f"no handler for Credly event {event_type}",
    )


# -- time ----------------------------------------------------------------------------------------


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """A datetime as the store writes timestamps (ISO UTC, milliseconds, Z), so SQL compares
    them as strings."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- writing -------------------------------------------------------------------------------------


_INSERT = (
    "INSERT OR IGNORE INTO inbox (source, delivery_key, event_type, learner_key, payload, received_at, "
    "status, last_error, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_items(store: Store, items: Sequence[NewItem], *, now: dt.datetime | None = None) -> list[bool]:
    """Insert rows (one transaction); for each item True if new, False if a duplicate (W2)."""
    at = stamp(_now(now))
    out = []
    with store.write():
        for item in items:
            cur = store.conn.execute(
                _INSERT,
                (
                    item.source,
                    item.delivery_key,
                    item.event_type,
                    item.learner_key,
                    json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False),
                    at,
                    item.status,
                    item.last_error,
                    at if item.status == "skipped" else None,
                ),
            )
            out.append(cur.rowcount == 1)
    return out


# -- leasing -------------------------------------------------------------------------------------


def owner_id(tag: str = "") -> str:
    """A lease owner name: ``<host>:<pid>[:<tag>]`` (the pid lets a restart free a dead owner's rows)."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{tag}" if tag else base


_CLAIMABLE = """
SELECT i.id FROM inbox i
WHERE i.status = 'queued'
  AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= :now)
  AND (
        i.learner_key IN ('', '?')
        OR (
            NOT EXISTS (SELECT 1 FROM inbox j
                        WHERE j.learner_key = i.learner_key AND j.id < i.id
                          AND j.status IN ('queued', 'processing'))
            AND NOT EXISTS (SELECT 1 FROM inbox k
                            WHERE k.learner_key = '?' AND k.source = i.source AND k.id < i.id
                              AND k.status IN ('queued', 'processing'))
        )
      )
ORDER BY i.id
LIMIT :limit
"""


def claim(
    store: Store, owner: str, *, lease_s: float = 120.0, limit: int = 1, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` rows that may be processed now (in order per learner) to ``owner``.

    Each claimed row becomes ``processing`` with ``attempts`` + 1 and a lease until now +
    ``lease_s``. Returns the rows (``payload`` decoded into ``data``)."""
    moment = _now(now)
    at, until = stamp(moment), stamp(moment + dt.timedelta(seconds=lease_s))
    with store.write():
        ids = [r[0] for r in store.conn.execute(_CLAIMABLE, {"now": at, "limit": limit})]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        store.conn.execute(
            f"UPDATE inbox SET status = 'processing', attempts = attempts + 1, lease_owner = ?, "
            f"lease_until = ? WHERE id IN ({marks})",
            (owner, until, *ids),
        )
        rows = list(store.db.query(f"SELECT * FROM inbox WHERE id IN ({marks}) ORDER BY id", ids))
    for row in rows:
        row["data"] = json.loads(row["payload"])
    return rows


def extend_lease(store: Store, ids: Iterable[int], owner: str, *, lease_s: float = 120.0,
                 now: dt.datetime | None = None) -> int:
    """Renew the lease of rows this owner is processing (a heartbeat); returns how many."""
    ids = list(ids)
    if not ids:
        return 0
    until = stamp(_now(now) + dt.timedelta(seconds=lease_s))
    with store.write():
        return store.conn.execute(
            f"UPDATE inbox SET lease_until = ? WHERE status = 'processing' AND lease_owner = ? "
            f"AND id IN ({','.join('?' * len(ids))})",
            (until, owner, *ids),
        ).rowcount


def _finish(store: Store, item_id: int, owner: str, sets: str, params: Sequence[Any]) -> bool:
    with store.write():
        cur = store.conn.execute(
            f"UPDATE inbox SET {sets}, lease_owner = '', lease_until = NULL "
            "WHERE id = ? AND status = 'processing' AND lease_owner = ?",
            (*params, item_id, owner),
        )
        return cur.rowcount == 1


def complete(store: Store, item_id: int, owner: str, *, status: str = "done", run_id: int | None = None,
             note: str = "", now: dt.datetime | None = None) -> bool:
    """The worker is done with a row: ``done`` (processed) or ``skipped`` (gated off, nothing to
    do; ``note`` says why). False if this owner no longer held the lease."""
    if status not in ("done", "skipped"):
        raise ValueError(f"complete() takes done or skipped, not {status!r}")
    return _finish(
        store, item_id, owner,
        "status = ?, processed_at = ?, run_id = COALESCE(?, run_id), last_error = ?, next_attempt_at = NULL",
        (status, stamp(_now(now)), run_id, note),
    )


def record_failure(store: Store, item_id: int, owner: str, error: str, *, retry_at: dt.datetime | None,
                   run_id: int | None = None, now: dt.datetime | None = None) -> bool:
    """A failed attempt (W3): back to ``queued`` until ``retry_at``, or ``failed`` when
    ``retry_at`` is None (the last try). The reason is kept in ``last_error``."""
    if retry_at is None:
        return _finish(
            store, item_id, owner,
            "status = 'failed', last_error = ?, processed_at = ?, next_attempt_at = NULL, run_id = COALESCE(?, run_id)",
            (error, stamp(_now(now)), run_id),
        )
    return _finish(
        store, item_id, owner,
        "status = 'queued', last_error = ?, next_attempt_at = ?, run_id = COALESCE(?, run_id)",
        (error, stamp(retry_at), run_id),
    )


def release(store: Store, item_id: int, owner: str) -> bool:
    """Give a row back untouched (shutdown): ``queued`` again, this attempt not counted."""
    return _finish(store, item_id, owner, "status = 'queued', attempts = MAX(attempts - 1, 0)", ())


def set_learner_key(store: Store, item_id: int, owner: str, learner_key: str) -> bool:
    """A Credly row's learner is now known: store it and put the row back in the queue (the
    resolution does not count as an attempt)."""
    if not learner_key or learner_key == UNRESOLVED:
        raise ValueError("a resolved learner key must be a real key")
    return _finish(
        store, item_id, owner, "status = 'queued', learner_key = ?, attempts = MAX(attempts - 1, 0)", (learner_key,)
    )


def release_expired(store: Store, *, max_attempts: int, now: dt.datetime | None = None) -> list[int]:
    """Rows whose lease ran out (their worker died or hung) go back to the queue; a row that has
    already used ``max_attempts`` attempts becomes ``failed`` instead. Returns the ids freed."""
    at = stamp(_now(now))
    with store.write():
        rows = store.conn.execute(
            "SELECT id, attempts FROM inbox WHERE status = 'processing' AND lease_until < ?", (at,)
        ).fetchall()
        for item_id, attempts in rows:
            _expire(store, item_id, attempts, max_attempts, at, "its lease expired")
    return [r[0] for r in rows]


def _expire(store: Store, item_id: int, attempts: int, max_attempts: int, at: str, why: str) -> None:
    if attempts >= max_attempts:
        store.conn.execute(
            "UPDATE inbox SET status = 'failed', lease_owner = '', lease_until = NULL, processed_at = ?, "
            "last_error = ? WHERE id = ?",
            (at, f"the worker stopped while processing it ({why}) {attempts} times; not retried again", item_id),
        )
    else:
        store.conn.execute(
            "UPDATE inbox SET status = 'queued', lease_owner = '', lease_until = NULL, next_attempt_at = NULL "
            "WHERE id = ?",
            (item_id,),
        )


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def release_dead_owners(store: Store, *, max_attempts: int, live_owners: Iterable[str] = (),
                        now: dt.datetime | None = None) -> list[int]:
    """At start-up: rows leased by a process of this host that no longer runs (SIGKILL, power
    loss) go back to the queue at once instead of waiting for their lease to expire. Owners in
    ``live_owners`` (this process's own workers) are left alone."""
    host = socket.gethostname()
    live = set(live_owners)
    at = stamp(_now(now))
    freed = []
    with store.write():
        rows = store.conn.execute(
            "SELECT id, attempts, lease_owner FROM inbox WHERE status = 'processing'"
        ).fetchall()
        for item_id, attempts, owner in rows:
            if owner in live:
                continue
            parts = owner.split(":")
            if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            if pid == os.getpid() or _pid_alive(pid):
                continue
            _expire(store, item_id, attempts, max_attempts, at, "its process ended")
            freed.append(item_id)
    return freed


# -- admin ---------------------------------------------------------------------------------------


def retry(store: Store, item_id: int) -> bool:
    """W3: an admin retries one failed (or skipped) row: queued now, attempts from zero."""
    with store.write():
        return store.conn.execute(
            "UPDATE inbox SET status = 'queued', attempts = 0, next_attempt_at = NULL, processed_at = NULL "
            "WHERE id = ? AND status IN ('failed', 'skipped')",
            (item_id,),
        ).rowcount == 1


def retry_all_failed(store: Store) -> int:
    """W3: every failed row back to the queue; returns how many."""
    with store.write():
        return store.conn.execute(
            "UPDATE inbox SET status = 'queued', attempts = 0, next_attempt_at = NULL, processed_at = NULL "
            "WHERE status = 'failed'"
        ).rowcount


def prune(store: Store, *, older_than_days: int = 90, now: dt.datetime | None = None) -> int:
    """Delete ``done`` and ``skipped`` rows processed more than ``older_than_days`` ago (failed
    rows stay until an admin deals with them). A re-delivery older than that would be stored
    again, which Credly (25 days) and Docebo never do."""
    cutoff = stamp(_now(now) - dt.timedelta(days=older_than_days))
    with store.write():
        return store.conn.execute(
            "DELETE FROM inbox WHERE status IN ('done', 'skipped') AND processed_at < ?", (cutoff,)
        ).rowcount


# -- queries for the console and the CLI ---------------------------------------------------------

LIST_COLUMNS = (
    "id, source, delivery_key, event_type, learner_key, received_at, status, attempts, "
    "next_attempt_at, last_error, processed_at, run_id"
)


def _where(status: str | None, source: str | None, text: str) -> Where:
    where = Where()
    if status:
        if status == "backlog":
            where.add("status IN ('queued', 'processing')")
        else:
            if status not in STATUSES:
                raise ValueError(f"unknown inbox status {status!r}; expected one of {', '.join(STATUSES)} or backlog")
            where.add("status = ?", status)
    if source:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected docebo or credly")
        where.add("source = ?", source)
    if text:
        where.add("(event_type LIKE ? OR delivery_key LIKE ? OR learner_key LIKE ? OR last_error LIKE ?)",
                  *[f"%{text}%"] * 4)
    return where


def list_items(store: Store, *, status: str | None = None, source: str | None = None, text: str = "",
               limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """A page of inbox rows, newest first, without payloads. ``status`` may be ``backlog``
    (queued or processing)."""
    return store.page("inbox", _where(status, source, text), order="id DESC", limit=limit, offset=offset,
                      columns=LIST_COLUMNS)


def count_items(store: Store, *, status: str | None = None, source: str | None = None, text: str = "") -> int:
    return store.count("inbox", _where(status, source, text))


def get_item(store: Store, item_id: int) -> dict[str, Any] | None:
    """One row with its payload decoded into ``data``."""
    rows = list(store.db.query("SELECT * FROM inbox WHERE id = ?", (item_id,)))
    if not rows:
        return None
    row = rows[0]
    row["data"] = json.loads(row["payload"])
    return row


def counts(store: Store) -> dict[str, int]:
    """Rows per status plus ``backlog`` (queued + processing) and ``total``, for the dashboard."""
    out = {s: 0 for s in STATUSES}
    for status, n in store.conn.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status"):
        out[status] = n
    out["backlog"] = out["queued"] + out["processing"]
    out["total"] = sum(out[s] for s in STATUSES)
    return out


def next_due(store: Store) -> dt.datetime | None:
    """When the earliest queued row in backoff becomes due (the worker sleeps until then)."""
    row = store.conn.execute(
        "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'queued' AND next_attempt_at IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return None
    return dt.datetime.fromisoformat(row[0].replace("Z", "+00:00"))


# -- retry policy (W3) ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and when a failed event is tried again (W3).

    ``delays[i]`` is the wait after the (i+1)-th failed attempt (the last one repeats).
    ``max_attempts`` bounds errors that may go away by themselves (network, 5xx, 429, the
    worker stopping); ``max_attempts_permanent`` bounds errors the service will repeat (a 4xx,
    an unknown object, a configuration problem) — still retried a few times, since an admin may
    be fixing the cause, then left ``failed`` for an admin to retry."""

    delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
    max_attempts: int = 8
    max_attempts_permanent: int = 3

    def next_attempt(self, attempts: int, *, retryable: bool, now: dt.datetime | None = None) -> dt.datetime | None:
        """When to try again after ``attempts`` failed attempts, or None to give up."""
        limit = self.max_attempts if retryable else self.max_attempts_permanent
        if attempts >= limit:
            return None
        delay = self.delays[min(max(attempts, 1) - 1, len(self.delays) - 1)] if self.delays else 0.0
        return _now(now) + dt.timedelta(seconds=delay)
