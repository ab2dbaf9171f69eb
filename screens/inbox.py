"""Inbox: the webhook deliveries the receiver stored (W2), with their processing status (W3).

Each row is one delivered event (a grouped Docebo delivery is one row per payload): source,
event type, learner, status (queued, processing, done, failed, skipped), attempts and the last
error. The payload of the highlighted row is shown on the right, pretty-printed. `r` retries the
highlighted failed (or skipped) event and `R` every failed one — they go back to the queue with
their attempts reset, and the `serve` worker picks them up (`services.inbox.retry` /
`retry_all_failed`). `v` cycles the view (all, failed, backlog, done). The list refreshes on a
timer, so new deliveries and their outcome appear without a key press.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from screens.confirm import ConfirmScreen
from screens.paged import PagedScreen, PageQuery
from screens.paged_table import plain
from services import inbox

REFRESH_SECONDS = 2.0
VIEWS: tuple[tuple[str, str | None], ...] = (("all", None), ("failed", "failed"), ("backlog", "backlog"),
                                             ("done", "done"))
STATUS_STYLE = {"failed": "bold red", "queued": "cyan", "processing": "bold cyan", "done": "green", "skipped": "dim"}


def inbox_cells(row: dict) -> list[Any]:
    return [
        plain(row["id"]), plain((row["received_at"] or "")[:19].replace("T", " ")), plain(row["source"]),
        plain(row["event_type"]), Text(row["status"], style=STATUS_STYLE.get(row["status"], "")),
        plain(row["attempts"]), plain((row["last_error"] or "").splitlines()[0][:80] if row["last_error"] else ""),
    ]


class InboxScreen(PagedScreen):
    TITLE_TEXT = "Webhook inbox"
    NAME = "inbox"
    COLUMNS = (("id", "Id", 6), ("received", "Received (UTC)", 19), ("source", "Source", 7), ("event", "Event", 26),
               ("status", "Status", 10), ("attempts", "Tries", 5), ("error", "Last error", 30))
    VIEWS = VIEWS
    REFRESH_SECONDS = REFRESH_SECONDS
    BINDINGS = [
        Binding("r", "retry", "Retry", id="inbox.retry", tooltip="Retry the highlighted failed event (W3)"),
        Binding("R", "retry_all", "Retry all failed", id="inbox.retry_all", tooltip="Retry every failed event (W3)"),
        Binding("v", "cycle_view", "View", id="inbox.view", tooltip="Change which events are shown"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="inbox.reload", tooltip="Read the inbox again"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="inbox-body"):
            with Vertical(id="inbox-left"):
                yield from self.compose_table()
            with VerticalScroll(id="inbox-detail", classes="panel"):
                yield Static("", id="inbox-summary")
                yield Static("", id="inbox-payload")

    # -- loading ------------------------------------------------------------------------------
    def page_query(self) -> PageQuery:
        status = self.view_value
        return PageQuery(count=partial(inbox.count_items, status=status), fetch=partial(inbox.list_items, status=status),
                         extra=inbox.counts)

    def row_cells(self, row: dict) -> list[Any]:
        return inbox_cells(row)

    def status_text(self) -> str:
        counts = self.page_extra or {}
        return (f"Inbox ({self.view_name}): {self.table.position_text()}  ·  backlog {counts.get('backlog', 0):,}  ·  "
                f"failed {counts.get('failed', 0):,}  ·  done {counts.get('done', 0):,}")

    def show_detail(self) -> None:
        key = self.current_key
        summary = self.query_one("#inbox-summary", Static)
        payload = self.query_one("#inbox-payload", Static)
        if key is None:
            summary.update(Text("No deliveries.", style="dim"))
            payload.update("")
            return
        item_id = int(key)

        def show(row: dict | None) -> None:
            if row is None:
                summary.update(Text("This event is no longer in the inbox.", style="dim"))
                payload.update("")
                return
            text = Text()
            text.append(f"#{row['id']} {row['event_type']}\n", style="bold")
            text.append(f"{row['source']} · {row['delivery_key']}\n", style="dim")
            text.append("Status: ")
            text.append(row["status"], style=STATUS_STYLE.get(row["status"], ""))
            text.append(f" after {row['attempts']} attempt{'s' if row['attempts'] != 1 else ''}\n")
            if row.get("learner_key"):
                text.append(f"Learner: {row['learner_key']}\n")
            if row.get("next_attempt_at") and row["status"] == "queued":
                text.append(f"Next attempt: {row['next_attempt_at']}\n")
            if row.get("run_id"):
                text.append(f"Run: #{row['run_id']} (see Syncs)\n")
            if row.get("last_error"):
                text.append(f"Last error: {row['last_error']}\n", style="red")
            summary.update(text)
            try:
                payload.update(JSON(json.dumps(row.get("data"), ensure_ascii=False), indent=2))
            except (TypeError, ValueError):
                payload.update(Text(str(row.get("payload", ""))))

        self.background(lambda store: inbox.get_item(store, item_id), show, group="inbox-detail",
                        description="Loading the event")

    # -- retry (W3) ---------------------------------------------------------------------------
    def action_retry(self) -> None:
        item_id = self.current_id
        if item_id is None:
            return

        def done(ok: bool) -> None:
            if ok:
                self.notify(f"Event #{item_id} queued again; the serve worker will process it.", markup=False)
            else:
                self.notify(f"Event #{item_id} is not failed or skipped; nothing to retry.", severity="warning",
                            markup=False)
            self.action_reload()

        self.background(lambda store: inbox.retry(store, item_id), done, group="inbox-write", exclusive=False,
                        description="Retrying the event")

    def action_retry_all(self) -> None:
        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def done(n: int) -> None:
                self.notify(f"{n} failed event{'s' if n != 1 else ''} queued again.", markup=False)
                self.action_reload()

            self.background(inbox.retry_all_failed, done, group="inbox-write", exclusive=False,
                            description="Retrying every failed event")

        self.app.push_screen(ConfirmScreen("Retry all failed", "Put every failed event back in the queue? "
                                           "The serve worker processes them again (attempts start from zero)."),
                             answered)
