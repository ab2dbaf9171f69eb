"""What a flow run reports (SPEC §2: run record, per-item log lines, progress, cancellation):
``LogLine``, ``Callbacks`` (one implementation for console and CLI, DESIGN.md), ``RunSummary``
and ``Cancelled``. Shared by the store's run recorder, the flows and their callers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One per-item log line of a run, as the console shows it."""

    run_id: int
    at: str
    level: str
    message: str
    action: str = ""
    object: str = ""


@dataclasses.dataclass
class Callbacks:
    """How a flow reports while it runs (DESIGN.md: one implementation for console and CLI).

    `on_progress(done, total)` is coalesced (at most every `store.runs.PROGRESS_INTERVAL` s, plus the
    final call); `total` is None while unknown. `on_log(line)` receives every line as it is
    written. `should_cancel()` is polled between items; once it returns True the flow stops
    starting new items, lets the ones in flight finish and ends `cancelled`.
    """

    on_progress: Callable[[int, int | None], None] | None = None
    on_log: Callable[[LogLine], None] | None = None
    should_cancel: Callable[[], bool] | None = None


@dataclasses.dataclass
class RunSummary:
    """What a finished run reports. `actions` lists the run's action lines as dicts
    `{"action", "object", "message"}`: what it did, or in a dry run what it would do."""

    run_id: int | None
    flow: str
    status: str
    counts: dict[str, int]
    reason: str = ""
    actions: list[dict[str, str]] = dataclasses.field(default_factory=list)
    dry_run: bool = False
    trigger: str = ""
    # True when the run failed for a reason that may go away by itself (a call that still failed
    # after the client's retries: network, 5xx, 429). The webhook worker retries those (W3).
    retryable: bool = False
    children: list[RunSummary] = dataclasses.field(default_factory=list)
    # F6/F7: "full" or "incremental" (services/flows/incremental.py; also the run's first log
    # line); "" for the other flows.
    mode: str = ""
    # True when the run was skipped because the same flow was already running (W4): nothing was
    # done, which a cron job must be able to tell from a run that had nothing to do.
    busy: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped") and not self.counts.get("failed")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Cancelled(Exception):
    """Raised inside a flow to unwind after `should_cancel()` said so."""


__all__ = ["Callbacks", "Cancelled", "LogLine", "RunSummary"]
