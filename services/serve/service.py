"""``credly-console serve``: receiver + inbox workers + scheduler + mail retry in one process.

Design notes: docs/design/serve.md
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from services.clients.budget import caller_class
from services.core.listener import QuietServer, listening_socket
from services.serve.receiver import (
    InboxWriter,
    ReceiverSettings,
    base_url,
    create_receiver_app,
    webhook_urls,
)
from services.store import inbox, retention
from services.store.db import Store

log = logging.getLogger("credly_console.serve")

ClientFactory = Callable[[], tuple[Any, Any]]


@dataclasses.dataclass
class ServeOptions:
    """How ``serve`` runs. The defaults are production's; tests and the demo inject the rest."""

    host: str | None = None  # None: [server] host
    port: int | None = None  # None: [server] port; 0: any free port
    public_url: str = ""
    workers: int = 4
    scheduler: bool = True
    mail: bool = True
    mail_interval_s: float = 30.0
    grace_s: float = 10.0
    lease_s: float = 120.0
    poll_s: float = 1.0
    policy: inbox.RetryPolicy = dataclasses.field(default_factory=inbox.RetryPolicy)
    handlers: dict[str, Any] | None = None  # None: the flows' real-time handlers
    resolver: Any = None  # None: worker.resolve_credly
    clients: ClientFactory | None = None  # None: built from the config and secrets
    run_job: Any = None  # None: run the job's flow in a thread (scheduler)
    clock: Callable[[], dt.datetime] | None = None
    prune_after_days: int = 90
    synchronous: str = "FULL"  # inbox writer (W2 "stored durably"): FULL survives a power cut; NORMAL only a killed process
    receiver: ReceiverSettings | None = None  # None: from the config and secrets


def default_clients(config: Any, secrets: Any, db_path: Path | None = None) -> ClientFactory:
    """A factory building the Credly and Docebo clients from the configuration (None for a
    service that is not configured); with `db_path`, Docebo calls count against the install's
    shared budget (issue 15)."""

    def build() -> tuple[Any, Any]:
        from services.clients.factory import build_credly, build_docebo

        credly = build_credly(config, secrets, database=db_path) if config.credly.organization_id else None
        docebo = build_docebo(config, secrets, database=db_path) if config.docebo.base_url else None
        return credly, docebo

    return build


def flow_context(store: Store, credly: Any, docebo: Any) -> Any:
    """The flows' ``FlowContext`` (a stand-in with the same fields before the flows exist)."""
    try:
        from services.flows import FlowContext
    except ImportError:  # pragma: no cover - only before the flows branch lands
        @dataclasses.dataclass
        class FlowContext:  # type: ignore[no-redef]
            store: Any
            credly: Any = None
            docebo: Any = None

    return FlowContext(store=store, credly=credly, docebo=docebo)


async def _aclose(*clients: Any) -> None:
    for client in clients:
        close = getattr(client, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception:  # pragma: no cover
                log.exception("closing a client failed")


def _daemon_call(func: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``func`` in a daemon thread; an asyncio future for its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any = None, error: BaseException | None = None) -> None:
        """On the loop: hand the outcome over unless the awaiting task gave up on it already."""
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def main() -> None:
        try:
            result = func()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            # passed now: `exc` is unset when this block ends, before the loop runs the callback
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=main, name="scheduled-flow", daemon=True).start()
    return future


# -- the engine ----------------------------------------------------------------------------------


