"""Connection health: the outcome of the last "test connection" of each service, kept in the
`connection_health` table for the dashboard (SPEC §4: "health of connections").

One row per service (credly | docebo | smtp), replaced by each test. The message is the client's
own sentence (`ConnectionReport.message`), which never contains a secret.
"""

from __future__ import annotations

from typing import Any

from services.store import Store, utcnow

HEALTH_SERVICES: tuple[str, ...] = ("credly", "docebo", "smtp")


def record_health(store: Store, service: str, ok: bool, message: str, *, at: str | None = None) -> dict[str, Any]:
    """Store the result of a connection test of `service`; returns the stored row."""
    if service not in HEALTH_SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(HEALTH_SERVICES)}")
    row = {"service": service, "checked_at": at or utcnow(), "ok": 1 if ok else 0, "message": message}
    with store.write() as db:
        db.execute(
            "INSERT INTO connection_health (service, checked_at, ok, message) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(service) DO UPDATE SET checked_at = excluded.checked_at, ok = excluded.ok, "
            "message = excluded.message",
            (row["service"], row["checked_at"], row["ok"], row["message"]),
        )
    return row


def read_health(store: Store) -> dict[str, dict[str, Any]]:
    """service → {service, checked_at, ok (bool), message} for every service tested so far."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.db.query("SELECT service, checked_at, ok, message FROM connection_health ORDER BY service"):
        row = dict(row)
        row["ok"] = bool(row["ok"])
        out[row["service"]] = row
    return out
