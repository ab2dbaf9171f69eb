"""Notifications (N1): errors, configuration problems, rejected webhooks, deletion notices and
batch digests, newest first, unread ones marked ●.

Highlighting a notification shows its full context on the right: the flow and run, the object
(the Docebo or Credly thing concerned), the API call, the service's own message, the body, and
whether it was mailed. Enter / `o` opens it (marks it read), `u` marks it unread again, `R`
marks all read, `y` copies the whole context to the clipboard (for a ticket), `v` shows only
the unread ones. The list refreshes on a timer, so new errors appear without a key press.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from screens.learners import open_learner
from screens.paged import PagedScreen, PageQuery
from screens.widgets.paged_table import plain
from services.store.db import Store
from services.store.notifications import count_notifications, get_notification, list_notifications, mark_read, mark_unread

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


def _when(stamp: str) -> str:
    return f"{stamp[:19].replace('T', ' ')} UTC"


def context_text(row: dict) -> str:
    """The full context of a notification as plain text (what `y` copies)."""
    lines = [row["title"], ""]
    lines.append(f"Kind:      {row['kind']}")
    lines.append(f"Created:   {_when(row['created_at'])}")
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
    lines.append(f"Read:      {_when(row['read_at']) if row['read_at'] else 'unread'}")
    if row.get("body"):
        lines += ["", row["body"]]
    return "\n".join(lines)


class NotificationsScreen(PagedScreen):
    TITLE_TEXT = "Notifications"
    NAME = "notifications"
    COLUMNS = ((" ", " ", 1), ("created", "Created (UTC)", 19), ("kind", "Kind", 8), ("title", "Title", 52),
               ("flow", "Flow", 18))
    VIEWS = (("all", False), ("unread only", True))
    REFRESH_SECONDS = 3.0
    BINDINGS = [
        Binding("o", "open", "Open", id="notifications.open", tooltip="Show the notification and mark it read"),
        Binding("u", "mark_unread", "Mark unread", show=False, id="notifications.unread", tooltip="Mark it unread again"),
        Binding("R", "mark_all_read", "Mark all read", id="notifications.all_read", tooltip="Mark every notification read"),
        Binding("y", "copy", "Copy", id="notifications.copy", tooltip="Copy the notification's context to the clipboard"),
        Binding("v", "cycle_view", "Unread only", id="notifications.view", tooltip="Show only unread ones, or all"),
        Binding("r", "reload", "Reload", show=False, id="notifications.reload", tooltip="Read the list again"),
        Binding("e", "explain_learner", "Learner", show=False, id="notifications.learner",
                tooltip="Open the learner this notification names in Learners"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="notifications-body"):
            with Vertical(id="notifications-left"):
                yield from self.compose_table()
            with VerticalScroll(id="notification-detail", classes="panel"):
                yield Static("", id="notification-context")

    # -- loading ------------------------------------------------------------------------------
    def page_query(self) -> PageQuery:
        unread = self.view_value
        return PageQuery(count=partial(count_notifications, unread_only=unread),
                         fetch=partial(list_notifications, unread_only=unread),
                         extra=partial(count_notifications, unread_only=True))

    def row_cells(self, row: dict) -> list[Any]:
        return notification_cells(row)

    def status_text(self) -> str:
        return f"Notifications ({self.view_name}): {self.table.position_text()}  ·  {self.page_extra or 0:,} unread"

    def show_detail(self) -> None:
        row = self.current_row
        target = self.query_one("#notification-context", Static)
        if row is None:
            target.update(Text("No notifications.", style="dim"))
            return
        target.update(Text(context_text(row)))

    # -- actions ------------------------------------------------------------------------------
    def row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        nid = self.current_id
        if nid is None:
            return

        def job(store: Store) -> dict | None:
            mark_read(store, [nid])
            return get_notification(store, nid)

        def show(row: dict | None) -> None:
            if row is not None:
                self.rows[str(nid)] = row
                self.show_detail()
            self.action_reload()

        self.background(job, show, group="notifications-write", exclusive=False, description="Opening the notification")

    def action_mark_unread(self) -> None:
        nid = self.current_id
        if nid is not None:
            self.background(lambda store: mark_unread(store, [nid]), lambda _: self.action_reload(),
                            group="notifications-write", exclusive=False, description="Marking unread")

    def action_mark_all_read(self) -> None:
        def done(n: int) -> None:
            self.notify(f"{n} notification{'s' if n != 1 else ''} marked read.", markup=False)
            self.action_reload()

        self.background(lambda store: mark_read(store, None), done, group="notifications-write", exclusive=False,
                        description="Marking all read")

    async def action_explain_learner(self) -> None:
        row = self.current_row or {}
        await open_learner(self, str(row.get("object") or ""), str(row.get("title") or ""), str(row.get("body") or ""))

    def action_copy(self) -> None:
        row = self.current_row
        if row is None:
            return
        self.app.copy_to_clipboard(context_text(row))
        self.notify("Copied the notification's context to the clipboard.", markup=False)
