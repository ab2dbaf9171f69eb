"""Notifications (N1): errors, configuration problems, rejected webhooks and the deletion notice.

Design notes: docs/design/store.md
"""

from __future__ import annotations

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
) -> int:
    """Store a notification and return its id."""
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
            "service_message, mail_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (utcnow(), kind, title, body, flow, run_id, object, call, service_message, mail_status),
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
    )


def notify_config_problem(store: Store, title: str, body: str, *, flow: str = "", run_id: int | None = None) -> int:
    """A configuration problem that blocked a flow (S3) or the receiver."""
    return create_notification(store, "config", title, body=body, flow=flow, run_id=run_id)


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
