"""The ASGI layer both sandboxes share: per-route call counters (``"METHOD /declared/{path}"``,
unmatched as ``"METHOD (no route)"``), the middleware that counts calls and applies a
``FaultConfig`` (control calls under ``/_sandbox/`` are neither counted nor faulted), the ``Date``
header from the sandbox's clock, and the log filter for deliberate drops (docs/sandboxes.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match

from services.sandbox.faults import DroppedConnection, FaultConfig

CONTROL_PREFIX = "/_sandbox"


class RouteCounter:
    """Calls per ``"METHOD /route/{template}"``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._statuses: dict[str, dict[int, int]] = {}

    def hit(self, route: str) -> None:
        with self._lock:
            self._counts[route] = self._counts.get(route, 0) + 1

    def record_status(self, route: str, status: int) -> None:
        with self._lock:
            per = self._statuses.setdefault(route, {})
            per[status] = per.get(status, 0) + 1

    def get(self, route: str) -> int:
        with self._lock:
            return self._counts.get(route, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def statuses(self) -> dict[str, dict[int, int]]:
        """Per route, how many calls ended with each status (a drop is recorded as 0)."""
        with self._lock:
            return {k: dict(sorted(v.items())) for k, v in sorted(self._statuses.items())}

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._statuses.clear()


def route_template(routes: Iterable[BaseRoute], scope: Mapping[str, Any]) -> str:
    """``"METHOD /declared/{path}"`` for the route this request would reach."""
    method = scope.get("method", "GET")
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        path = getattr(route, "path", None)
        if match is Match.FULL and path is not None:
            return f"{method} {path}"
        if match is Match.PARTIAL and partial is None and path is not None:
            partial = path
    if partial is not None:
        return f"{method} {partial}"
    return f"{method} (no route)"



def route_key(method: str, path_template: str) -> str:
    """The counter key for a route, e.g. ``route_key("GET", "/v1/organizations/{org}/badges")``."""
    return f"{method.upper()} {path_template}"


ErrorBody = Callable[[int, str], Any]


class SandboxMiddleware:
    """ASGI middleware: counts calls per route template and applies ``FaultConfig``.

    Use with Starlette: ``Middleware(SandboxMiddleware, routes=routes, faults=faults,
    calls=counter, error_body=fn)``. ``error_body(status, message)`` returns the API's JSON error
    body (any JSON-serialisable value). ``strip_trailing_slash`` rewrites ``/x/`` to ``/x`` before
    routing (Credly tolerates trailing slashes, credly.md §1.9)."""

    def __init__(
        self,
        app: Any,
        *,
        routes: Iterable[BaseRoute],
        faults: FaultConfig,
        calls: RouteCounter,
        error_body: ErrorBody,
        control_prefix: str = CONTROL_PREFIX,
        strip_trailing_slash: bool = False,
    ) -> None:
        self.app = app
        self.routes = list(routes)
        self.faults = faults
        self.calls = calls
        self.error_body = error_body
        self.control_prefix = control_prefix
        self.strip_trailing_slash = strip_trailing_slash

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.strip_trailing_slash:
            path = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        if scope["path"] == self.control_prefix or scope["path"].startswith(self.control_prefix + "/"):
            await self.app(scope, receive, send)
            return

        route = route_template(self.routes, scope)
        self.calls.hit(route)
        decision = self.faults.decide(route)
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)

        if decision.action == "rate_limit":
            self.calls.record_status(route, 429)
            await self._send_error(
                send,
                429,
                "Rate limit exceeded. Retry later.",
                [(b"retry-after", str(decision.retry_after or 1).encode())],
            )
            return
        if decision.action == "fail":
            self.calls.record_status(route, decision.status)
            await self._send_error(send, decision.status, "Service temporarily unavailable (sandbox fault)")
            return

        if decision.action == "drop":
            # Process fully, swallow the answer, then start a response and abort (see DroppedConnection, faults.py).
            async def swallow(message: dict) -> None:
                return None

            await self.app(scope, receive, swallow)
            self.calls.record_status(route, 0)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            raise DroppedConnection(route)

        status_seen: list[int] = []

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if status_seen:
                self.calls.record_status(route, status_seen[0])

    async def _send_error(
        self, send: Callable, status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        body = json.dumps(self.error_body(status, message)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class DateHeader:
    """ASGI middleware: a `Date` header (RFC 9110, GMT) from the sandbox's own clock on every
    HTTP response, as a real server sends it. Clients take the service's time from it (the
    watermark of incremental batches); `now` is the state's clock, so time travel moves it too.
    Served by uvicorn, the sandbox runner turns uvicorn's own Date header off."""

    def __init__(self, app: Any, *, now: Callable[[], Any]) -> None:
        self.app = app
        self.now = now

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_date(message: dict) -> None:
            if message["type"] == "http.response.start":
                from email.utils import format_datetime

                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", format_datetime(self.now(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_date)


class _DropLogFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for each deliberate ``DroppedConnection``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_drop_filter = _DropLogFilter()


def install_drop_log_filter() -> None:
    """Silence uvicorn's "Exception in ASGI application" for deliberate drops (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if _drop_filter not in logger.filters:
        logger.addFilter(_drop_filter)


__all__ = [
    "CONTROL_PREFIX",
    "DateHeader",
    "RouteCounter",
    "SandboxMiddleware",
    "install_drop_log_filter",
    "route_key",
    "route_template",
]
