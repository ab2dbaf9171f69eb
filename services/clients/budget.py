"""API budgets: the in-process `RateLimiter` and the install-wide `SharedBudget` (issue 15).

One Docebo budget per install (Docebo counts 1,000 calls/hour per IP): every process on the same
database shares a small lock-protected file beside it. Real-time calls (webhook events, the
console's interactive actions) reserve the next slot; batch calls never hold a place in the queue
and leave a share of the burst for real-time work. Design notes: docs/design/clients.md
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

CALLER_CLASSES = ("realtime", "console", "batch")
_caller: contextvars.ContextVar[str] = contextvars.ContextVar("credly_console_caller_class", default="batch")


def current_caller_class() -> str:
    """The class of the calls made from here: "realtime", "console" or "batch" (the default)."""
    return _caller.get()


@contextlib.contextmanager
def caller_class(name: str) -> Iterator[None]:
    """Declare the class of every API call made inside the block (and in tasks it starts)."""
    if name not in CALLER_CLASSES:
        raise ValueError(f"unknown caller class {name!r}; expected one of {', '.join(CALLER_CLASSES)}")
    token = _caller.set(name)
    try:
        yield
    finally:
        _caller.reset(token)


async def _default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


# --------------------------------------------------------------------------------------------
# In-process rate limiter


class RateLimiter:
    """A token bucket per API: on average `rate` calls per second, at most `burst` at once.

    Implemented as GCRA (a token bucket computed from one "theoretical arrival time"), without
    asyncio primitives, so one limiter may be shared by every client of an API in the process
    (Docebo's limit is per IP, not per client). Whatever the number of concurrent callers, the
    start times it hands out never exceed `burst + rate * t` calls in any window of `t` seconds.

    `pause_for(seconds)` is called when the service sends `Retry-After`: no call starts before
    the pause ends, and after it calls resume one interval apart (no burst into a service that
    just said it was overloaded).

    `rate=None` means no limit (Credly's default) — pauses are still honoured.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = _default_sleep,
        label: str = "",
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate limit must be positive, got {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = int(burst or 1) if rate is not None else None
        self.label = label
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._lock = threading.Lock()
        self._interval = (1.0 / rate) if rate else 0.0
        self._tolerance = ((self.burst or 1) - 1) * self._interval
        self._tat = clock()  # theoretical arrival time of the next call
        self._paused_until = 0.0
        self._pause_epoch = 0
        self.waited = 0.0  # total seconds callers spent waiting (for benchmarks)

    # constructors --------------------------------------------------------------------------
    @classmethod
    def per_hour(cls, calls: int, burst: int | None = None, **kw: Any) -> RateLimiter:
        return cls(calls / 3600.0, burst if burst is not None else max(1, min(calls, 60)),
                   label=kw.pop("label", f"{calls:,}/hour"), **kw)

    @classmethod
    def per_minute(cls, calls: int, burst: int | None = None, **kw: Any) -> RateLimiter:
        return cls(calls / 60.0, burst if burst is not None else max(1, calls),
                   label=kw.pop("label", f"{calls:,}/minute"), **kw)

    @classmethod
    def unlimited(cls, **kw: Any) -> RateLimiter:
        return cls(None, None, label=kw.pop("label", "unlimited"), **kw)

    @property
    def limited(self) -> bool:
        return self.rate is not None

    def describe(self) -> str:
        """E.g. "1,000/hour, burst 20" (numbers with thousands separators), or "no limit"."""
        if not self.limited:
            return "no limit"
        rate = self.label or f"{self.rate:,.2f}".rstrip("0").rstrip(".") + "/s"
        return f"{rate}, burst {self.burst:,}"

    def __repr__(self) -> str:
        return f"RateLimiter({self.describe()})"

    # core ----------------------------------------------------------------------------------
    def _reserve(self) -> tuple[float, int]:
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                earliest = self._paused_until
            else:
                earliest = now
            if self.rate is None:
                start = earliest
            else:
                tat = max(self._tat, now)
                start = max(earliest, tat - self._tolerance)
                self._tat = max(tat, start) + self._interval
            return start - now, self._pause_epoch

    async def acquire(self) -> None:
        """Wait until one call may start (returns at once while tokens remain)."""
        while True:
            wait, epoch = self._reserve()
            if wait > 0:
                self.waited += wait
                await self._sleep(wait)
            with self._lock:
                if epoch == self._pause_epoch:
                    return
            # A Retry-After arrived while we waited: take a new place after the pause.

    def pause_for(self, seconds: float) -> None:
        """Hold every call back for `seconds` (the service's Retry-After, already scaled)."""
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until <= self._paused_until:
                return
            self._paused_until = until
            self._pause_epoch += 1
            if self.rate is not None:
                # After the pause, resume one interval apart: no stored-up burst.
                self._tat = max(self._tat, until + self._tolerance)

    # dashboard -----------------------------------------------------------------------------
    def remaining(self) -> int | None:
        """Calls that may start right now without waiting; None when unlimited."""
        if self.rate is None:
            return None
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return 0
            tokens = (now + self._tolerance + self._interval - self._tat) / self._interval
        return int(max(0.0, min(float(self.burst or 1), math.floor(tokens + 1e-9))))

    def window_reset_at(self) -> dt.datetime | None:
        """When the bucket is full again (UTC); now if it is full; None when unlimited."""
        if self.rate is None:
            return None
        with self._lock:
            now = self._clock()
            full_at = max(self._tat, self._paused_until)
            wall = self._wall()
        return dt.datetime.fromtimestamp(wall + max(0.0, full_at - now), dt.UTC)

    def paused_until(self) -> dt.datetime | None:
        """End of the current Retry-After pause (UTC), or None."""
        with self._lock:
            now = self._clock()
            if now >= self._paused_until:
                return None
            return dt.datetime.fromtimestamp(self._wall() + self._paused_until - now, dt.UTC)


# --------------------------------------------------------------------------------------------
# The install-wide budget


class SharedBudget:
    """One API budget for every process on the same database (issue 15 point 1).

    The state (GCRA "theoretical arrival time", Retry-After pause, calls per class in the window)
    lives in a small JSON file beside the database, read and written under an exclusive `flock`
    (plus a thread lock: `flock` does not separate threads sharing one descriptor). One call costs
    an open, a lock, one read and one write of a few hundred bytes (benchmarks/bench_budget.py).

    The rate is `(limit - burst) / window`, so that any window of `window` seconds sees at most
    `limit` calls (GCRA allows `burst + rate * t` in `t` seconds), whatever the service's own window.

    Real-time and console calls reserve the next slot at once; batch calls hold no place: they take
    a slot only when more than `reserve` tokens are left (`reserve` = the share of the burst a batch
    may not use), else they sleep until then and try again, so a waiting event goes first.
    """

    def __init__(self, path: Path, *, limit: int | None, window: float = 3600.0, burst: int | None = None,
                 batch_share: float = 0.8, service: str = "Docebo",
                 wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = _default_sleep) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"the budget's limit must be at least 1 call, got {limit!r}")
        if not 0.0 < batch_share <= 1.0:
            raise ValueError(f"the batch share must be in (0, 1], got {batch_share!r}")
        if window <= 0:
            raise ValueError(f"the budget's window must be positive, got {window!r}")
        self.path = Path(path)
        self.service = service
        self.limit = limit
        self.window = float(window)
        self.batch_share = batch_share
        self._wall = wall
        self._sleep = sleep
        self._thread_lock = threading.Lock()
        self.waited = 0.0
        if limit is None:
            self.rate: float | None = None
            self.burst: int | None = None
            self._interval = self._tolerance = 0.0
            self.reserve = 0
        else:
            burst = max(1, min(int(burst or 1), limit // 2 or 1))
            self.burst = burst
            self.rate = max(limit - burst, 1) / self.window
            self._interval = 1.0 / self.rate
            self._tolerance = (burst - 1) * self._interval
            self.reserve = min(burst - 1, math.floor((1.0 - batch_share) * burst + 1e-9))
        self.label = f"{limit:,}/{'hour' if window == 3600 else f'{window:g} s'}" if limit else "unlimited"
        self._bucket = self.window / 60.0

    # -- compatibility with RateLimiter ---------------------------------------------------------
    @property
    def limited(self) -> bool:
        return self.rate is not None

    def describe(self) -> str:
        if not self.limited:
            return "no limit"
        return f"{self.label}, burst {self.burst:,}, shared by this install"

    def __repr__(self) -> str:
        return f"SharedBudget({self.service}, {self.describe()}, {str(self.path)!r})"

    # -- the state file -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with self._thread_lock:
            # Opened per use: a process that touches many databases (tests, tools) holds no descriptors.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, 1 << 16, 0)
                try:
                    state = json.loads(raw) if raw else {}
                except ValueError:
                    state = {}  # a torn or foreign file: start a fresh window rather than stop
                yield state
                data = json.dumps(state, separators=(",", ":")).encode()
                if data != raw:
                    os.pwrite(fd, data, 0)
                    os.ftruncate(fd, len(data))
            finally:
                os.close(fd)  # releases the flock

    def close(self) -> None:
        """Nothing stays open between calls; kept for symmetry with the clients' `aclose`."""

    def _count(self, state: dict[str, Any], who: str, at: float) -> None:
        used = state.setdefault("used", {})
        bucket = str(int(at // self._bucket))
        counts = used.setdefault(who, {})
        counts[bucket] = counts.get(bucket, 0) + 1
        oldest = int((at - self.window) // self._bucket)
        for per_class in used.values():
            for key in [k for k in per_class if int(k) < oldest]:
                del per_class[key]

    # -- taking a call --------------------------------------------------------------------------
    def _take(self, who: str) -> tuple[float, bool, int]:
        """(seconds to wait, whether a slot is ours, pause epoch)."""
        with self._state() as state:
            now = self._wall()
            # Clamped to one window ahead: a wall clock stepped back cannot stall the install.
            paused = min(float(state.get("paused_until", 0.0)), now + self.window)
            epoch = int(state.get("epoch", 0))
            earliest = max(now, paused)
            if self.rate is None:
                self._count(state, who, earliest)
                return earliest - now, True, epoch
            tat = min(max(float(state.get("tat", 0.0)), now), now + self.window)
            if who == "batch":
                allowed_at = max(earliest, tat - self._tolerance + self.reserve * self._interval)
                if allowed_at - now >= 1e-6:
                    return allowed_at - now, False, epoch
                start = now
            else:
                start = max(earliest, tat - self._tolerance)
                if start - now < 1e-6:  # float rounding of tolerance = (burst - 1) intervals
                    start = now
            state["tat"] = max(tat, start) + self._interval
            self._count(state, who, start)
            return start - now, True, epoch

    async def acquire(self) -> None:
        """Wait until one call of the current caller class may start."""
        who = current_caller_class()
        while True:
            wait, ours, epoch = self._take(who)
            if wait > 0:
                self.waited += wait
                await self._sleep(wait)
            if not ours:
                continue
            if not wait:
                return
            with self._state() as state:
                if int(state.get("epoch", 0)) == epoch:
                    return
            # A Retry-After arrived while we waited: take a new place after the pause.

    def pause_for(self, seconds: float) -> None:
        """Hold every process's calls back for `seconds` (the service's Retry-After)."""
        if seconds <= 0:
            return
        with self._state() as state:
            until = self._wall() + seconds
            if until <= float(state.get("paused_until", 0.0)):
                return
            state["paused_until"] = until
            state["epoch"] = int(state.get("epoch", 0)) + 1
            if self.rate is not None:
                state["tat"] = max(float(state.get("tat", 0.0)), until + self._tolerance)

    # -- dashboard and `status` -----------------------------------------------------------------
    def remaining(self) -> int | None:
        """Calls that may start right now without waiting; None when unlimited."""
        if self.rate is None:
            return None
        with self._state() as state:
            now = self._wall()
            if now < float(state.get("paused_until", 0.0)):
                return 0
            tat = float(state.get("tat", 0.0))
        tokens = (now + self._tolerance + self._interval - tat) / self._interval
        return int(max(0.0, min(float(self.burst or 1), math.floor(tokens + 1e-9))))

    def window_reset_at(self) -> dt.datetime | None:
        if self.rate is None:
            return None
        with self._state() as state:
            now = self._wall()
            full_at = max(float(state.get("tat", 0.0)), float(state.get("paused_until", 0.0)), now)
        return dt.datetime.fromtimestamp(full_at, dt.UTC)

    def paused_until(self) -> dt.datetime | None:
        with self._state() as state:
            until = float(state.get("paused_until", 0.0))
        return dt.datetime.fromtimestamp(until, dt.UTC) if until > self._wall() else None

    def usage(self) -> dict[str, Any]:
        """Calls used in the last window by caller class, calls left, and the pause if any."""
        with self._state() as state:
            now = self._wall()
            used = state.get("used", {})
            paused = float(state.get("paused_until", 0.0))
        oldest = int((now - self.window) // self._bucket)
        by_class = {who: sum(n for k, n in used.get(who, {}).items() if int(k) > oldest)
                    for who in CALLER_CLASSES}
        total = sum(by_class.values())
        return {
            "service": self.service,
            "limit": self.limit,
            "window_seconds": self.window,
            "used": total,
            "left": None if self.limit is None else max(0, self.limit - total),
            "by_class": by_class,
            "batch_share": self.batch_share,
            "calls_per_hour": None if self.rate is None else round(self.rate * 3600, 3),
            "paused_until": (dt.datetime.fromtimestamp(paused, dt.UTC).isoformat()
                             if paused > now else None),
        }
