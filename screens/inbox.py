"""Inbox: the webhook deliveries the receiver stored (W2), with their processing status (W3).

Design notes: docs/design/console.md
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from rich.json import JSON
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from screens.confirm import ConfirmScreen
from screens.learners import open_learner
from screens.paged import PagedScreen, PageQuery
from screens.widgets.paged_table import plain
from services.store import inbox

REFRESH_SECONDS = 2.0
VIEWS: tuple[tuple[str, str | None], ...] = (("all", None), ("failed", "failed"), ("backlog", "backlog"),
                                             ("done", "done"))
STATUS_STYLE = {"failed": "bold red", "queued": "cyan", "processing": "bold cyan", "done": "green", "skipped": "dim"}
SOURCE_TITLE = {"docebo": "Docebo", "credly": "Credly"}


def when(stamp: str | None) -> str:
    return f"{stamp[:19].replace('T', ' ')} UTC" if stamp else ""


def learner_text(learner_key: str, payload: Any = None) -> str:
    """Whose event it is, from the inbox's ordering key (services.store.inbox: `docebo-user:<id>`,
    `credly-email:<e-mail>`, `credly-template:<id>`, `?` = a Credly notice not read yet), with
    the Docebo username when the payload is at hand."""
    kind, _, value = (learner_key or "").partition(":")
    if kind == "docebo-user":
        username = payload.get("username") if isinstance(payload, dict) else None
        return f"{username} (Docebo user {value})" if username else f"Docebo user {value}"
    if kind == "credly-email":
        return value
    if kind == "credly-template":
        return f"badge template {value}"
    if learner_key == inbox.UNRESOLVED:
        return "not known until the worker reads the Credly event"
    return learner_key or "—"


def inbox_cells(row: dict) -> list[Any]:
    error = (row["last_error"] or "").splitlines()[0][:200] if row["last_error"] else ""
    return [
        plain(row["id"]), Text(row["status"], style=STATUS_STYLE.get(row["status"], "")), plain(row["event_type"]),
        plain(learner_text(row["learner_key"])), plain((row["received_at"] or "")[:19].replace("T", " ")),
        plain(row["attempts"]), Text(error, style="red" if error else ""),
    ]


def event_facts(row: dict) -> list[tuple[str, Text]]:
    """The highlighted event in full, as (label, value) lines."""
    attempts = row["attempts"]
    status = Text(row["status"], style=STATUS_STYLE.get(row["status"], ""))
    status.append(f" after {attempts} attempt{'s' if attempts != 1 else ''}", style="")
    facts = [("Status", status)]
    if row["status"] == "queued" and row.get("next_attempt_at"):
        facts.append(("Next try", Text(when(row["next_attempt_at"]))))
    facts.append(("Learner", Text(learner_text(row.get("learner_key", ""), row.get("data")))))
    facts.append(("From", Text(f"{SOURCE_TITLE.get(row['source'], row['source'])}, received {when(row['received_at'])}")))
    if row.get("processed_at"):
        facts.append(("Processed", Text(when(row["processed_at"]))))
    if row.get("run_id"):
        facts.append(("Run", Text(f"#{row['run_id']} — its log is in Syncs (5)")))
    facts.append(("Delivery", Text(row["delivery_key"], style="dim")))
    if row.get("last_error"):
        facts.append(("Last error", Text(row["last_error"], style="red")))
    return facts


def event_summary(row: dict) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(f"#{row['id']}"), Text(row["event_type"], style="bold"))
    for label, value in event_facts(row):
        grid.add_row(Text(label), value)
    return grid


def payload_text(row: dict) -> str:
    try:
        return json.dumps(row.get("data"), ensure_ascii=False, indent=2)
    except (TypeError, ValueError):
        return str(row.get("payload", ""))


def event_copy_text(row: dict) -> str:
    """The event and its payload as plain text (what `y` copies)."""
    lines = [f"#{row['id']} {row['event_type']}"]
    lines += [f"{label + ':':<11} {value.plain}" for label, value in event_facts(row)]
    return "\n".join([*lines, "", payload_text(row)])


class InboxScreen(PagedScreen):
    TITLE_TEXT = "Webhook inbox"
    NAME = "inbox"
    COLUMNS = (("id", "Id", 6), ("status", "Status", 10), ("event", "Event", 27), ("learner", "Learner", 28),
               ("received", "Received (UTC)", 19), ("attempts", "Tries", 5), ("error", "Last error", 60))
    FILTER_PLACEHOLDER = "event, learner, delivery id or error text"
    VIEWS = VIEWS
    REFRESH_SECONDS = REFRESH_SECONDS
    BINDINGS = [
        Binding("r", "retry", "Retry", id="inbox.retry", tooltip="Retry the highlighted failed event (W3)"),
        Binding("R", "retry_all", "Retry all failed", id="inbox.retry_all", tooltip="Retry every failed event (W3)"),
        Binding("v", "cycle_view", "View", id="inbox.view", tooltip="Change which events are shown"),
        Binding("slash", "focus_filter", "Filter", show=False, id="inbox.filter",
                tooltip="Filter by event, learner, delivery id or error text"),
        Binding("y", "copy", "Copy", show=False, id="inbox.copy",
                tooltip="Copy the highlighted event and its payload to the clipboard"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="inbox.reload", tooltip="Read the inbox again"),
        Binding("escape", "focus_table", "Table", show=False, id="inbox.focus_table"),
        Binding("e", "explain_learner", "Learner", show=False, id="inbox.learner",
                tooltip="Why did this event's learner get (or not) their badges: open them in Learners"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.current_event: dict | None = None  # the highlighted event, payload included

    def compose_body(self) -> ComposeResult:
        yield from self.compose_filter()
        with Vertical(id="inbox-body"):
            with Vertical(id="inbox-left"):
                yield from self.compose_table()
            with Horizontal(id="inbox-detail"):
                with VerticalScroll(id="inbox-event", classes="panel") as event:
                    event.border_title = "Event"
                    yield Static("", id="inbox-summary")
                with VerticalScroll(id="inbox-payload-panel", classes="panel") as panel:
                    panel.border_title = "Payload"
                    yield Static("", id="inbox-payload")

    # -- loading ------------------------------------------------------------------------------
    def page_query(self) -> PageQuery:
        status, text = self.view_value, self.filter_text
        return PageQuery(count=partial(inbox.count_items, status=status, text=text),
                         fetch=partial(inbox.list_items, status=status, text=text), extra=inbox.counts)

    def row_cells(self, row: dict) -> list[Any]:
        return inbox_cells(row)

    def status_text(self) -> str:
        counts = self.page_extra or {}
        return (f"Inbox ({self.view_name}){self.filter_note()}: {self.table.position_text()}  ·  "
                f"backlog {counts.get('backlog', 0):,}  ·  failed {counts.get('failed', 0):,}  ·  "
                f"done {counts.get('done', 0):,}")

    def show_detail(self) -> None:
        item_id = self.current_id
        summary = self.query_one("#inbox-summary", Static)
        payload = self.query_one("#inbox-payload", Static)
        if item_id is None:
            self.current_event = None
            summary.update(Text("No deliveries." if not self.filter_text else "No delivery matches the filter.",
                                style="dim"))
            payload.update("")
            return

        def show(row: dict | None) -> None:
            self.current_event = row
            if row is None:
                summary.update(Text("This event is no longer in the inbox.", style="dim"))
                payload.update("")
                return
            summary.update(event_summary(row))
            try:
                payload.update(JSON(json.dumps(row.get("data"), ensure_ascii=False), indent=2))
            except (TypeError, ValueError):
                payload.update(Text(str(row.get("payload", ""))))

        self.background(lambda store: inbox.get_item(store, item_id), show, group="inbox-detail",
                        description="Loading the event")

    async def action_explain_learner(self) -> None:
        row = self.current_event or self.current_row or {}
        await open_learner(self, str(row.get("learner_key") or ""), json.dumps(row.get("data") or row.get("payload") or ""))

    def action_copy(self) -> None:
        row = self.current_event
        if row is None:
            return
        self.app.copy_to_clipboard(event_copy_text(row))
        self.notify(f"Copied event #{row['id']} and its payload to the clipboard.", markup=False)

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
