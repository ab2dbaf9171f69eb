"""Docebo webhook messages of the sandbox (api/docebo.md §7): each carries ``message_id``,
``webhook_id``, ``original_domain``, ``event``, ``fired_by_batch_action`` and ``payload``; with
grouping on, events of one type are collected for ``group_window_s`` and sent as ``payloads``
(at most 25 a message). Delivered on any 2xx/3xx by the shared sender, which retries with the
same ``message_id``; optional HTTP Basic credentials go on every delivery.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from services.sandbox.docebo.records import CERTIFICATION_EVENTS, COMPLETION_EVENT, DoceboError, as_int
from services.sandbox.webhooks import WebhookSender

GROUP_MAX = 25  # api/docebo.md §7.1: at most 25 events per grouped delivery
WEBHOOK_EVENTS = (COMPLETION_EVENT, *CERTIFICATION_EVENTS)


def message_id(at: datetime | None = None) -> str:
    """`wh-YYYYMMDD-HHMMSS-<uuid4>` (api/docebo.md §7.2)."""
    at = at or datetime.now(UTC)
    return f"wh-{at:%Y%m%d-%H%M%S}-{uuid.uuid4()}"


class DoceboWebhooks:
    """Builds Docebo webhook messages from state events and hands them to the shared sender.

    Each message carries the common properties (`message_id`, `webhook_id`, `original_domain`,
    `event`, `fired_by_batch_action`) and `payload`; with grouping on, events of one type are
    collected for `group_window_s` seconds and sent as `payloads` (at most 25 per message, so a
    burst of 30 gives a message of 25 then one of 5). Deliveries count as received on any 2xx or
    3xx; others are retried by the sender, re-sending the same `message_id`. Optional HTTP Basic
    credentials go on every delivery."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self.grouping = False
        self.group_window_s = 0.2
        self.webhook_id = 1
        self.original_domain = "docebo-sandbox.localhost"
        self.events: set[str] = set(WEBHOOK_EVENTS)
        self.basic_auth: tuple[str, str] | None = None
        self.messages: deque[dict] = deque(maxlen=1000)
        self._pending: dict[str, list[tuple[dict, bool]]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def url(self) -> str | None:
        """The delivery URL; the sender's `url` is the one source of truth (the runner sets it)."""
        return self.sender.url

    def configure(self, body: dict) -> None:
        known = {
            "url", "grouping", "group_window_s", "basic_auth", "webhook_id", "original_domain",
            "events", "retry_delays", "max_attempts",
        }
        unknown = set(body) - known
        if unknown:
            raise DoceboError(400, f"Unknown webhook setting(s): {', '.join(sorted(unknown))}")
        if "url" in body:
            url = body["url"]
            if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                raise DoceboError(400, f"Webhook url must be an http(s) URL, got {url!r}")
            self.sender.configure(url=url or None)
        if "grouping" in body:
            self.grouping = bool(body["grouping"])
        if "group_window_s" in body:
            self.group_window_s = max(0.0, float(body["group_window_s"]))
        if "webhook_id" in body:
            self.webhook_id = as_int(body["webhook_id"], "webhook_id")
        if "original_domain" in body:
            self.original_domain = str(body["original_domain"])
        if "events" in body:
            events = set(body["events"] or ())
            if events - set(WEBHOOK_EVENTS):
                raise DoceboError(400, f"Unknown event(s): {', '.join(sorted(events - set(WEBHOOK_EVENTS)))}")
            self.events = events
        if "basic_auth" in body:
            auth = body["basic_auth"]
            if auth:
                self.basic_auth = (str(auth.get("username", "")), str(auth.get("password", "")))
                token = base64.b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
                self.sender.headers["Authorization"] = f"Basic {token}"
            else:
                self.basic_auth = None
                self.sender.headers.pop("Authorization", None)
        if "retry_delays" in body or "max_attempts" in body:
            self.sender.configure(
                retry_delays=body.get("retry_delays"),
                max_attempts=as_int(body["max_attempts"], "max_attempts") if body.get("max_attempts") else None,
            )

    def settings(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "grouping": self.grouping,
            "group_window_s": self.group_window_s,
            "webhook_id": self.webhook_id,
            "original_domain": self.original_domain,
            "events": sorted(self.events),
            "basic_auth": {"username": self.basic_auth[0]} if self.basic_auth else None,
            "retry_delays": list(self.sender.retry_delays),
            "max_attempts": self.sender.max_attempts,
        }

    def emit(self, event: str, payload: dict, batch: bool = False) -> None:
        if not self.url or event not in self.events:
            return
        if not self.grouping:
            self._send(event, [(payload, batch)], grouped=False)
            return
        queue = self._pending.setdefault(event, [])
        queue.append((payload, batch))
        if len(queue) >= GROUP_MAX:
            self._send(event, queue[:GROUP_MAX], grouped=True)
            del queue[:GROUP_MAX]
        if any(self._pending.values()):
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._timer = loop.call_later(self.group_window_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> int:
        """Send every queued grouped event now; returns the number of messages sent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sent = 0
        for event, queue in list(self._pending.items()):
            while queue:
                self._send(event, queue[:GROUP_MAX], grouped=True)
                del queue[:GROUP_MAX]
                sent += 1
        return sent

    def discard(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def _send(self, event: str, items: list[tuple[dict, bool]], *, grouped: bool) -> None:
        message: dict[str, Any] = {
            "webhook_id": self.webhook_id,
            "original_domain": self.original_domain,
            "event": event,
            "fired_by_batch_action": all(batch for _, batch in items),
            "message_id": message_id(),
        }
        if grouped:
            message["payloads"] = [p for p, _ in items]
        else:
            message["payload"] = items[0][0]
        self.messages.append(message)
        self.sender.send(message)


__all__ = ["GROUP_MAX", "WEBHOOK_EVENTS", "DoceboWebhooks", "message_id"]
