"""Notifications (N1): errors, configuration problems, rejected webhooks, deletion notices and
batch digests, newest first, unread ones marked ●.

Highlighting a notification shows its full context on the right: the flow and run, the object
(the Docebo or Credly thing concerned), the API call, the service's own message, the body, and
whether it was mailed. Enter / `o` opens it (marks it read), `u` marks it unread again, `R`
marks all read, `y` copies the whole context to the clipboard (for a ticket), `v` shows only
the unread ones. The list refreshes on a timer, so new errors appear without a key press.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from screens.base import ConsoleScreen
from screens.paged_table import PagedTable, plain
from screens.section_bar import SectionBar
from services.notifications import count_notifications, get_notification, list_notifications, mark_read, mark_unread
from services.store import Store

REFRESH_SECONDS = 3.0
KIND_LABEL = {"error": "error", "deletion_notice": "deletion", "digest": "digest", "config": "config",
              "webhook_rejected": "webhook"}
MAIL_LABEL = {"pending": "waiting to be mailed", "sent": "mailed", "failed": "mail failed (will retry)",
              "in_digest": "mailed in the run's digest", "not_mailed": "not mailed"}


def notification_cells(row: dict) -> list[Any]:
    unread = row["read_at"] is None
    kind = row["kind"]
    style = "bold red" if kind in ("error", "webhook_rejected") else ("yellow" if kind in ("config", "deletion_notice") else "")
    return [
        Text("●", style="bold cyan") if unread else Text(" "),
        plain((row["created_at"] or "")[:19].replace("T", " ")),
        Text(KIND_LABEL.get(kind, kind), style=style),
        Text(row["title"], style="bold" if unread else ""),
        plain(row["flow"] or "—"),
    ]


def context_text(row: dict) -> str:
    """The full context of a notification as plain text (what `y` copies)."""
    lines = [row["title"], ""]
    lines.append(f"Kind:      {row['kind']}")
    lines.append(f"Created:   {row['created_at']}")
    if row.get("flow"):
        lines.append(f"Flow:      {row['flow']}" + (f" (run #{row['run_id']})" if row.get("run_id") else ""))
    elif row.get("run_id"):
        lines.append(f"Run:       #{row['run_id']}")
    if row.get("object"):
        lines.append(f"Object:    {row['object']}")
    if row.get("call"):
        lines.append(f"Call:      {row['call']}")
    if row.get("service_message"):
        lines.append(f"Service:   {row['service_message']}")
    mail = MAIL_LABEL.get(row.get("mail_status", ""), row.get("mail_status", ""))
    if row.get("mail_error"):
        mail += f" — {row['mail_error']}"
    lines.append(f"Mail:      {mail}")
    lines.append(f"Read:      {row['read_at'] or 'unread'}")
    if row.get("body"):
        lines += ["", row["body"]]
    return "\n".join(lines)


class NotificationsScreen(ConsoleScreen):
    TITLE_TEXT = "Notifications"
    BINDINGS = [
        Binding("o", "open", "Open", id="notifications.open", tooltip="Show the notification and mark it read"),
        Binding("u", "mark_unread", "Mark unread", id="notifications.unread", tooltip="Mark it unread again"),
        Binding("R", "mark_all_read", "Mark all read", id="notifications.all_read", tooltip="Mark every notification read"),
        Binding("y", "copy", "Copy", id="notifications.copy", tooltip="Copy the notification's context to the clipboard"),
        Binding("v", "toggle_unread", "Unread only", id="notifications.view", tooltip="Show only unread ones, or all"),
        Binding("r", "reload", "Reload", show=False, id="notifications.reload", tooltip="Read the list again"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.unread_only = False
        self.current: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="notifications-body"):
            with Vertical(id="notifications-left"):
                yield PagedTable(id="notifications-table")
                yield Static("", id="notifications-status", classes="status-line")
            with VerticalScroll(id="notification-detail", classes="panel"):
                yield Static("", id="notification-context")
        yield SectionBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        table.add_column(" ", width=1, key="unread")
        table.add_column("Created (UTC)", width=19, key="created")
        table.add_column("Kind", width=8, key="kind")
        table.add_column("Title", width=52, key="title")
        table.add_column("Flow", width=18, key="flow")
        table.focus()
        self.load(0, "first")
        self.set_interval(REFRESH_SECONDS, self._tick)

    def _tick(self) -> None:
        if self in self.app.screen_stack:
            self.action_reload()

    # -- loading ------------------------------------------------------------------------------
    def load(self, offset: int, cursor: Any = "keep") -> None:
        unread = self.unread_only
        table = self.query_one(PagedTable)
        size = table.page_size

        def job(store: Store) -> tuple[list[dict], int, int, int]:
            total = count_notifications(store, unread_only=unread)
            start = min(offset, max(0, (total - 1) // size * size)) if total else 0
            unread_total = count_notifications(store, unread_only=True)
            return list_notifications(store, unread_only=unread, limit=size, offset=start), total, start, unread_total

        def show(result: tuple[list[dict], int, int, int]) -> None:
            rows, total, start, unread_total = result
            keep = table.current_key if cursor == "keep" else cursor
            table.show_page(((r["id"], notification_cells(r)) for r in rows), offset=start, total=total,
                            cursor=keep if keep is not None else "first")
            self._rows = {str(r["id"]): r for r in rows}
            view = "unread only" if unread else "all"
            self.query_one("#notifications-status", Static).update(
                Text(f"Notifications ({view}): {table.position_text()}  ·  {unread_total:,} unread"))
            self._show_detail()

        self.background(job, show, group="notifications-page", description="Loading notifications")

    _rows: dict[str, dict] = {}

    def on_paged_table_page_wanted(self, event: PagedTable.PageWanted) -> None:
        self.load(event.offset, event.cursor)

    def action_reload(self) -> None:
        self.load(self.query_one(PagedTable).page_offset)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        key = self.query_one(PagedTable).current_key
        row = self._rows.get(key or "")
        self.current = row
        target = self.query_one("#notification-context", Static)
        if row is None:
            target.update(Text("No notifications.", style="dim"))
            return
        target.update(Text(context_text(row)))

    # -- actions ------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _current_id(self) -> int | None:
        key = self.query_one(PagedTable).current_key
        return int(key) if key is not None else None

    def action_open(self) -> None:
        nid = self._current_id()
        if nid is None:
            return

        def job(store: Store) -> dict | None:
            mark_read(store, [nid])
            return get_notification(store, nid)

        def show(row: dict | None) -> None:
            if row is not None:
                self._rows[str(nid)] = row
                self.query_one("#notification-context", Static).update(Text(context_text(row)))
                self.current = row
            self.action_reload()

        self.background(job, show, group="notifications-write", exclusive=False, description="Opening the notification")

    def action_mark_unread(self) -> None:
        nid = self._current_id()
        if nid is not None:
            self.background(lambda store: mark_unread(store, [nid]), lambda _: self.action_reload(),
                            group="notifications-write", exclusive=False, description="Marking unread")

    def action_mark_all_read(self) -> None:
        def done(n: int) -> None:
            self.notify(f"{n} notification{'s' if n != 1 else ''} marked read.", markup=False)
            self.action_reload()

        self.background(lambda store: mark_read(store, None), done, group="notifications-write", exclusive=False,
                        description="Marking all read")

    def action_copy(self) -> None:
        if self.current is None:
            return
        self.app.copy_to_clipboard(context_text(self.current))
        self.notify("Copied the notification's context to the clipboard.", markup=False)

    def action_toggle_unread(self) -> None:
        self.unread_only = not self.unread_only
        self.load(0, "first")
