"""The Docebo sandbox app: ``create_docebo_app(state, faults=None, *, sender=None)`` serving a
``DoceboState`` as Docebo Learn's REST API at the server root (api/docebo.md §8 routes, mirrored in
services/clients/routes.py). API routes: routes.py; ``/_sandbox/`` control: control.py; wire
format: wire.py; webhooks: webhooks.py. Errors are Docebo's body (§1.4); 429s may drop
``Retry-After`` (§1.5); every response carries a ``Date`` from the tenant's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from services.sandbox.common import SandboxHandles
from services.sandbox.docebo.control import CONTROL_ROUTES
from services.sandbox.docebo.records import DoceboError
from services.sandbox.docebo.routes import API_ROUTES
from services.sandbox.docebo.state import DoceboState
from services.sandbox.docebo.webhooks import DoceboWebhooks
from services.sandbox.docebo.wire import error_body, error_response
from services.sandbox.faults import FaultConfig
from services.sandbox.middleware import DateHeader, RouteCounter, SandboxMiddleware
from services.sandbox.webhooks import WebhookSender, any_2xx_3xx


def create_docebo_app(
    state: DoceboState,
    faults: FaultConfig | None = None,
    *,
    sender: WebhookSender | None = None,
) -> Starlette:
    """The Docebo sandbox app over `state`. `faults` (a FaultConfig) may be shared with the
    runner; `sender` lets tests pass a WebhookSender (e.g. with a mock transport). In-process
    handles: `app.state.sandbox` (state, faults, calls, webhooks = the sender) and
    `app.state.docebo_webhooks` (the `DoceboWebhooks` dispatcher)."""
    faults = faults or FaultConfig()
    calls = RouteCounter()
    sender = sender or WebhookSender(accept=any_2xx_3xx, retry_delays=(1.0, 2.0, 5.0, 15.0, 30.0, 60.0))
    hooks = DoceboWebhooks(sender)
    state.emit = hooks.emit
    routes = API_ROUTES + CONTROL_ROUTES
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(DateHeader, now=state.now),
            Middleware(_RetryAfterSwitch, state=state),
            Middleware(SandboxMiddleware, routes=routes, faults=faults, calls=calls, error_body=error_body),
        ],
        exception_handlers={DoceboError: _on_docebo_error, HTTPException: _on_http_error},
        lifespan=_lifespan,
    )
    app.state.sandbox = SandboxHandles(state=state, faults=faults, calls=calls, webhooks=sender)
    app.state.docebo_webhooks = hooks
    return app


class _RetryAfterSwitch:
    """Drops the `Retry-After` header from 429s when `state.retry_after_header` is False
    (api/docebo.md §1.5: Docebo documents none)."""

    def __init__(self, app: Any, *, state: DoceboState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or self.state.retry_after_header:
            await self.app(scope, receive, send)
            return

        async def strip(message: dict) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 429:
                message = dict(message)
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"retry-after"]
            await send(message)

        await self.app(scope, receive, strip)


async def _on_docebo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DoceboError)
    return error_response(exc.status, exc.message)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = {404: f"Route {request.url.path} not found", 405: f"Method {request.method} not allowed on {request.url.path}"}.get(
        status, str(exc.detail)
    )
    response = error_response(status, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    sender: WebhookSender = app.state.sandbox.webhooks
    hooks: DoceboWebhooks = app.state.docebo_webhooks
    sender.bind_loop(asyncio.get_running_loop())
    try:
        yield
    finally:
        hooks.flush()
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(sender.drain(), timeout=2.0)
        await sender.aclose()


__all__ = ["create_docebo_app"]
