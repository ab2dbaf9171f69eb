"""What both sandbox apps share at the top: the in-process handles (``app.state.sandbox``) and
the ``/_sandbox/reset`` body. Faults live in faults.py, counters and middleware in middleware.py,
the webhook sender in webhooks.py (docs/sandboxes.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.sandbox.faults import FaultConfig
from services.sandbox.middleware import RouteCounter
from services.sandbox.webhooks import WebhookSender


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


__all__ = ["SandboxHandles", "reset_parts"]