class Engine:
    """Workers, scheduler and mail round in one event loop (see the module docstring)."""

    def __init__(self, db_path: str | Path, config: Any, secrets: Any, options: ServeOptions | None = None) -> None:
        self.db_path = Path(db_path)
        self.config = config
        self.secrets = secrets
        self.options = options or ServeOptions()
        self.clients = self.options.clients or default_clients(config, secrets, self.db_path)
        self.worker: Any = None
        self.scheduler: Any = None
        self.mailer: Any = None
        self._cancel_flows = threading.Event()
        self._flow_threads: set[asyncio.Future] = set()
        self.mail_rounds = 0

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        from services.serve.inbox_worker import EventCache, InboxWorker

        opts = self.options
        store = Store(self.db_path)
        credly = docebo = None
        try:
            try:
                credly, docebo = self.clients()
            except Exception as exc:  # keep receiving: events wait in the inbox until it is fixed
                log.error("the API clients could not be built (%s); events are stored and will fail "
                          "until the connections are fixed and serve restarted", exc)
            ctx = flow_context(store, EventCache(credly) if credly is not None else None, docebo)
            self.worker = InboxWorker(
                ctx,
                handlers=opts.handlers,
                resolver=opts.resolver,
                concurrency=opts.workers,
                policy=opts.policy,
                lease_s=opts.lease_s,
                poll_s=opts.poll_s,
                grace_s=opts.grace_s,
                clock=opts.clock,
            )
            with caller_class("realtime"):  # events go ahead of batch calls (issue 15 point 2)
                tasks = [asyncio.create_task(self.worker.run(stop), name="inbox-worker")]
            if opts.scheduler:
                from services.serve.scheduler import Scheduler

                self.scheduler = Scheduler(store, opts.run_job or self._run_job, clock=opts.clock)
                tasks.append(asyncio.create_task(self.scheduler.run(stop), name="scheduler"))
            if opts.mail:
                from services.serve.mailer import Mailer

                self.mailer = Mailer(self.config.smtp, self.secrets, clock=opts.clock)
                tasks.append(asyncio.create_task(self._mail_loop(stop), name="mail"))
            tasks.append(asyncio.create_task(self._housekeeping(store, stop), name="housekeeping"))
            tasks.append(asyncio.create_task(self._checkpoints(store, stop), name="wal-checkpoint"))
            if ready is not None:
                ready()
            await stop.wait()
            self._cancel_flows.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._flow_threads:
                await asyncio.wait(self._flow_threads, timeout=max(opts.grace_s, 1.0))
        finally:
            await _aclose(credly, docebo)
            store.close()

    # -- scheduled flows ------------------------------------------------------------------
    async def _run_job(self, job: str) -> Any:
        """Run a scheduled job's flow in its own thread, store and clients (W4)."""
        from services.core.schedule import JOBS

        flow = JOBS[job].flow
        future = _daemon_call(lambda: asyncio.run(self._run_flow(flow)))
        self._flow_threads.add(future)
        future.add_done_callback(self._flow_threads.discard)
        return await asyncio.shield(future)

    async def _run_flow(self, flow: str) -> Any:
        from services.flows import Callbacks, run_flow

        store = Store(self.db_path)
        credly = docebo = None
        try:
            credly, docebo = self.clients()
            ctx = flow_context(store, credly, docebo)
            return await run_flow(flow, ctx, trigger="schedule",
                                  callbacks=Callbacks(should_cancel=self._cancel_flows.is_set))
        finally:
            await _aclose(credly, docebo)
            store.close()

    # -- mail -----------------------------------------------------------------------------
    def _mail_round(self) -> Any:
        with Store(self.db_path) as store:
            return self.mailer.send_pending(store)

    async def _mail_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._mail_round)
            except Exception:
                log.exception("the mail round failed")
            self.mail_rounds += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.mail_interval_s)

    async def _checkpoints(self, store: Store, stop: asyncio.Event) -> None:
        """The inbox writer never checkpoints (no fsync in an acknowledgement); this keeps the
        WAL bounded even while no event is being processed."""
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=10.0)
            try:
                store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception:
                log.exception("WAL checkpoint failed")

    async def _housekeeping(self, store: Store, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = inbox.prune(store, older_than_days=self.options.prune_after_days)
                if n:
                    log.info("pruned %d processed inbox events older than %d days", n, self.options.prune_after_days)
            except Exception:
                log.exception("inbox pruning failed")
            try:
                days = int(getattr(self.config.server, "run_log_retention_days", 90))
                n = retention.prune_run_logs(store, older_than_days=days)
                if n:
                    log.info("deleted %d run log lines of runs that ended over %d days ago", n, days)
            except Exception:
                log.exception("run log pruning failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=24 * 3600)


class EngineThread:
    """An ``Engine`` in a daemon thread with its own event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> EngineThread:
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the engine did not start in time")
        if self.error is not None:
            raise RuntimeError(f"the engine failed to start: {self.error}") from self.error
        return self

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.engine.run(self._stop, ready=self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by start() / stop()
            self.error = exc
            log.exception("the engine stopped with an error")
        finally:
            self._ready.set()

    def wake(self) -> None:
        self.engine.wake()

    def stop(self, timeout: float = 60.0) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


# -- serving the receiver ------------------------------------------------------------------------

# Listen backlog of the receiver's socket (bound before the server starts, services/core/listener.py):
# deep, so a burst of deliveries waits instead of being refused.
BACKLOG = 2048


def make_server(app: Any, *, grace_s: float = 10.0) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,  # the access log would print the secret path
        timeout_graceful_shutdown=max(1, int(grace_s)),
        timeout_keep_alive=30,
        backlog=BACKLOG,
    )
    return QuietServer(config)


class ReceiverThread:
    """The receiver on uvicorn in a daemon thread (demo, tests, benchmarks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, grace_s: float = 10.0) -> None:
        self.app = app
        self.sock = listening_socket(host, port, backlog=BACKLOG)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.server = make_server(app, grace_s=grace_s)
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> ReceiverThread:
        self._thread = threading.Thread(target=self._main, name="receiver", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout * 100)):
            if self.server.started or self.error is not None or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self.server.started:
            raise RuntimeError(f"the receiver did not start: {self.error}")
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # noqa: BLE001
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class ServeRuntime:
    """Receiver, writer and engine started together in background threads (the demo, tests).

    ``with ServeRuntime(config, secrets, db_path, options) as rt: rt.urls["docebo"]`` — or
    ``async with`` from inside an event loop (start and stop run in a thread)."""

    def __init__(self, config: Any, secrets: Any, db_path: str | Path, options: ServeOptions | None = None) -> None:
        self.config = config
        self.secrets = secrets
        self.db_path = Path(db_path)
        self.options = options or ServeOptions()
        self.settings = self.options.receiver or ReceiverSettings.from_config(config, secrets)
        self.engine = Engine(self.db_path, config, secrets, self.options)
        self.engine_thread = EngineThread(self.engine)
        self.writer = InboxWriter(self.db_path, on_stored=self.engine.wake, synchronous=self.options.synchronous)
        self.receiver: ReceiverThread | None = None

    @property
    def host(self) -> str:
        return self.options.host if self.options.host is not None else self.config.server.host

    @property
    def port(self) -> int:
        if self.receiver is not None:
            return self.receiver.port
        return self.options.port if self.options.port is not None else self.config.server.port

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port, self.options.public_url)

    @property
    def urls(self) -> dict[str, str]:
        return webhook_urls(self.base_url, self.settings.secret)

    def start(self) -> ServeRuntime:
        from services.clients.http import set_call_outcome_listener
        from services.store.health import CallOutcomeRecorder

        Store(self.db_path).close()  # create / migrate once, before the threads open it
        set_call_outcome_listener(CallOutcomeRecorder(self.db_path))  # health from real calls (issue 16)
        self.writer.start()
        self.engine_thread.start()
        app = create_receiver_app(self.settings, self.writer, _ops(self.config, self.db_path, self.writer))
        self.receiver = ReceiverThread(app, self.host, self.port, grace_s=self.options.grace_s).start()
        return self

    def stop(self) -> None:
        from services.clients.http import set_call_outcome_listener

        if self.receiver is not None:
            self.receiver.stop()
        self.writer.stop()
        self.engine_thread.stop()
        set_call_outcome_listener(None)

    def __enter__(self) -> ServeRuntime:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> ServeRuntime:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.stop)


