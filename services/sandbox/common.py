"""Pieces shared by the Credly and Docebo sandboxes: fault injection, per-route call counters and
the outbound webhook sender.

Nothing here knows either API. Each sandbox app plugs in its own error body (Credly:
``{"data": {"message": ...}, "metadata": null}``, credly.md §1.4; Docebo: its own shape) and its
own notion of a delivered webhook (Credly: HTTP 200 only, credly.md §4.1; Docebo: any 2xx/3xx).

Fault injection (issue 3, all [I] sandbox decisions)
----------------------------------------------------
``FaultConfig`` is deterministic for a given seed: every call that reaches the middleware draws
the same three numbers from a seeded generator (jitter, fail, drop) whatever the configuration, so
the same seed and the same sequence of calls give the same outcomes. It can be changed while the
app runs (``update()``, or ``POST /_sandbox/faults`` on either app) and can force the next N calls
of one route to fail (``force()``), which is what tests of retry and idempotency want.

Outcomes, in the order they are checked:

* rate limited: more than ``rate_limit`` calls in the current fixed window of ``rate_window_s``
  seconds → 429 with ``Retry-After`` (whole seconds until the window ends); not processed.
* fail: 5xx (``fail_status``) with the API's error body; not processed.
* drop: the request IS processed (state changes, events fire) and then the connection is cut
  without a response, so the client cannot know whether it worked.

How a dropped connection looks to a client
------------------------------------------
Over a real server (uvicorn) the middleware sends the response head and then raises
``DroppedConnection``; uvicorn closes the socket because the response had started, so httpx sees
the head and then an unterminated body and raises ``httpx.RemoteProtocolError``.

In-process (``httpx.ASGITransport`` with its default ``raise_app_exceptions=True``) the same
``DroppedConnection`` propagates out of the transport. It subclasses ``httpx.RemoteProtocolError``
(so also ``httpx.TransportError``), and httpx attaches the request to it, so a client sees the
same exception type either way. Example (clients' test "a dropped issue call makes no duplicate")::

    app = create_credly_app(state)
    app.state.sandbox.faults.force("drop", route="POST /v1/organizations/{org}/badges")
    # the client's first POST raises httpx.RemoteProtocolError after the badge was created;
    # its retry must end as "already holds" (422) and the org must hold exactly one badge.

Call counters
-------------
``RouteCounter`` counts every API call that reached the app (also those answered by a fault),
keyed ``"METHOD /route/{template}"`` exactly as the route is declared (e.g.
``"GET /v1/organizations/{org}/badges"``); unmatched paths count as ``"METHOD (no route)"``.
Control calls under ``/_sandbox/`` are neither counted nor faulted.

Webhook sender
--------------
``WebhookSender.send(payload)`` returns at once (never blocks the request that caused the event);
a task POSTs the JSON and retries after each delay in ``retry_delays`` (the last one repeats) until
``accept(status)`` is true or ``max_attempts`` is reached. ``await drain()`` (same loop) or
``wait_idle()`` (any thread) wait until nothing is outstanding; ``deliveries`` records every
attempt for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx
from starlette.routing import BaseRoute, Match

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox"

FAULT_KINDS = ("fail", "drop", "rate_limit")


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


class DroppedConnection(httpx.RemoteProtocolError):
    """The sandbox processed the request and then cut the connection without a response.

    Raised by ``SandboxMiddleware``. In-process (httpx.ASGITransport) clients see it directly;
    over uvicorn the client sees an ``httpx.RemoteProtocolError`` of its own."""

    def __init__(self, route: str) -> None:
        super().__init__(f"sandbox dropped the connection after processing {route}")
        self.route = route


@dataclass(frozen=True)
class FaultDecision:
    """What the middleware does with one call."""

    delay_s: float = 0.0
    action: str | None = None  # None | "fail" | "drop" | "rate_limit"
    status: int = 0
    retry_after: int | None = None


@dataclass
class _Forced:
    kind: str
    route: str | None
    remaining: int
    status: int | None


@dataclass
class FaultConfig:
    """Seeded, switchable fault injection (see the module docstring).

    ``latency_ms`` + uniform ``[0, jitter_ms)`` is slept before each call; ``fail_rate`` and
    ``drop_rate`` are shares in [0, 1]; ``rate_limit`` calls per ``rate_window_s`` seconds
    (None = unlimited)."""

    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    fail_status: int = 503
    drop_rate: float = 0.0
    rate_limit: int | None = None
    rate_window_s: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    _SETTABLE = (
        "seed",
        "latency_ms",
        "jitter_ms",
        "fail_rate",
        "fail_status",
        "drop_rate",
        "rate_limit",
        "rate_window_s",
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._validate()
        self._rng = random.Random(self.seed)
        self._window_start: float | None = None
        self._window_calls = 0
        self._forced: list[_Forced] = []

    # -- configuration ------------------------------------------------------------------------

    def _validate(self) -> None:
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_ms", "jitter_ms"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 500 <= int(self.fail_status) <= 599:
            raise ValueError(f"fail_status must be a 5xx status, got {self.fail_status!r}")
        if self.rate_limit is not None and int(self.rate_limit) < 1:
            raise ValueError(f"rate_limit must be >= 1 or None, got {self.rate_limit!r}")
        if float(self.rate_window_s) <= 0:
            raise ValueError(f"rate_window_s must be > 0, got {self.rate_window_s!r}")

    def update(self, **changes: Any) -> FaultConfig:
        """Change settings at runtime. Unknown names raise ``ValueError``. Changing ``seed``
        restarts the random sequence; changing the rate limit starts a new window."""
        unknown = set(changes) - set(self._SETTABLE)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            old = {name: getattr(self, name) for name in changes}
            for name, value in changes.items():
                setattr(self, name, _coerce(name, value))
            try:
                self._validate()
            except ValueError:
                for name, value in old.items():
                    setattr(self, name, value)
                raise
            if "seed" in changes:
                self._rng = random.Random(self.seed)
            if "rate_limit" in changes or "rate_window_s" in changes:
                self._window_start = None
                self._window_calls = 0
        return self

    def reset(self, *, settings: bool = False) -> None:
        """Restart the random sequence and the rate window, drop forced faults; with
        ``settings=True`` also switch every fault off (seed kept)."""
        with self._lock:
            if settings:
                for f in fields(self):
                    if f.name in self._SETTABLE and f.name != "seed":
                        setattr(self, f.name, f.default)
            self._rng = random.Random(self.seed)
            self._window_start = None
            self._window_calls = 0
            self._forced.clear()

    def force(
        self, kind: str, *, route: str | None = None, times: int = 1, status: int | None = None
    ) -> None:
        """Make the next ``times`` calls (of ``route``, a "METHOD /template" key, or of any route)
        end as ``kind`` ("fail", "drop" or "rate_limit"), before any random outcome."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {kind!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if status is not None and kind == "fail" and not 500 <= status <= 599:
            raise ValueError("a forced failure needs a 5xx status")
        with self._lock:
            self._forced.append(_Forced(kind, route, times, status))

    def apply(self, body: Mapping[str, Any]) -> None:
        """A ``/_sandbox/faults`` body (both sandboxes): ``reset`` switches every fault off
        first, the other settings are changed, then ``force`` (one ``{kind, route, times,
        status}`` or a list; kind "fail" by default) is queued. A bad value raises ValueError
        (or TypeError)."""
        changes = dict(body)
        forced = changes.pop("force", None)
        if changes.pop("reset", False):
            self.reset(settings=True)
        if changes:
            self.update(**changes)
        for item in [forced] if isinstance(forced, dict) else (forced or []):
            if not isinstance(item, dict):
                raise ValueError(f"a forced fault is an object with kind, route, times, status; got {item!r}")
            self.force(
                item.get("kind", "fail"),
                route=item.get("route"),
                times=int(item.get("times", 1)),
                status=item.get("status"),
            )

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            out = {name: getattr(self, name) for name in self._SETTABLE}
            out["forced"] = [asdict(f) for f in self._forced]
        return out

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.fail_rate
            or self.drop_rate
            or self.rate_limit
            or self._forced
        )

    # -- decisions ----------------------------------------------------------------------------

    def decide(self, route: str) -> FaultDecision:
        """The outcome of the next call of ``route``. Draws exactly three random numbers."""
        with self._lock:
            r_jitter, r_fail, r_drop = self._rng.random(), self._rng.random(), self._rng.random()
            delay = (float(self.latency_ms) + r_jitter * float(self.jitter_ms)) / 1000.0

            if self.rate_limit is not None:
                now = self.clock()
                window = float(self.rate_window_s)
                if self._window_start is None or now >= self._window_start + window:
                    self._window_start, self._window_calls = now, 0
                if self._window_calls >= int(self.rate_limit):
                    wait = max(1, math.ceil(self._window_start + window - now))
                    return FaultDecision(delay, "rate_limit", 429, wait)
                self._window_calls += 1

            for forced in self._forced:
                if forced.route is None or forced.route == route:
                    forced.remaining -= 1
                    if forced.remaining <= 0:
                        self._forced.remove(forced)
                    if forced.kind == "rate_limit":
                        return FaultDecision(delay, "rate_limit", 429, 1)
                    if forced.kind == "fail":
                        return FaultDecision(delay, "fail", forced.status or int(self.fail_status))
                    return FaultDecision(delay, "drop")

            if r_fail < float(self.fail_rate):
                return FaultDecision(delay, "fail", int(self.fail_status))
            if r_drop < float(self.drop_rate):
                return FaultDecision(delay, "drop")
            return FaultDecision(delay)


