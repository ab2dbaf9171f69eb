"""Connection health: the outcome of the last "test connection" or real API call of each service,
kept in the `connection_health` table for the dashboard (SPEC §4: "health of connections"; issue 16).

Design notes: docs/design/store.md
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from services.store.db import Store, utcnow

HEALTH_SERVICES: tuple[str, ...] = ("credly", "docebo", "smtp")
API_SERVICES: tuple[str, ...] = ("credly", "docebo")
STALE_AFTER = dt.timedelta(hours=1)
# A real call's outcome is written when the service's state changes, else at most this often.
CALL_OUTCOME_EVERY_S = 10.0


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


def is_configured(config: Any, service: str) -> bool:
    """True when the configuration names where `service` is (a test would reach out): Credly's
    base URL and organization id, Docebo's platform URL and client id. Secrets are not needed
    here: a test without one says which is missing."""
    if service == "credly":
        return bool(config.credly.base_url and config.credly.organization_id)
    if service == "docebo":
        return bool(config.docebo.base_url and config.docebo.client_id)
    raise ValueError(f"unknown service {service!r}; expected one of {', '.join(API_SERVICES)}")


def _parse(stamp: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def stale_services(store: Store, services: Iterable[str], *, max_age: dt.timedelta = STALE_AFTER,
                   now: dt.datetime | None = None) -> list[str]:
    """Those of `services` never tested, or last tested more than `max_age` ago."""
    now = now or dt.datetime.now(dt.UTC)
    health = read_health(store)
    out = []
    for service in services:
        checked = _parse(health[service]["checked_at"]) if service in health else None
        if checked is None or now - checked > max_age:
            out.append(service)
    return out


async def check_connection(make_client: Callable[[], Any]) -> tuple[bool, str]:
    """(ok, message) of one client's `test_connection()`; any failure (even building the
    client) is a failed test with its reason, never an exception. The client is closed."""
    try:
        client = make_client()
        try:
            report = await client.test_connection()
        finally:
            await client.aclose()
    except Exception as exc:  # noqa: BLE001 - the health row records any failure
        return False, f"{type(exc).__name__}: {exc}"
    return bool(report.ok), str(report.message)


async def check_connections(store: Store, factories: dict[str, Callable[[], Any]]) -> dict[str, dict[str, Any]]:
    """Test every service of `factories` (service → a function building a new client, called
    in this event loop) at once, record each outcome, and return the rows recorded."""
    services = list(factories)
    outcomes = await asyncio.gather(*(check_connection(factories[s]) for s in services))
    return {service: record_health(store, service, ok, message)
            for service, (ok, message) in zip(services, outcomes, strict=True)}


def call_outcome_failure(status: int | None, message: str) -> str:
    """'' when a real call's outcome says the connection works, else why it does not. Object-level
    refusals (404, 409, 422 …) still prove the service answers with valid credentials."""
    if status is None:
        return f"no response: {message}"
    if status in (401, 403) or status == 429 or status >= 500:
        return f"HTTP {status}: {message or '(no message from the service)'}"
    return ""


class CallOutcomeRecorder:
    """The listener of `services.clients.http.set_call_outcome_listener`: records the last real
    outcome of each service into `connection_health` (any thread, its own short-lived Store), at
    once when the state changes and at most every `every_s` seconds otherwise. A success also
    closes the service's service-wide problems (notifications.close_service_problems)."""

    def __init__(self, database_path: Any, *, every_s: float = CALL_OUTCOME_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database_path = database_path
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[str, float]] = {}  # service → (failure, when written)

    def __call__(self, service_name: str, status: int | None, message: str) -> None:
        service = service_name.lower()
        if service not in API_SERVICES:
            return
        failure = call_outcome_failure(status, message)
        now = self._clock()
        with self._lock:
            last = self._last.get(service)
            if last is not None and last[0] == failure and now - last[1] < self.every_s:
                return
            self._last[service] = (failure, now)
        from services.store import notifications

        with Store(self.database_path) as store:
            record_health(store, service, not failure,
                          "last call succeeded" if not failure else f"last call failed — {failure}")
            if not failure:
                notifications.close_service_problems(store, service)
