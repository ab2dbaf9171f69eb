"""Seeded, switchable fault injection for both sandboxes (issue 3, [I] sandbox decisions).

Every call draws the same three numbers (jitter, fail, drop) from a seeded generator, so the same
seed and calls give the same outcomes. Checked in order: rate limited (429 + Retry-After, not
processed), fail (5xx, not processed), drop (processed, then the connection is cut; a client sees
``httpx.RemoteProtocolError`` in-process and over uvicorn alike). ``force()`` makes the next N
calls of one route fail. Details: docs/sandboxes.md.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx

FAULT_KINDS = ("fail", "drop", "rate_limit")


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


__all__ = ["FAULT_KINDS", "DroppedConnection", "FaultConfig", "FaultDecision"]