# -- the CLI's foreground server -----------------------------------------------------------------


def run_serve(config: Any, secrets: Any, db_path: str | Path, options: ServeOptions | None = None) -> None:
    """Serve in the foreground until SIGTERM or SIGINT (``credly-console serve``)."""
    asyncio.run(_serve_main(config, secrets, Path(db_path), options or ServeOptions()))


async def _serve_main(config: Any, secrets: Any, db_path: Path, options: ServeOptions) -> None:
    settings = options.receiver or ReceiverSettings.from_config(config, secrets)
    host = options.host if options.host is not None else config.server.host
    port = options.port if options.port is not None else config.server.port
    sock = listening_socket(host, port, backlog=BACKLOG)
    real_port = sock.getsockname()[1]
    base = base_url(host, real_port, options.public_url)
    shown = base_url(host, real_port)
    log.info(
        "credly-console serve listening on %s (Docebo: %s/webhooks/docebo/<secret>, Credly: "
        "%s/webhooks/credly/<secret>%s)",
        shown, base, base, f"; public URL {options.public_url}" if options.public_url else "",
    )
    Store(db_path).close()
    engine = Engine(db_path, config, secrets, options)
    writer = InboxWriter(db_path, on_stored=engine.wake, synchronous=options.synchronous)
    writer.start()
    engine_thread = EngineThread(engine).start()
    server = make_server(create_receiver_app(settings, writer, _ops(config, db_path, writer)), grace_s=options.grace_s)

    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if server.should_exit:
            log.warning("second %s: stopping without waiting", signal.Signals(signum).name)
            server.force_exit = True
            return
        log.info("%s received: stopping (no new requests; events in hand finish or go back to the queue)",
                 signal.Signals(signum).name)
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(writer.stop)
        await asyncio.to_thread(engine_thread.stop)
        counts = await asyncio.to_thread(_counts, db_path)
        log.info("stopped; inbox backlog %d (kept for the next start), failed %d", counts["backlog"], counts["failed"])


def _ops(config: Any, db_path: Path, writer: InboxWriter) -> list[Any]:
    """/healthz, /readyz, /metrics (issue 15 point 3); the budget shown is the install's Docebo one."""
    from services.serve.ops import ops_routes

    def budgets() -> list[Any]:
        from services.clients.factory import credly_budget, docebo_budget

        return ([docebo_budget(config, db_path)] if getattr(config.docebo, "base_url", "") else []) + (
            [credly_budget(config, db_path)] if getattr(config.credly, "organization_id", "") else [])

    return ops_routes(db_path, writer, budgets)


def _counts(db_path: Path) -> dict[str, int]:
    with Store(db_path) as store:
        return inbox.counts(store)
