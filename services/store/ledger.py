"""The ledger: every object credly-console creates in Credly or Docebo, and where it came from.

Design notes: docs/design/store.md
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.core.errors import ApiError
from services.store.db import Store, inserted_rowid, utcnow

T = TypeVar("T")

SYSTEMS = ("credly", "docebo")
OBJECT_TYPES = ("badge", "external_training", "certification_award")
SYSTEM_OF = {"badge": "credly", "external_training": "docebo", "certification_award": "docebo"}
ORIGIN_TYPES = ("course", "learning_plan", "certification_award", "credly_badge")
STATUSES = ("intent", "active", "revoked", "replaced", "deleted")


@dataclasses.dataclass
class LedgerEntry:
    id: int
    system: str
    object_type: str
    object_id: str
    subject: str
    target: str
    origin_type: str
    origin_id: str
    status: str
    details: dict[str, Any]
    run_id: int | None
    created_at: str
    updated_at: str
    user_id: str | None = None  # the Docebo user id (I1), next to the e-mail of `subject`
    origin_date: str | None = None  # the date of the origin object (O3: same source or newer)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerEntry:
        data = dict(row)
        try:
            data["details"] = json.loads(data.get("details") or "{}")
        except ValueError:
            data["details"] = {}
        values: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**values)


class IntentConflict(Exception):
    """A live row (intent or active) already exists for this key."""

    def __init__(self, entry: LedgerEntry) -> None:
        self.entry = entry
        super().__init__(
            f"{entry.object_type} for {entry.subject} / {entry.target} is already {entry.status} "
            f"in the ledger (row {entry.id}, run {entry.run_id})"
        )


def subject_key(object_type: str, subject: str | int) -> str:
    """Normalise a subject: badges are keyed by lower-case e-mail, Docebo objects by user id."""
    s = str(subject).strip()
    return s.lower() if object_type == "badge" else s


def _identity(
    object_type: str, subject: str, details: dict[str, Any] | None, user_id: str | None = None
) -> tuple[str | None, str | None]:
    """(user_id, origin_date) of a row (I1, O3): badges record the Docebo user id and the source's
    date in their details; Docebo objects are keyed by the user id itself."""
    d = details or {}
    uid = d.get("user_id") or user_id or (None if object_type == "badge" else subject)
    date = d.get("issued_at")
    return (str(uid) if uid else None, str(date) if date else None)


def last_badge(store: Store, user_id: str, email: str, template_id: str) -> LedgerEntry | None:
    """O3/I1: the product's newest badge row (not an intent) for this learner and template, found by
    the Docebo user id (whatever the e-mail is now) or, for rows without one, by the e-mail."""
    base = "SELECT * FROM ledger WHERE object_type = 'badge' AND target = ? AND status != 'intent' AND "
    rows = _rows(store, base + "user_id = ? ORDER BY id DESC LIMIT 1", (str(template_id), str(user_id)))
    if not rows:
        rows = _rows(
            store,
            base + "user_id IS NULL AND subject = ? ORDER BY id DESC LIMIT 1",
            (str(template_id), subject_key("badge", email)),
        )
    return rows[0] if rows else None


class LastBadges:
    """`last_badge` for a whole batch: the newest non-intent badge row of every (learner, template)
    of some templates, read in one query per 500 templates instead of one per candidate."""

    def __init__(self, store: Store, template_ids: list[str]) -> None:
        self.by_user: dict[tuple[str, str], LedgerEntry] = {}
        self.by_email: dict[tuple[str, str], LedgerEntry] = {}
        ids = sorted({str(t) for t in template_ids})
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            sql = (
                "SELECT * FROM ledger WHERE object_type = 'badge' AND status != 'intent' "
                f"AND target IN ({','.join('?' * len(chunk))}) ORDER BY id"
            )
            for e in _rows(store, sql, chunk):
                if e.user_id:
                    self.by_user[(e.user_id, e.target)] = e
                else:
                    self.by_email[(e.subject, e.target)] = e

    def get(self, user_id: str, email: str, template_id: str) -> LedgerEntry | None:
        return self.by_user.get((str(user_id), str(template_id))) or self.by_email.get(
            (subject_key("badge", email), str(template_id))
        )


def _rows(store: Store, sql: str, params: tuple | list = ()) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in store.db.query(sql, params)]


def get(store: Store, entry_id: int) -> LedgerEntry | None:
    rows = _rows(store, "SELECT * FROM ledger WHERE id = ?", (entry_id,))
    return rows[0] if rows else None


def live_entry(store: Store, object_type: str, subject: str | int, target: str) -> LedgerEntry | None:
    """The live (intent|active) row for this key, if any."""
    rows = _rows(
        store,
        "SELECT * FROM ledger WHERE object_type = ? AND subject = ? AND target = ? "
        "AND status IN ('intent', 'active')",
        (object_type, subject_key(object_type, subject), str(target)),
    )
    return rows[0] if rows else None


def live_entries(store: Store, object_type: str, *, targets: list[str] | None = None) -> dict[tuple[str, str], LedgerEntry]:
    """All live rows of a type (optionally of some targets), keyed by (subject, target); one query
    for a batch instead of one per item."""
    sql = "SELECT * FROM ledger WHERE object_type = ? AND status IN ('intent', 'active')"
    params: list[Any] = [object_type]
    out: dict[tuple[str, str], LedgerEntry] = {}
    if targets is not None:
        targets = [str(t) for t in targets]
        for i in range(0, len(targets), 500):
            chunk = targets[i : i + 500]
            for e in _rows(store, sql + f" AND target IN ({','.join('?' * len(chunk))})", [*params, *chunk]):
                out[(e.subject, e.target)] = e
        return out
    for e in _rows(store, sql, params):
        out[(e.subject, e.target)] = e
    return out


def find_by_object(store: Store, system: str, object_id: str) -> LedgerEntry | None:
    """The newest row for an object id in a system (any status)."""
    rows = _rows(
        store, "SELECT * FROM ledger WHERE system = ? AND object_id = ? ORDER BY id DESC LIMIT 1", (system, str(object_id))
    )
    return rows[0] if rows else None


def find_by_origin(store: Store, origin_type: str, origin_id: str, *, live_only: bool = True) -> list[LedgerEntry]:
    sql = "SELECT * FROM ledger WHERE origin_type = ? AND origin_id = ?"
    if live_only:
        sql += " AND status IN ('intent', 'active')"
    return _rows(store, sql + " ORDER BY id", (origin_type, str(origin_id)))


def record_intent(
    store: Store,
    *,
    object_type: str,
    subject: str | int,
    target: str,
    origin_type: str,
    origin_id: str | int,
    details: dict[str, Any] | None = None,
    run_id: int | None = None,
) -> LedgerEntry:
    """Commit an intent row before a create call; raise IntentConflict if a live row exists."""
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type {object_type!r}")
    if origin_type not in ORIGIN_TYPES:
        raise ValueError(f"unknown origin type {origin_type!r}")
    now = utcnow()
    subj = subject_key(object_type, subject)
    try:
        with store.write():
            cur = store.db.execute(
                "INSERT INTO ledger (system, object_type, object_id, subject, target, origin_type, origin_id, "
                "status, details, run_id, created_at, updated_at, user_id, origin_date) "
                "VALUES (?, ?, '', ?, ?, ?, ?, 'intent', ?, ?, ?, ?, ?, ?)",
                (
                    SYSTEM_OF[object_type],
                    object_type,
                    subj,
                    str(target),
                    origin_type,
                    str(origin_id),
                    json.dumps(details or {}, sort_keys=True),
                    run_id,
                    now,
                    now,
                    *_identity(object_type, subj, details),
                ),
            )
            entry_id = inserted_rowid(cur)
    except sqlite3.IntegrityError:
        existing = live_entry(store, object_type, subj, target)
        if existing is None:  # pragma: no cover - the row vanished between insert and read
            raise
        raise IntentConflict(existing) from None
    entry = get(store, entry_id)
    assert entry is not None
    return entry


def take_over(store: Store, entry_id: int, run_id: int | None, *, details: dict[str, Any] | None = None) -> None:
    """A run adopts an intent left by an earlier run (after looking in the service: not there)."""
    with store.write():
        if details is None:
            store.db.execute(
                "UPDATE ledger SET run_id = ?, updated_at = ? WHERE id = ? AND status = 'intent'",
                (run_id, utcnow(), entry_id),
            )
        else:
            store.db.execute(
                "UPDATE ledger SET run_id = ?, details = ?, updated_at = ? WHERE id = ? AND status = 'intent'",
                (run_id, json.dumps(details, sort_keys=True), utcnow(), entry_id),
            )


def confirm(store: Store, entry_id: int, object_id: str | int, *, details: dict[str, Any] | None = None) -> None:
    """The create succeeded (or the object was found in the service): intent → active."""
    with store.write():
        if details is None:
            store.db.execute(
                "UPDATE ledger SET status = 'active', object_id = ?, updated_at = ? WHERE id = ?",
                (str(object_id), utcnow(), entry_id),
            )
        else:
            store.db.execute(
                "UPDATE ledger SET status = 'active', object_id = ?, details = ?, updated_at = ? WHERE id = ?",
                (str(object_id), json.dumps(details, sort_keys=True), utcnow(), entry_id),
            )


def abandon(store: Store, entry_id: int) -> None:
    """A definite failure (nothing was created): remove the intent."""
    with store.write():
        store.db.execute("DELETE FROM ledger WHERE id = ? AND status = 'intent'", (entry_id,))


def record_active(
    store: Store,
    *,
    object_type: str,
    subject: str | int,
    target: str,
    object_id: str | int,
    origin_type: str,
    origin_id: str | int,
    details: dict[str, Any] | None = None,
    run_id: int | None = None,
) -> LedgerEntry:
    """Record an object already present in the service as ours (e.g. found after a crash)."""
    entry = record_intent(
        store,
        object_type=object_type,
        subject=subject,
        target=target,
        origin_type=origin_type,
        origin_id=origin_id,
        details=details,
        run_id=run_id,
    )
    confirm(store, entry.id, object_id)
    entry.status, entry.object_id = "active", str(object_id)
    return entry


def update_details(store: Store, entry_id: int, details: dict[str, Any], *, origin_id: str | None = None) -> None:
    """Record new dates (or a new origin, e.g. the replacement badge) of a live object."""
    with store.write():
        if origin_id is None:
            store.db.execute(
                "UPDATE ledger SET details = ?, updated_at = ? WHERE id = ?",
                (json.dumps(details, sort_keys=True), utcnow(), entry_id),
            )
        else:
            store.db.execute(
                "UPDATE ledger SET details = ?, origin_id = ?, updated_at = ? WHERE id = ?",
                (json.dumps(details, sort_keys=True), str(origin_id), utcnow(), entry_id),
            )


def mark(store: Store, entry_id: int, status: str) -> None:
    """A live object was revoked, replaced or deleted."""
    if status not in ("revoked", "replaced", "deleted"):
        raise ValueError(f"cannot mark a ledger row {status!r}")
    with store.write():
        store.db.execute("UPDATE ledger SET status = ?, updated_at = ? WHERE id = ?", (status, utcnow(), entry_id))


def replace(
    store: Store,
    entry_id: int,
    new_object_id: str | int,
    *,
    details: dict[str, Any] | None = None,
    run_id: int | None = None,
    origin_type: str | None = None,
    origin_id: str | None = None,
) -> LedgerEntry:
    """A badge was replaced: the old row becomes `replaced`, the new badge's row is `active`
    (same key; same origin unless a new one is given, O5 renewal), in one transaction."""
    old = get(store, entry_id)
    if old is None:
        raise KeyError(f"no ledger row {entry_id}")
    now = utcnow()
    new_details = details if details is not None else old.details
    with store.write():
        store.db.execute("UPDATE ledger SET status = 'replaced', updated_at = ? WHERE id = ?", (now, entry_id))
        cur = store.db.execute(
            "INSERT INTO ledger (system, object_type, object_id, subject, target, origin_type, origin_id, "
            "status, details, run_id, created_at, updated_at, user_id, origin_date) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
            (
                old.system,
                old.object_type,
                str(new_object_id),
                old.subject,
                old.target,
                origin_type or old.origin_type,
                str(origin_id) if origin_id is not None else old.origin_id,
                json.dumps(new_details, sort_keys=True),
                run_id,
                now,
                now,
                *_identity(old.object_type, old.subject, new_details, old.user_id),
            ),
        )
        new_id = inserted_rowid(cur)
    entry = get(store, new_id)
    assert entry is not None
    return entry


def intent_is_orphaned(store: Store, entry: LedgerEntry, current_run_id: int | None = None) -> bool:
    """True when an intent's run is no longer running (so the create may or may not have
    happened, and nobody is about to finish it): look in the service before creating."""
    if entry.status != "intent":
        return False
    if entry.run_id is None or entry.run_id == current_run_id:
        return True
    from services.store.runs import reap_interrupted

    row = store.db.execute("SELECT status FROM runs WHERE id = ?", (entry.run_id,)).fetchone()
    if row is None or row[0] != "running":
        return True
    reap_interrupted(store)
    row = store.db.execute("SELECT status FROM runs WHERE id = ?", (entry.run_id,)).fetchone()
    return row is None or row[0] != "running"


def count_by_status(store: Store, object_type: str | None = None) -> dict[str, int]:
    sql = "SELECT status, COUNT(*) FROM ledger"
    params: tuple = ()
    if object_type:
        sql += " WHERE object_type = ?"
        params = (object_type,)
    return {r[0]: r[1] for r in store.db.execute(sql + " GROUP BY status", params)}


# -- the create protocol (module doc, steps 1-4) ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Intent:
    """What a create call is about to make: the ledger key (object type, subject, target) and
    where the object comes from (origin)."""

    object_type: str
    subject: str | int
    target: str
    origin_type: str
    origin_id: str | int


@dataclasses.dataclass
class Created:
    """How `create_once()` ended. `object_id` is the new object's id; None when nothing was
    created: `conflict` says another live row is in the way (nothing was called), else the
    service reported it created nothing (`result` says what it answered)."""

    object_id: str | None
    result: Any = None
    conflict: IntentConflict | None = None


def is_definite_refusal(exc: BaseException) -> bool:
    """The service answered and refused (a 4xx other than 429): nothing was created, so the
    intent can go. Timeouts, lost connections, 5xx and 429 after retries leave it in place."""
    return isinstance(exc, ApiError) and exc.status is not None and 400 <= exc.status < 500 and exc.status != 429


def open_intent(
    store: Store,
    intent: Intent,
    details: dict[str, Any],
    *,
    run_id: int | None,
    entry: LedgerEntry | None = None,
) -> LedgerEntry:
    """Step 1 before a create call: take over `entry` when it is an intent the caller found
    orphaned and looked for in the service without finding its object (step 4), else commit a
    new intent. Raises IntentConflict when another live row holds the key."""
    if entry is not None and entry.status == "intent":
        take_over(store, entry.id, run_id, details=details)
        return entry
    return record_intent(
        store,
        object_type=intent.object_type,
        subject=intent.subject,
        target=intent.target,
        origin_type=intent.origin_type,
        origin_id=intent.origin_id,
        details=details,
        run_id=run_id,
    )


def settle(store: Store, entry_id: int, object_id: str | None) -> None:
    """Step 2/3 after the call answered: confirm with the new object's id, or — None: the
    service created nothing (e.g. Credly's "already has this badge") — abandon the intent."""
    if object_id is None:
        abandon(store, entry_id)
    else:
        confirm(store, entry_id, object_id)


def settle_failure(store: Store, entry_id: int, exc: BaseException) -> None:
    """Step 3 after the call failed: abandon the intent on a definite refusal only."""
    if is_definite_refusal(exc):
        abandon(store, entry_id)


async def create_once(
    store: Store,
    intent: Intent,
    details: dict[str, Any],
    create: Callable[[], Awaitable[T]],
    object_id: Callable[[T], str | None],
    *,
    run_id: int | None,
    entry: LedgerEntry | None = None,
) -> Created:
    """One create call under the ledger protocol: `open_intent()` (an IntentConflict ends it
    before any call: `Created.conflict`), `await create()`, then `settle()` with
    `object_id(result)` — or, when the call raises ApiError, `settle_failure()` and re-raise.
    `entry`: an orphaned intent of this key to take over (see `open_intent`)."""
    try:
        opened = open_intent(store, intent, details, run_id=run_id, entry=entry)
    except IntentConflict as exc:
        return Created(None, conflict=exc)
    try:
        result = await create()
    except ApiError as exc:
        settle_failure(store, opened.id, exc)
        raise
    new_id = object_id(result)
    settle(store, opened.id, new_id)
    return Created(new_id, result)


def recover(store: Store, entry: LedgerEntry, object_id: str | int, *, details: dict[str, Any] | None = None) -> LedgerEntry:
    """Step 4, found: the object of an orphaned intent is in the service — confirm the intent
    with its id and return the (now active) row."""
    confirm(store, entry.id, object_id, details=details)
    found = get(store, entry.id)
    assert found is not None
    return found
