"""Notifications (N1): errors, configuration problems, rejected webhooks and the deletion notice.

Each error carries its cause (service, status, reason); the console folds the open notifications
of one cause into one problem, which closes itself when the service works again (issue 16).

Design notes: docs/design/store.md
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from services.store.db import Store, Where, inserted_rowid, utcnow

KINDS = ("error", "deletion_notice", "digest", "config", "webhook_rejected")
MAIL_STATUSES = ("pending", "sent", "failed", "in_digest", "not_mailed")


def create_notification(
    store: Store,
    kind: str,
    title: str,
    *,
    body: str = "",
    flow: str = "",
    run_id: int | None = None,
    object: str = "",
    call: str = "",
    service_message: str = "",
    mail_status: str = "pending",
    cause: str = "",
) -> int:
    """Store a notification and return its id. `cause`: see `cause_of` ('' = stands alone)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; expected one of {', '.join(KINDS)}")
    if mail_status not in MAIL_STATUSES:
        raise ValueError(f"unknown mail status {mail_status!r}")
    with store.write():
        if kind == "config":
            row = store.db.execute(
                "SELECT id FROM notifications WHERE kind = 'config' AND read_at IS NULL "
                "AND title = ? AND body = ? ORDER BY id DESC LIMIT 1",
                (title, body),
            ).fetchone()
            if row:
                return row[0]
        cur = store.db.execute(
            "INSERT INTO notifications (created_at, kind, title, body, flow, run_id, object, call, "
            "service_message, mail_status, cause) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (utcnow(), kind, title, body, flow, run_id, object, call, service_message, mail_status, cause),
        )
        return inserted_rowid(cur)


def notify_error(
    store: Store,
    title: str,
    *,
    body: str = "",
    flow: str = "",
    run_id: int | None = None,
    object: str = "",
    call: str = "",
    service_message: str = "",
    in_digest: bool = False,
    cause: str = "",
) -> int:
    """An error notification. `in_digest=True` (batch runs): shown, mailed only in the digest."""
    return create_notification(
        store,
        "error",
        title,
        body=body,
        flow=flow,
        run_id=run_id,
        object=object,
        call=call,
        service_message=service_message,
        mail_status="in_digest" if in_digest else "pending",
        cause=cause,
    )


def notify_exception(
    store: Store,
    exc: BaseException,
    *,
    title: str,
    flow: str = "",
    run_id: int | None = None,
    object: str = "",
    in_digest: bool = False,
) -> int:
    """An error notification from an exception; an ApiError gives the call and service message."""
    call = ""
    service_message = ""
    if hasattr(exc, "call") and hasattr(exc, "service"):
        call = f"{getattr(exc, 'service', '')} {getattr(exc, 'call', '')}".strip()
        service_message = str(getattr(exc, "message", "") or "")
    return notify_error(
        store,
        title,
        body=str(exc),
        flow=flow,
        run_id=run_id,
        object=object,
        call=call,
        service_message=service_message,
        in_digest=in_digest,
        cause=cause_of(exc),
    )


def notify_config_problem(store: Store, title: str, body: str, *, flow: str = "", run_id: int | None = None) -> int:
    """A configuration problem that blocked a flow (S3) or the receiver."""
    return create_notification(store, "config", title, body=body, flow=flow, run_id=run_id, cause=f"config||{title}")


def close_digest(store: Store, run_id: int, *, flow: str = "") -> int | None:
    """Create the one digest (N1) of a batch run's errors; returns its id, or None when the run
    left no undigested errors. Safe to call twice."""
    with store.write():
        rows = list(
            store.db.query(
                "SELECT id, title, object, body FROM notifications WHERE run_id = ? "
                "AND mail_status = 'in_digest' AND digest_id IS NULL ORDER BY id",
                (run_id,),
            )
        )
        if not rows:
            return None
        if not flow:
            r = store.db.execute("SELECT flow FROM runs WHERE id = ?", (run_id,)).fetchone()
            flow = r[0] if r else ""
        lines = [f"- {r['title']}" + (f" [{r['object']}]" if r["object"] else "") + f": {r['body']}" for r in rows]
        n = len(rows)
        title = f"{n} error{'s' if n != 1 else ''} in {flow or 'a'} run {run_id}"
        body = f"Run {run_id} ({flow}) recorded {n} error{'s' if n != 1 else ''}:\n" + "\n".join(lines)
        cur = store.db.execute(
            "INSERT INTO notifications (created_at, kind, title, body, flow, run_id, mail_status) "
            "VALUES (?, 'digest', ?, ?, ?, ?, 'pending')",
            (utcnow(), title, body, flow, run_id),
        )
        digest_id = inserted_rowid(cur)
        store.db.execute(
            f"UPDATE notifications SET digest_id = ? WHERE id IN ({','.join('?' * n)})",
            (digest_id, *[r["id"] for r in rows]),
        )
        return digest_id


