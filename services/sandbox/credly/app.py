"""The Credly sandbox app: ``create_credly_app(state, faults=None)`` over a ``CredlyState``, base
URL ``http://<host>:<port>/v1``. API routes: routes.py; ``/_sandbox/`` control: control.py; wire
format: wire.py. In-process, ``app.state.sandbox`` is a ``SandboxHandles(state, faults, calls,
webhooks)``. Every response carries a ``Date`` from the organisation's clock (docs/sandboxes.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from services.sandbox.common import SandboxHandles
from services.sandbox.credly.control import CONTROL_ROUTES
from services.sandbox.credly.records import Event
from services.sandbox.credly.routes import API_ROUTES
from services.sandbox.credly.state import CredlyState
from services.sandbox.credly.wire import error_body, error_response
from services.sandbox.faults import FaultConfig
from services.sandbox.middleware import DateHeader, RouteCounter, SandboxMiddleware
from services.sandbox.webhooks import WebhookSender, only_200


def create_credly_app(
    state: CredlyState,
    faults: FaultConfig | None = None,
    *,
    webhooks: WebhookSender | None = None,
    webhook_url: str | None = None,
    calls: RouteCounter | None = None,
) -> Starlette:
    """The Credly sandbox over ``state``. ``webhooks`` defaults to a sender that counts only
    HTTP 200 as delivered (credly.md §4.1) aimed at ``webhook_url`` (None = off)."""
    faults = faults if faults is not None else FaultConfig()
    calls = calls if calls is not None else RouteCounter()
    sender = webhooks if webhooks is not None else WebhookSender(webhook_url, accept=only_200)
    if webhooks is not None and webhook_url is not None:
        sender.url = webhook_url

    def on_event(event: Event) -> None:
        if sender.url:
            sender.send(state.notice(event))

    state.listeners.append(on_event)
    routes = API_ROUTES + CONTROL_ROUTES
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(DateHeader, now=state.now),
            Middleware(
                SandboxMiddleware,
                routes=routes,
                faults=faults,
                calls=calls,
                error_body=error_body,
                strip_trailing_slash=True,
            ),
        ],
        exception_handlers={HTTPException: _http_error, 500: _server_error},
        lifespan=_lifespan,
    )
    app.state.sandbox = SandboxHandles(state=state, faults=faults, calls=calls, webhooks=sender)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "Not found")
    if exc.status_code == 405:
        return error_response(405, "Method not allowed", dict(exc.headers or {}))
    return error_response(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "Internal server error")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    sender: WebhookSender = app.state.sandbox.webhooks
    sender.bind_loop()
    try:
        yield
    finally:
        await sender.aclose()


__all__ = ["create_credly_app"]
