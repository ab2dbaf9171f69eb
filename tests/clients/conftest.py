"""Helpers for the client tests: recorded instant sleeps, a transport that loses responses after
the app has handled the request, and a log capture that covers every logger at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from services.clients.http import HttpPolicy


class SleepRecorder:
    """An injectable `HttpPolicy.sleep` that returns at once and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def fast_policy(sleeps) -> HttpPolicy:
    """Default policy except that retry sleeps are recorded instead of slept."""
    return HttpPolicy(sleep=sleeps)


class LosingTransport(httpx.AsyncBaseTransport):
    """Forwards each request to `inner` (so the app really handles it) and then, when
    `lose(request)` says so, throws the response away and raises `error` — a connection dropped
    after the request was sent, or a read timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport,
                 lose: Callable[[httpx.Request], bool],
                 error: type[httpx.TransportError] = httpx.RemoteProtocolError) -> None:
        self.inner = inner
        self.lose = lose
        self.error = error
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.lose(request):
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise self.error("Server disconnected without sending a response.", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class RefusingTransport(httpx.AsyncBaseTransport):
    """Fails `times` times with ConnectError (the request never left), then forwards."""

    def __init__(self, inner: httpx.AsyncBaseTransport, times: int) -> None:
        self.inner = inner
        self.times = times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.times > 0:
            self.times -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def all_logs(caplog):
    """Capture every record of every logger (ours, httpx, httpcore, uvicorn) at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "services", "services.clients.http", "uvicorn", "uvicorn.error",
                 "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def log_text(caplog) -> str:
    """Everything the captured records would print, messages and arguments included."""
    parts = []
    for r in caplog.records:
        parts.append(r.getMessage())
        parts.append(repr(r.args))
        if r.exc_text:
            parts.append(r.exc_text)
        if r.exc_info:
            parts.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(parts)


@pytest.fixture
def collected_log_text():
    return log_text


@pytest.fixture
def transports():
    """The purpose-built transports, for test modules (conftest is not importable by name)."""

    class _T:
        Losing = LosingTransport
        Refusing = RefusingTransport

    return _T


# ------------------------------------------------------------------------------------------
# The Credly sandbox, in-process

CREDLY_BASE = "http://credly.sandbox.test/v1"


@pytest.fixture(scope="session")
def demo_small():
    from services.sandbox.demo_data import generate

    return generate("small", 0)


@pytest.fixture
def credly_world(demo_small):
    """(state, app) of a Credly sandbox holding the small demo organisation."""
    from services.sandbox.credly.app import create_credly_app
    from services.sandbox.credly.state import CredlyState
    from services.sandbox.faults import FaultConfig

    state = CredlyState.from_demo(demo_small)
    app = create_credly_app(state, FaultConfig(seed=1))
    return state, app


@pytest.fixture
async def credly(credly_world, fast_policy):
    from services.clients.credly import CredlyClient

    state, app = credly_world
    client = CredlyClient(CREDLY_BASE, state.organization_id, state.token, policy=fast_policy,
                          transport=httpx.ASGITransport(app=app))
    yield client
    await client.aclose()


# ------------------------------------------------------------------------------------------
# The Docebo sandbox, in-process

DOCEBO_BASE = "http://docebo.sandbox.test"


@pytest.fixture
def docebo_world(demo_small):
    """(state, app) of a Docebo sandbox holding the small demo tenant."""
    from services.sandbox.docebo.app import create_docebo_app
    from services.sandbox.docebo.state import DoceboState
    from services.sandbox.faults import FaultConfig

    state = DoceboState.from_demo(demo_small, client_secret="docebo-sandbox-secret-0001",
                                  admin_password="sandbox-admin-pass-0001")
    app = create_docebo_app(state, FaultConfig(seed=2))
    return state, app


@pytest.fixture
async def docebo(docebo_world, fast_policy):
    from services.clients.docebo import DoceboClient

    state, app = docebo_world
    client = DoceboClient(DOCEBO_BASE, state.client_id, state.client_secret, policy=fast_policy,
                          transport=httpx.ASGITransport(app=app))
    yield client
    await client.aclose()