def _coerce(name: str, value: Any) -> Any:
    if name == "rate_limit":
        return None if value in (None, "", 0, False) else int(value)
    if name in ("seed", "fail_status"):
        return int(value)
    return float(value)


# --------------------------------------------------------------------------------------------
# Call counters
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Middleware
# --------------------------------------------------------------------------------------------

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
            # Process fully, swallow the answer, then start a response and abort (see module doc).
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
        self, send: Callable, status: int, message: str, extra: Iterable[tuple[bytes, bytes]] = ()
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


# --------------------------------------------------------------------------------------------
# Webhook sender
# --------------------------------------------------------------------------------------------


def only_200(status: int) -> bool:
    """Credly counts a delivery as received only on HTTP 200 (credly.md §4.1)."""
    return status == 200


def any_2xx_3xx(status: int) -> bool:
    """Docebo counts any 2xx or 3xx as received (docebo.md, webhooks)."""
    return 200 <= status < 400


_UNSET = object()

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 300.0)


@dataclass
class DeliveryAttempt:
    status: int | None
    error: str | None
    at: float


@dataclass
class Delivery:
    """One webhook payload and every attempt to deliver it."""

    url: str
    payload: Any
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False

    @property
    def done(self) -> bool:
        return self.delivered or self.gave_up


