"""The outbound webhook sender both sandboxes use.

``send(payload)`` returns at once (never blocks the request that caused the event); a task POSTs
the JSON and retries after each of ``retry_delays`` (the last repeats) until ``accept(status)``
(Credly: 200 only, credly.md §4.1; Docebo: any 2xx/3xx) or ``max_attempts``. ``await drain()``
or ``wait_idle()`` wait until nothing is outstanding; ``deliveries`` records every attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)


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


__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "Delivery",
    "DeliveryAttempt",
    "WebhookSender",
    "any_2xx_3xx",
    "only_200",
]