def deletion_notice(
    store: Store,
    templates: Iterable[dict[str, Any]],
    mappings: Iterable[dict[str, Any]],
    *,
    flow: str = "templates",
    run_id: int | None = None,
) -> int:
    """F1's one deletion notice (N1): the templates deleted from T and the mappings deactivated.

    `templates`: dicts with `template_id`, `name`; `mappings`: dicts with `id`, `template_id`,
    `template_name`, `learning_plan_id`, `certification_code`, `import_as_external_training`."""
    templates = list(templates)
    mappings = list(mappings)
    lines = [f"Badge templates deleted in Credly and removed from the badge templates table ({len(templates)}):"]
    lines += [f"- {t['name']} ({t['template_id']})" for t in templates]
    lines.append("")
    if mappings:
        lines.append(f"Mappings deactivated because they name a deleted template ({len(mappings)}):")
        for m in mappings:
            sides = []
            if m.get("learning_plan_id"):
                sides.append(f"learning plan {m['learning_plan_id']}")
            if m.get("certification_code"):
                sides.append(f"certification {m['certification_code']}")
            if m.get("import_as_external_training"):
                sides.append("external training")
            lines.append(
                f"- mapping {m['id']}: {m.get('template_name') or m['template_id']} → {', '.join(sides) or '(no Docebo side)'}"
            )
    else:
        lines.append("No mapping named these templates.")
    n = len(templates)
    title = (
        f"{n} badge template{'s' if n != 1 else ''} deleted in Credly; {len(mappings)} "
        f"mapping{'s' if len(mappings) != 1 else ''} deactivated"
    )
    return create_notification(
        store,
        "deletion_notice",
        title,
        body="\n".join(lines),
        flow=flow,
        run_id=run_id,
        object=", ".join(t["template_id"] for t in templates),
    )


# -- console queries -----------------------------------------------------------------------------


def _where(unread_only: bool, kind: str | None, run_id: int | None, text: str, include_digested: bool) -> Where:
    where = Where()
    if unread_only:
        where.add("read_at IS NULL")
    if kind:
        where.add("kind = ?", kind)
    if run_id is not None:
        where.add("run_id = ?", run_id)
    if text:
        where.add("(title LIKE ? OR body LIKE ? OR object LIKE ?)", *[f"%{text}%"] * 3)
    if not include_digested:
        where.add("kind != 'digest'")
    return where