class WebhookSender:
    """Asynchronous outbound webhooks with retries (see module docstring).

    ``url`` may be changed at any time (None switches sending off; ``send()`` then returns None).
    ``transport`` is passed to httpx (tests may use a mock transport). ``max_attempts=None`` means
    ``len(retry_delays) + 1`` attempts."""

    def __init__(
        self,
        url: str | None = None,
        *,
        accept: Callable[[int], bool] = only_200,
        retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
        max_attempts: int | None = None,
        timeout: float = 5.0,
        concurrency: int = 4,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        keep: int = 1000,
    ) -> None:
        self.url = url
        self.accept = accept
        self.retry_delays = tuple(float(d) for d in retry_delays) or (0.0,)
        self.max_attempts = max_attempts if max_attempts is not None else len(self.retry_delays) + 1
        self.timeout = timeout
        self.concurrency = concurrency
        self.headers = dict(headers or {})
        self.transport = transport
        self.deliveries: deque[Delivery] = deque(maxlen=keep)

        self._lock = threading.Lock()
        self._outstanding = 0
        self._idle_thread = threading.Event()
        self._idle_thread.set()
        self._idle_async: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backlog: list[Delivery] = []
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._closed = False

    # -- public -------------------------------------------------------------------------------

    def configure(
        self,
        *,
        url: Any = _UNSET,
        retry_delays: Iterable[float] | None = None,
        max_attempts: int | None = None,
    ) -> None:
        if url is not _UNSET:
            self.url = url
        if retry_delays is not None:
            self.retry_delays = tuple(float(d) for d in retry_delays) or (0.0,)
            if max_attempts is None:
                self.max_attempts = len(self.retry_delays) + 1
        if max_attempts is not None:
            self.max_attempts = max_attempts

    def send(self, payload: Any, *, url: str | None = None) -> Delivery | None:
        """Queue ``payload`` for delivery to ``url`` (default: ``self.url``); returns at once.
        Safe from any thread; without a running loop the delivery waits for ``bind_loop``."""
        target = url or self.url
        if not target or self._closed:
            return None
        delivery = Delivery(target, payload)
        with self._lock:
            self.deliveries.append(delivery)
            self._outstanding += 1
            self._idle_thread.clear()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and (self._loop is None or self._loop is running):
            self._bind(running)
            self._spawn(delivery)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._spawn, delivery)
        else:
            with self._lock:
                self._backlog.append(delivery)
        return delivery

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Attach to the loop deliveries run on (the server's); flushes queued deliveries."""
        loop = loop or asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        with self._lock:
            backlog, self._backlog = self._backlog, []
        for delivery in backlog:
            loop.call_soon_threadsafe(self._spawn, delivery)

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    @property
    def idle(self) -> bool:
        return self.outstanding == 0

    async def drain(self, timeout: float | None = None) -> None:
        """Wait (in the sender's loop) until every queued delivery is delivered or given up.
        Raises ``TimeoutError`` after ``timeout`` seconds."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            ok = await asyncio.to_thread(self.wait_idle, timeout)
            if not ok:
                raise TimeoutError("webhook deliveries still outstanding")
            return
        if self._idle_async is None:
            self._idle_async = asyncio.Event()
            if self.idle:
                self._idle_async.set()
        async with asyncio.timeout(timeout):
            while not self.idle:
                self._idle_async.clear()
                if self.idle:
                    break
                await self._idle_async.wait()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block this thread until idle (deliveries run in another thread's loop). True if idle."""
        return self._idle_thread.wait(timeout)

    async def aclose(self) -> None:
        """Cancel outstanding deliveries and close the HTTP client."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- internals ----------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None:
            self.bind_loop(loop)

    def _spawn(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            if self._sem is None:
                self._sem = asyncio.Semaphore(self.concurrency)
            for attempt in range(self.max_attempts):
                if attempt:
                    delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]
                    await asyncio.sleep(delay)
                async with self._sem:
                    status, error = await self._post(delivery)
                delivery.attempts.append(DeliveryAttempt(status, error, time.time()))
                if status is not None and self.accept(status):
                    delivery.delivered = True
                    return
                log.info(
                    "webhook to %s not accepted (%s); attempt %d of %d",
                    delivery.url,
                    status if status is not None else error,
                    attempt + 1,
                    self.max_attempts,
                )
            delivery.gave_up = True
        except asyncio.CancelledError:
            delivery.gave_up = True
            raise
        finally:
            self._finished()

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout, transport=self.transport, follow_redirects=False
            )
        try:
            response = await self._client.post(
                delivery.url,
                content=json.dumps(delivery.payload).encode(),
                headers={"content-type": "application/json", **self.headers},
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _finished(self) -> None:
        with self._lock:
            self._outstanding -= 1
            idle = self._outstanding == 0
            if idle:
                self._idle_thread.set()
        if idle and self._idle_async is not None:
            self._idle_async.set()


# --------------------------------------------------------------------------------------------
# Handles
# --------------------------------------------------------------------------------------------


@dataclass
class SandboxHandles:
    """What a sandbox app exposes in-process as ``app.state.sandbox``."""

    state: Any
    faults: FaultConfig
    calls: RouteCounter
    webhooks: WebhookSender


def reset_parts(
    body: Mapping[str, Any], *, state: Any, calls: RouteCounter, faults: FaultConfig, webhook: Callable[[], None]
) -> None:
    """A ``/_sandbox/reset`` body (both sandboxes): each of ``state``, ``calls``, ``faults``
    (every fault off) and ``webhook`` (``webhook()`` forgets deliveries and pending messages)
    starts afresh unless the body says ``false`` for it."""
    if body.get("state", True):
        state.reset()
    if body.get("calls", True):
        calls.reset()
    if body.get("faults", True):
        faults.reset(settings=True)
    if body.get("webhook", True):
        webhook()


def route_key(method: str, path_template: str) -> str:
    """The counter key for a route, e.g. ``route_key("GET", "/v1/organizations/{org}/badges")``."""
    return f"{method.upper()} {path_template}"


__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_RETRY_DELAYS",
    "Delivery",
    "DeliveryAttempt",
    "DroppedConnection",
    "FaultConfig",
    "FaultDecision",
    "RouteCounter",
    "SandboxHandles",
    "SandboxMiddleware",
    "WebhookSender",
    "any_2xx_3xx",
    "install_drop_log_filter",
    "only_200",
    "reset_parts",
    "route_key",
    "route_template",
]
