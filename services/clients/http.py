"""The one HTTP policy shared by the Credly and the Docebo client (DESIGN.md "Services").

Design notes: docs/design/clients.md
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import httpx

from services.clients.budget import RateLimiter, SharedBudget  # noqa: F401  (re-exported)
from services.clients.wire import (  # noqa: F401  (re-exported for the clients)
    format_route,
    json_body,
    php_params,
    service_message,
)
from services.core import metrics
from services.core.errors import (
    ApiError,
    NetworkError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    error_for_status,
    redact,
)
from services.core.secrets import Secret

log = logging.getLogger("services.clients.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# 501 Not Implemented and 505 HTTP Version Not Supported will not change on a retry.
NON_RETRYABLE_5XX = frozenset({501, 505})


# The last real outcome of every call reaches this listener (service, HTTP status or None for no
# response, message; issue 16 health from real calls). Wiring installs it; it must be cheap.
CallOutcomeListener = Callable[[str, int | None, str], None]
_call_outcome_listener: CallOutcomeListener | None = None


def set_call_outcome_listener(listener: CallOutcomeListener | None) -> None:
    global _call_outcome_listener
    _call_outcome_listener = listener


def _report_outcome(service: str, status: int | None, message: str) -> None:
    if _call_outcome_listener is not None:
        try:
            _call_outcome_listener(service, status, message)
        except Exception:  # health is advisory: a failing listener never fails the call
            log.exception("the call outcome listener failed")


# --------------------------------------------------------------------------------------------
# Policy


async def _default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass
class HttpPolicy:
    """Timeouts, retries and back-off shared by both clients.

    Back-off for retry n (1-based) is `min(backoff_cap, backoff_base * 2**(n-1))`, of which a
    random fraction up to `jitter` is taken away ("equal jitter": the delay lies in
    `[d * (1 - jitter), d]`). A `Retry-After` from the service replaces the back-off: the call
    waits exactly that long plus a random `[0, jitter * backoff_base]` (never less than the
    service asked), capped at `retry_after_cap`.

    `max_retries` bounds retries after 5xx and network failures; `max_rate_limited_retries`
    separately bounds retries after 429, which is the service saying "later", not "broken".
    """

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 30.0
    pool_timeout: float = 60.0
    max_retries: int = 5
    max_rate_limited_retries: int = 10
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    jitter: float = 0.5
    retry_after_cap: float = 900.0
    concurrency: int = 4
    max_in_flight: int = 8
    time_scale: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = _default_sleep
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"HttpPolicy.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.max_retries < 0 or self.max_rate_limited_retries < 0:
            raise ValueError("HttpPolicy retry counts must be >= 0")
        if self.concurrency < 1 or self.max_in_flight < 1:
            raise ValueError("HttpPolicy.concurrency and max_in_flight must be >= 1")

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout, read=self.read_timeout, write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def backoff_delay(self, retry: int) -> float:
        """Unscaled delay before retry number `retry` (1 = first retry), with jitter."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(0, retry - 1)))
        return ceiling - self.rng.uniform(0.0, self.jitter * ceiling)

    def retry_delay(self, retry: int, retry_after: float | None) -> float:
        """Unscaled delay before a retry: the service's Retry-After if it gave one, else back-off."""
        if retry_after is None:
            return self.backoff_delay(retry)
        wait = min(max(0.0, retry_after), self.retry_after_cap)
        return wait + self.rng.uniform(0.0, self.jitter * self.backoff_base)

    def scaled(self, seconds: float) -> float:
        return max(0.0, seconds * self.time_scale)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds` (already scaled) through the injectable sleep."""
        if seconds > 0:
            await self.sleep(seconds)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date. None if absent
    or unparseable; a date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


# --------------------------------------------------------------------------------------------
# The service's clock


class ServiceClock:
    """The service's own time, from the `Date` header of its responses (RFC 9110: a server with a
    clock sends one). Incremental batches take their watermark from it, never from this
    computer's clock, so a skewed local clock cannot make them miss a change.

    Each response records (Date, local monotonic time at receipt). `at(mono)` projects the latest
    sample to another monotonic instant with the local monotonic clock (which measures durations
    well, whatever its wall time). Date has whole seconds and is produced before the response
    arrives, so the projection is a LOWER bound of the service's time at `mono` — the safe side
    for a "changed since" bound. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sample: tuple[dt.datetime, float] | None = None

    def observe(self, date_header: str | None, mono: float | None = None) -> None:
        if not date_header:
            return
        try:
            moment = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if moment is None:
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        with self._lock:
            self._sample = (moment.astimezone(dt.UTC), time.monotonic() if mono is None else mono)

    def at(self, mono: float) -> dt.datetime | None:
        """The service's time (lower bound) at local monotonic instant `mono`; None until a
        response with a Date header was seen."""
        with self._lock:
            if self._sample is None:
                return None
            moment, seen = self._sample
        return moment + dt.timedelta(seconds=mono - seen)


# --------------------------------------------------------------------------------------------
# Call counter


class CallCounter:
    """Requests sent per "METHOD /route/{template}" (every attempt counts: it is what the rate
    limit sees). Thread-safe: the console reads it from its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._retries: dict[str, int] = {}

    def record(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def record_retry(self, key: str) -> None:
        with self._lock:
            self._retries[key] = self._retries.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def retries(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._retries.items()))

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._retries.clear()

    def __repr__(self) -> str:
        return f"CallCounter(total={self.total()})"


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ConnectionReport:
    """Outcome of `test_connection()`: `ok`, and a sentence for the admin saying what works or
    what is wrong (bad URL / unreachable, bad credentials, missing permission)."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Recovered:
    """A non-idempotent call failed ambiguously and the object was found to exist: `value` is the
    object as the lookup returned it. The call was not sent again."""

    value: Any


async def bounded_gather(semaphore: asyncio.Semaphore, aws: Iterable[Awaitable[Any]],
                         *, return_exceptions: bool = False) -> list[Any]:
    """Run awaitables concurrently, at most `semaphore`'s value at once (`client.concurrency`)."""

    async def one(aw: Awaitable[Any]) -> Any:
        async with semaphore:
            return await aw

    return await asyncio.gather(*(one(a) for a in aws), return_exceptions=return_exceptions)


# --------------------------------------------------------------------------------------------
# The session: one per client


AuthHeaders = Callable[[], Awaitable[dict[str, str]]]
OnUnauthorized = Callable[[dict[str, str]], Awaitable[bool]]


class ApiSession:
    """The HTTP machinery of one client: an `httpx.AsyncClient` plus the shared policy.

    `secrets` returns the credentials to redact from every message. `auth_headers` (async)
    returns the Authorization header for the next attempt. `on_unauthorized(headers_used)` is
    called once per call on a 401; if it returns True (it refreshed the credentials) the call is
    sent once more.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        policy: HttpPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        secrets: Callable[[], Iterable[str | Secret | None]] = lambda: (),
        auth_headers: AuthHeaders | None = None,
        on_unauthorized: OnUnauthorized | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.policy = policy or HttpPolicy()
        # Without a shared limiter, an unlimited one that still honours Retry-After pauses,
        # sleeping through the policy's (injectable) sleep.
        self.limiter = limiter or RateLimiter.unlimited(sleep=self.policy.sleep)
        self.calls = CallCounter()
        self.clock = ServiceClock()
        self.concurrency = asyncio.Semaphore(self.policy.concurrency)
        self._in_flight = asyncio.Semaphore(self.policy.max_in_flight)
        self._secrets = secrets
        self._auth_headers = auth_headers
        self._on_unauthorized = on_unauthorized
        self.http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            transport=transport,
            timeout=self.policy.timeout(),
            headers={"Accept": "application/json", "User-Agent": "credly-console",
                     **(headers or {})},
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self.policy.max_in_flight + 2,
                                max_keepalive_connections=self.policy.max_in_flight),
        )

    def __repr__(self) -> str:
        return f"ApiSession({self.service!r}, {self.base_url!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    # --------------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def error(self, cls: type[ApiError], call: str, status: int | None, message: str) -> ApiError:
        return cls(self.service, call, status, self.redact(message))

    def error_from_response(self, call: str, response: httpx.Response,
                            *, duplicate: bool = False) -> ApiError:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            return self.error(
                UnexpectedResponseError, call, status,
                f"redirected to {location or 'another address'} (check the base URL)",
            )
        return self.error(error_for_status(status, duplicate=duplicate), call, status,
                          service_message(response))

    def target(self, route: str, path: Mapping[str, Any] | None) -> str:
        return format_route(route, path).lstrip("/")

    # --------------------------------------------------------------------------------------
    # Only a call given `recover` can end in `Recovered`; the overloads tell the type checker so.
    @overload
    async def request(
        self, method: str, route: str, *, path: Mapping[str, Any] | None = ..., params: Any = ..., json: Any = ...,
        data: Mapping[str, Any] | None = ..., url: str | None = ..., idempotent: bool | None = ..., recover: None = ...,
        accept: Container[int] = ..., auth: bool = ..., max_retries: int | None = ..., bypass_in_flight: bool = ...,
    ) -> httpx.Response: ...

    @overload
    async def request(
        self, method: str, route: str, *, path: Mapping[str, Any] | None = ..., params: Any = ..., json: Any = ...,
        data: Mapping[str, Any] | None = ..., url: str | None = ..., idempotent: bool | None = ...,
        recover: Callable[[], Awaitable[Any]], accept: Container[int] = ..., auth: bool = ...,
        max_retries: int | None = ..., bypass_in_flight: bool = ...,
    ) -> httpx.Response | Recovered: ...

    async def request(self, method: str, route: str, **kw: Any) -> httpx.Response | Recovered:
        """`_send` one API call and report its final outcome to the call outcome listener."""
        try:
            response = await self._send(method, route, **kw)
        except ApiError as exc:
            _report_outcome(self.service, exc.status, exc.message)
            raise
        _report_outcome(self.service, getattr(response, "status_code", 200), "")
        return response

    async def _send(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, Any] | None = None,
        params: Any = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        url: str | None = None,
        idempotent: bool | None = None,
        recover: Callable[[], Awaitable[Any]] | None = None,
        accept: Container[int] = (),
        auth: bool = True,
        max_retries: int | None = None,
        bypass_in_flight: bool = False,
    ) -> httpx.Response | Recovered:
        """Send one API call under the policy; see the module docstring.

        `route` is the template ("/organizations/{org}/badges") used for the call counter and
        for messages; `path` fills it. `url` (absolute) replaces the formatted route — used to
        follow `next_page_url` verbatim. Statuses in `accept` are returned instead of raised.
        """
        method = method.upper()
        call = f"{method} {route}"
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        target = url if url is not None else self.target(route, path)
        retries_allowed = self.policy.max_retries if max_retries is None else max_retries
        retries = 0
        rate_limited = 0
        refreshed = False
        maybe_applied = False  # an earlier attempt may have reached the service and acted

        while True:
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            headers: dict[str, str] = {}
            started = time.monotonic()
            slot = _nullcontext() if bypass_in_flight else self._in_flight
            async with slot:
                await self.limiter.acquire()
                if auth and self._auth_headers is not None:
                    headers = await self._auth_headers()
                self.calls.record(call)
                metrics.API_CALLS.labels(self.service, call).inc()
                try:
                    response = await self.http.request(
                        method, target, params=params, json=json, data=data, headers=headers,
                    )
                except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
                    raise self.error(NetworkError, call, None,
                                     f"cannot send the request ({type(exc).__name__}: {exc}); "
                                     f"check the base URL {self.base_url!r}") from None
                except httpx.TransportError as exc:
                    failure = exc
            elapsed = time.monotonic() - started

            # ---- no response ------------------------------------------------------------
            if response is None:
                assert failure is not None
                never_sent = isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout,
                                                  httpx.PoolTimeout))
                what = self.redact(_describe_transport_error(failure))
                maybe_applied = maybe_applied or not never_sent
                ambiguous = not idempotent and not never_sent
                log.debug("%s %s: %s after %.2f s", self.service, call, what, elapsed)
                outcome = await self._before_retry(
                    call, retries, retries_allowed, ambiguous, recover,
                    error=lambda note="", what=what: self.error(NetworkError, call, None, what + note),
                    reason=what, retry_after=None,
                )
                if isinstance(outcome, Recovered):
                    return outcome
                retries += 1
                continue

            status = response.status_code
            self.clock.observe(response.headers.get("date"))
            log.debug("%s %s -> %s in %.2f s", self.service, call, status, elapsed)

            if 200 <= status < 300 or status in accept:
                return response

            if status == 404 and method == "DELETE" and maybe_applied:
                # An earlier attempt reached the service and deleted the object.
                return response

            if status == 401 and self._on_unauthorized is not None and not refreshed:
                refreshed = True
                await response.aread()
                if await self._on_unauthorized(headers):
                    log.info("%s %s: 401, credentials refreshed; sending once more",
                             self.service, call)
                    continue

            if status == 429:
                metrics.API_RATE_LIMITED.labels(self.service, call).inc()
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if rate_limited >= self.policy.max_rate_limited_retries:
                    raise self.error(RateLimitedError, call, status,
                                     f"still rate limited after {rate_limited} retries: "
                                     f"{service_message(response)}")
                rate_limited += 1
                delay = self.policy.scaled(self.policy.retry_delay(rate_limited, retry_after))
                if retry_after is not None:
                    self.limiter.pause_for(delay)
                self.calls.record_retry(call)
                log.warning("%s %s: HTTP 429 (rate limited)%s; retry %d in %.2f s",
                            self.service, call,
                            f", Retry-After {retry_after:g} s" if retry_after is not None else "",
                            rate_limited, delay)
                await self.policy.pause(delay)
                continue

            if status >= 500 and status not in NON_RETRYABLE_5XX:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                ambiguous = not idempotent
                maybe_applied = True
                message = service_message(response)
                outcome = await self._before_retry(
                    call, retries, retries_allowed, ambiguous, recover,
                    error=lambda note="", status=status, message=message: self.error(ServerError, call, status, message + note),
                    reason=f"HTTP {status}", retry_after=retry_after,
                )
                if isinstance(outcome, Recovered):
                    return outcome
                retries += 1
                continue

            raise self.error_from_response(call, response)

    async def _before_retry(
        self,
        call: str,
        retries: int,
        retries_allowed: int,
        ambiguous: bool,
        recover: Callable[[], Awaitable[Any]] | None,
        *,
        error: Callable[..., ApiError],
        reason: str,
        retry_after: float | None,
    ) -> Recovered | None:
        """Decide what follows a retryable failure: raise, return the recovered object, or sleep
        and let the caller send again."""
        if ambiguous and recover is None:
            raise error(" (not retried: the service may have processed the request)")
        last = retries >= retries_allowed
        delay = self.policy.scaled(self.policy.retry_delay(retries + 1, retry_after))
        if not last:
            self.calls.record_retry(call)
            log.warning("%s %s: %s; retry %d of %d in %.2f s%s", self.service, call, reason,
                        retries + 1, retries_allowed, delay,
                        " after checking whether the object was created" if ambiguous else "")
        if retry_after is not None and not last:
            self.limiter.pause_for(delay)
        if ambiguous:
            # Let a slow service finish what it may have started before looking it up.
            await self.policy.pause(delay)
            assert recover is not None
            found = await recover()
            if found is not None:
                log.info("%s %s: the object exists after an ambiguous failure (%s); "
                         "not sending again", self.service, call, reason)
                return Recovered(found)
            if last:
                raise error(f" (gave up after {retries} retries; the object was not created)")
            return None
        if last:
            raise error(f" (gave up after {retries} retries)")
        await self.policy.pause(delay)
        return None


class _nullcontext:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _describe_transport_error(exc: httpx.TransportError) -> str:
    detail = str(exc).strip()
    kind = {
        httpx.ConnectError: "cannot connect",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no response in time (read timeout)",
        httpx.WriteTimeout: "sending timed out",
        httpx.PoolTimeout: "no free connection in time",
        httpx.RemoteProtocolError: "connection dropped by the server",
        httpx.ReadError: "connection broken while reading",
        httpx.WriteError: "connection broken while sending",
    }.get(type(exc), type(exc).__name__)
    return f"{kind} ({detail})" if detail else kind
