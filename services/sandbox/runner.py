"""Serve the sandbox apps with uvicorn on loopback (tests, the demo, benchmarks, the CLI).

* ``serve_app(app)`` — one app on a real loopback port (async context manager).
* ``run_sandboxes(size=..., seed=...)`` — the Credly and the Docebo sandbox over one generated
  demo world, as an async context manager yielding ``RunningSandboxes`` (base URLs, credentials,
  the apps and their in-process handles).
* ``SandboxThread(...)`` — the same in a background thread with its own loop, for sync code.

Port 0 (the default) lets the OS pick free ports; the real ones are in the base URLs. The Docebo
sandbox is imported lazily; without it only Credly is served and ``docebo`` is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from services.core.listener import QuietServer, listening_socket
from services.sandbox.faults import FaultConfig
from services.sandbox.middleware import install_drop_log_filter
from services.sandbox.webhooks import DEFAULT_RETRY_DELAYS, WebhookSender, only_200


@dataclass
class ServedApp:
    host: str
    port: int
    server: uvicorn.Server
    task: asyncio.Task

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


async def start_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start ``app`` with uvicorn in the running loop. The socket is bound and listening before
    this returns, so the real port is known and early connections wait in the backlog."""
    install_drop_log_filter()
    sock = listening_socket(host, port, backlog=128)
    real_port = sock.getsockname()[1]
    # The sandbox apps send their own Date header (their clock, which time travel moves).
    own_date = getattr(getattr(app, "state", None), "sandbox", None) is not None
    config = uvicorn.Config(
        app,
        date_header=not own_date,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{real_port}")
    return ServedApp(host, real_port, server, task)


async def stop_app(served: ServedApp) -> None:
    served.server.should_exit = True
    try:
        await served.task
    except SystemExit as exc:  # uvicorn exits on lifespan startup failure
        raise RuntimeError(f"sandbox server on port {served.port} failed to start") from exc


@contextlib.asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[ServedApp]:
    """``async with serve_app(app) as served: served.origin`` — one app on a real server."""
    served = await start_app(app, host, port)
    try:
        yield served
    finally:
        await stop_app(served)


# --------------------------------------------------------------------------------------------
# Both sandboxes
# --------------------------------------------------------------------------------------------

CREDLY_RATE_LIMIT = (100, 60.0)  # [I] Credly publishes no figure; per-minute window (credly.md §1.8)
DOCEBO_RATE_LIMIT = (1000, 3600.0)  # docebo.md: 1,000 calls per hour per IP


@dataclass
class CredlySandbox:
    """A running Credly sandbox: what a client needs, and the in-process handles."""

    base_url: str
    organization_id: str
    token: str
    app: Any

    @property
    def handles(self) -> Any:
        return self.app.state.sandbox

    @property
    def state(self) -> Any:
        return self.handles.state

    def connection(self) -> dict[str, str]:
        return {"base_url": self.base_url, "organization_id": self.organization_id, "token": self.token}


@dataclass
class DoceboSandbox:
    base_url: str
    client_id: str
    client_secret: str
    app: Any

    @property
    def handles(self) -> Any:
        return getattr(self.app.state, "sandbox", None)

    @property
    def state(self) -> Any:
        handles = self.handles
        return handles.state if handles is not None else None

    def connection(self) -> dict[str, str]:
        return {"base_url": self.base_url, "client_id": self.client_id, "client_secret": self.client_secret}


@dataclass
class RunningSandboxes:
    credly: CredlySandbox
    docebo: DoceboSandbox | None
    data: Any = None

    def connection_info(self) -> dict[str, Any]:
        """The CLI's first line: ``{"credly": {...}, "docebo": {...}}``."""
        return {
            "credly": self.credly.connection(),
            "docebo": self.docebo.connection() if self.docebo is not None else None,
        }


@dataclass
class SandboxOptions:
    """How to build and serve both sandboxes (the ``credly-console sandbox`` flags)."""

    host: str = "127.0.0.1"
    credly_port: int = 0
    docebo_port: int = 0
    size: str = "small"
    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    rate_limit: bool = False
    credly_webhook: str | None = None
    docebo_webhook: str | None = None
    credly_token: str | None = None
    webhook_retry_delays: tuple[float, ...] | None = None
    with_docebo: bool = True
    data: Any = None  # a DemoData to serve instead of generating one

    def faults(self, rate: tuple[int, float]) -> FaultConfig:
        return FaultConfig(
            seed=self.seed,
            latency_ms=self.latency_ms,
            jitter_ms=self.jitter_ms,
            fail_rate=self.fail_rate,
            drop_rate=self.drop_rate,
            rate_limit=rate[0] if self.rate_limit else None,
            rate_window_s=rate[1],
        )


def _docebo_factory() -> tuple[Any, Any] | None:
    """``(DoceboState, create_docebo_app)`` once the Docebo sandbox exists, else None."""
    try:
        from services.sandbox.docebo.app import create_docebo_app
        from services.sandbox.docebo.state import DoceboState
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("services.sandbox.docebo"):
            return None
        raise
    return DoceboState, create_docebo_app


def build_data(options: SandboxOptions) -> Any:
    if options.data is not None:
        return options.data
    from services.sandbox.demo_data import generate

    return generate(options.size, options.seed)  # type: ignore[arg-type]


def build_apps(options: SandboxOptions) -> tuple[Any, Any | None, Any]:
    """``(credly_app, docebo_app or None, data)`` — not yet served."""
    from services.sandbox.credly.app import create_credly_app
    from services.sandbox.credly.state import DEFAULT_TOKEN, CredlyState

    data = build_data(options)
    credly_state = CredlyState.from_demo(data, token=options.credly_token or DEFAULT_TOKEN)
    sender = WebhookSender(
        options.credly_webhook,
        accept=only_200,
        retry_delays=options.webhook_retry_delays or DEFAULT_RETRY_DELAYS,
    )
    credly_app = create_credly_app(credly_state, options.faults(CREDLY_RATE_LIMIT), webhooks=sender)

    docebo_app = None
    factory = _docebo_factory() if options.with_docebo else None
    if factory is not None:
        docebo_state_cls, create_docebo_app = factory
        docebo_state = docebo_state_cls.from_demo(data)
        docebo_app = create_docebo_app(docebo_state, options.faults(DOCEBO_RATE_LIMIT))
        if options.docebo_webhook or options.webhook_retry_delays:
            settings: dict[str, Any] = {}
            if options.docebo_webhook:
                settings["url"] = options.docebo_webhook
            if options.webhook_retry_delays:
                settings["retry_delays"] = list(options.webhook_retry_delays)
            docebo_app.state.docebo_webhooks.configure(settings)
    return credly_app, docebo_app, data


def _running(credly: ServedApp, credly_app: Any, docebo: ServedApp | None, docebo_app: Any, data: Any) -> RunningSandboxes:
    state = credly_app.state.sandbox.state
    credly_info = CredlySandbox(f"{credly.origin}/v1", state.organization_id, state.token, credly_app)
    docebo_info = None
    if docebo is not None:
        dstate = docebo_app.state.sandbox.state if hasattr(docebo_app.state, "sandbox") else None
        docebo_info = DoceboSandbox(
            docebo.origin,
            getattr(dstate, "client_id", ""),
            getattr(dstate, "client_secret", ""),
            docebo_app,
        )
    return RunningSandboxes(credly_info, docebo_info, data)


@contextlib.asynccontextmanager
async def run_sandboxes(options: SandboxOptions | None = None, **kw: Any) -> AsyncIterator[RunningSandboxes]:
    """Serve both sandboxes in the running loop::

        async with run_sandboxes(size="small", seed=1) as sb:
            sb.credly.base_url, sb.credly.token, sb.docebo.base_url ...
    """
    options = options or SandboxOptions(**kw)
    credly_app, docebo_app, data = build_apps(options)
    credly = await start_app(credly_app, options.host, options.credly_port)
    docebo = None
    try:
        if docebo_app is not None:
            docebo = await start_app(docebo_app, options.host, options.docebo_port)
        yield _running(credly, credly_app, docebo, docebo_app, data)
    finally:
        for served in (docebo, credly):
            if served is not None:
                await stop_app(served)


class SandboxThread:
    """Both sandboxes on uvicorn in a background thread, for sync tests, the demo and benchmarks::

        with SandboxThread(size="small") as sb:
            httpx.get(sb.credly.base_url + ...)
    """

    def __init__(self, options: SandboxOptions | None = None, **kw: Any) -> None:
        self.options = options or SandboxOptions(**kw)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sandboxes: RunningSandboxes | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> RunningSandboxes:
        self._thread = threading.Thread(target=self._main, name="sandboxes", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("sandboxes did not start in time")
        if self._error is not None:
            raise RuntimeError("sandboxes failed to start") from self._error
        assert self.sandboxes is not None
        return self.sandboxes

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_sandboxes(self.options) as sandboxes:
            self.sandboxes = sandboxes
            self._ready.set()
            await self._stop.wait()

    def call(self, coro: Any, timeout: float | None = 30.0) -> Any:
        """Run a coroutine in the sandboxes' loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError("sandboxes stopped with an error") from self._error

    def __enter__(self) -> RunningSandboxes:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