def list_notifications(
    store: Store,
    *,
    unread_only: bool = False,
    kind: str | None = None,
    run_id: int | None = None,
    text: str = "",
    include_digests: bool = True,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A page of notifications, newest first."""
    where = _where(unread_only, kind, run_id, text, include_digests)
    return store.page("notifications", where, order="id DESC", limit=limit, offset=offset)


def count_notifications(
    store: Store,
    *,
    unread_only: bool = False,
    kind: str | None = None,
    run_id: int | None = None,
    text: str = "",
    include_digests: bool = True,
) -> int:
    return store.count("notifications", _where(unread_only, kind, run_id, text, include_digests))


def unread_count(store: Store) -> int:
    return store.db.execute("SELECT COUNT(*) FROM notifications WHERE read_at IS NULL").fetchone()[0]


def get_notification(store: Store, notification_id: int) -> dict[str, Any] | None:
    rows = list(store.db.query("SELECT * FROM notifications WHERE id = ?", (notification_id,)))
    return rows[0] if rows else None


def mark_read(store: Store, ids: Iterable[int] | None = None) -> int:
    """Mark the given notifications (or, with None, all) read; returns how many changed."""
    now = utcnow()
    with store.write():
        if ids is None:
            return store.db.execute("UPDATE notifications SET read_at = ? WHERE read_at IS NULL", (now,)).rowcount
        ids = list(ids)
        if not ids:
            return 0
        return store.db.execute(
            f"UPDATE notifications SET read_at = ? WHERE read_at IS NULL AND id IN ({','.join('?' * len(ids))})",
            (now, *ids),
        ).rowcount


def mark_unread(store: Store, ids: Iterable[int]) -> int:
    ids = list(ids)
    if not ids:
        return 0
    with store.write():
        return store.db.execute(f"UPDATE notifications SET read_at = NULL WHERE id IN ({','.join('?' * len(ids))})", ids).rowcount


# -- problems: notifications grouped by cause (issue 16) --------------------------------------

# str(ApiError): "Credly GET /route failed (error, HTTP 401): message" or "(network, no response)".
_API_ERROR_TEXT = re.compile(r"\b(Credly|Docebo) (\S+ \S+) failed \([^,]+, (?:HTTP (\d{3})|no response)\): (.*)", re.S)
# Statuses that say the service or its credentials are broken, not one object: a later successful
# call of the same service closes these problems.
_SERVICE_WIDE = re.compile(r"^(credly|docebo)\|(401|429|5\d\d|network)\|")


def _reason(message: str) -> str:
    """The part of a service message shared by every event of one cause: ids and numbers dropped."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    first = re.sub(r"\d+", "#", first).strip(" .")
    return first[:80].lower()


def cause_of(failure: BaseException | str) -> str:
    """The cause key 'service|status|reason' of an API failure (an ApiError, or its text as stored
    in a run log or an inbox row), e.g. 'credly|401|invalid token'; '' when it is no API failure."""
    service = getattr(failure, "service", None)
    if isinstance(failure, BaseException) and service:
        status = getattr(failure, "status", None)
        message = str(getattr(failure, "message", "") or "")
    else:
        match = _API_ERROR_TEXT.search(str(failure))
        if not match:
            return ""
        service, _call, status, message = match.groups()
    code = str(status) if status else "network"
    return f"{str(service).lower()}|{code}|{_reason(message)}"


def is_service_wide(cause: str) -> bool:
    """True for a cause about the service or its credentials (401, 429, 5xx, no response), which
    a later successful call of that service closes; False for one about single objects."""
    return bool(_SERVICE_WIDE.match(cause))


def describe_cause(cause: str, service_message: str = "") -> tuple[str, str]:
    """(title, what to do) of a cause in plain words, e.g. ('Credly HTTP 401: Invalid token',
    'Credly refused the credentials: fix the Credly token in Settings → Connections, …')."""
    service, status, reason = (cause.split("|", 2) + ["", ""])[:3]
    message = service_message or reason
    if service == "config":
        title = reason
    else:
        title = f"{service.capitalize()} {'unreachable' if status == 'network' else 'HTTP ' + status}: {message}"
    return title, _advice(service, status)


def _advice(service: str, status: str) -> str:
    """What to do about one cause, in plain words."""
    name = service.capitalize()
    if service == "config":
        return "Fix the setting named below in Settings; the next run checks it again."
    if status in ("401", "403"):
        return (f"{name} refused the credentials: fix the {name} token in Settings → Connections, "
                "then retry the affected events.")
    if status == "network" or status.startswith("5"):
        return (f"{name} is unreachable or failing: failed events are retried by the service; "
                "test the connection, then retry the affected events.")
    if status == "429":
        return f"{name}'s rate limit was reached: the calls wait and resume by themselves."
    return f"{name} rejected these calls: read the service's message and fix the mapping or the data, then retry."


def list_problems(store: Store, *, include_closed: bool = False) -> list[dict[str, Any]]:
    """The open problems, newest first: one row per cause with `cause`, `service`, `status`,
    `reason`, `title`, `advice`, `notifications`, `events` (distinct objects), `runs` (distinct
    run ids), `run_ids`, `first_seen`, `last_seen`, `unread`, `service_message`, `closed_at`."""
    where = "" if include_closed else "AND resolved_at IS NULL"
    rows = store.db.query(
        "SELECT cause, COUNT(*) AS notifications, COUNT(DISTINCT NULLIF(object, '')) AS events, "
        "COUNT(DISTINCT run_id) AS runs, GROUP_CONCAT(DISTINCT run_id) AS run_ids, "
        "MIN(created_at) AS first_seen, MAX(created_at) AS last_seen, "
        "SUM(read_at IS NULL) AS unread, MAX(resolved_at) AS closed_at, MAX(id) AS last_id "
        f"FROM notifications WHERE cause != '' {where} GROUP BY cause ORDER BY last_id DESC"
    )
    out = []
    for row in rows:
        service, status, reason = (row["cause"].split("|", 2) + ["", ""])[:3]
        last = get_notification(store, row["last_id"]) or {}
        message = last.get("service_message") or reason
        title, advice = describe_cause(row["cause"], message)
        run_ids = sorted(int(r) for r in (row["run_ids"] or "").split(",") if r)
        out.append({**dict(row), "service": service, "status": status, "reason": reason, "title": title,
                    "advice": advice, "run_ids": run_ids, "service_message": message, "body": last.get("body", "")})
    return out


def problem_notifications(store: Store, cause: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """The notifications of one cause (the affected items), newest first."""
    return list(store.db.query(
        "SELECT * FROM notifications WHERE cause = ? AND resolved_at IS NULL ORDER BY id DESC LIMIT ?", (cause, limit)))


def close_problem(store: Store, cause: str) -> int:
    """Close every open notification of `cause` (marked read and resolved); returns how many."""
    now = utcnow()
    with store.write():
        return store.db.execute(
            "UPDATE notifications SET resolved_at = ?, read_at = COALESCE(read_at, ?) "
            "WHERE cause = ? AND resolved_at IS NULL", (now, now, cause)).rowcount


def close_service_problems(store: Store, service: str) -> int:
    """A call of `service` succeeded: close its service-wide problems (credentials, outages, rate
    limit); problems about single objects (404, 422 …) stay open. Returns how many closed."""
    now = utcnow()
    with store.write():
        rows = [r[0] for r in store.db.execute(
            "SELECT DISTINCT cause FROM notifications WHERE resolved_at IS NULL AND cause LIKE ?", (f"{service}|%",))]
        causes = [c for c in rows if is_service_wide(c)]
        if not causes:
            return 0
        return store.db.execute(
            f"UPDATE notifications SET resolved_at = ?, read_at = COALESCE(read_at, ?) WHERE resolved_at IS NULL "
            f"AND cause IN ({','.join('?' * len(causes))})", (now, now, *causes)).rowcount


def open_problem_count(store: Store) -> int:
    return store.db.execute(
        "SELECT COUNT(DISTINCT cause) FROM notifications WHERE cause != '' AND resolved_at IS NULL").fetchone()[0]
