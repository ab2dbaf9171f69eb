"""Problems and notifications (N1, issue 16). The first view folds the open notifications of one
cause into one problem (what to do, the affected items; `t` tests the connection, `e` opens the
settings, `x` queues the failed events again, `c` closes it). The other views list every
notification: errors, configuration problems, rejected webhooks, deletion notices and digests.

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

from screens.confirm import ConfirmScreen
from screens.learners import open_learner
from screens.paged import PagedScreen, PageQuery
from screens.widgets.paged_table import plain
from services.store import inbox
from services.store.db import Store
from services.store.health import API_SERVICES, check_connections
from services.store.notifications import (
    close_problem,
    count_notifications,
    get_notification,
    list_notifications,
    list_problems,
    mark_read,
    mark_unread,
    problem_notifications,
)

PROBLEMS = "problems"

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


def problem_cells(problem: dict) -> list[Any]:
    return [
        Text("✖", style="bold red"),
        plain((problem["last_seen"] or "")[:19].replace("T", " ")),
        Text("problem", style="bold red"),
        Text(f"{problem['title']} — {problem['events']:,} event(s), {problem['runs']:,} run(s)", style="bold"),
        plain(problem["service"].capitalize()),
    ]


def problem_text(problem: dict) -> str:
    """Everything about one problem (what `y` copies): what to do first, then the figures, the
    service's own message and the affected items."""
    lines = [problem["title"], "", f"What to do: {problem['advice']}", ""]
    lines.append(f"Affected:  {problem['events']:,} event(s) or object(s) in {problem['runs']:,} run(s), "
                 f"{problem['notifications']:,} notification(s)")
    lines.append(f"First:     {_when(problem['first_seen'])}")
    lines.append(f"Last:      {_when(problem['last_seen'])}")
    if problem["run_ids"]:
        lines.append("Runs:      " + ", ".join(f"#{r}" for r in problem["run_ids"][-10:]))
    lines.append(f"Service:   {problem['service_message']}")
    lines.append(f"Cause:     {problem['cause']}")
    affected = problem.get("affected") or []
    if affected:
        lines += ["", "Affected items (newest first):"]
        lines += [f"- {_when(n['created_at'])[11:]}  {n['title']}" + (f" [{n['object']}]" if n["object"] else "")
                  for n in affected]
    return "\n".join(lines)


def read_problems(store: Store) -> list[dict]:
    problems = list_problems(store)
    for problem in problems:
        problem["affected"] = problem_notifications(store, problem["cause"], limit=20)
    return problems


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
    TITLE_TEXT = "Problems"
    NAME = "notifications"
    COLUMNS = ((" ", " ", 1), ("created", "Created (UTC)", 19), ("kind", "Kind", 8), ("title", "Title", 52),
               ("flow", "Flow", 18))
    VIEWS = ((PROBLEMS, PROBLEMS), ("all notifications", False), ("unread only", True))
    REFRESH_SECONDS = 3.0
    BINDINGS = [
        Binding("o", "open", "Open", id="notifications.open", tooltip="Show the notification and mark it read"),
        Binding("u", "mark_unread", "Mark unread", show=False, id="notifications.unread", tooltip="Mark it unread again"),
        Binding("R", "mark_all_read", "Mark all read", show=False, id="notifications.all_read",
                tooltip="Mark every notification read"),
        Binding("y", "copy", "Copy", show=False, id="notifications.copy",
                tooltip="Copy the notification's or problem's context to the clipboard"),
        Binding("v", "cycle_view", "View", id="notifications.view",
                tooltip="Problems (grouped by cause), all notifications, or the unread ones"),
        Binding("t", "test_connection", "Test connection", id="notifications.test",
                tooltip="Test the connection of the problem's service"),
        Binding("e", "open_settings", "Open settings", show=False, id="notifications.settings",
                tooltip="Go to Settings, where connections and settings are fixed"),
        Binding("x", "retry_events", "Retry events", id="notifications.retry",
                tooltip="Queue the failed webhook events again (asks first)"),
        Binding("c", "close_problem", "Close problem", show=False, id="notifications.close",
                tooltip="Close the problem by hand (it closes itself when the service works again)"),
        Binding("r", "reload", "Reload", show=False, id="notifications.reload", tooltip="Read the list again"),
        Binding("l", "explain_learner", "Learner", show=False, id="notifications.learner",
                tooltip="Open the learner this notification names in Learners"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="notifications-body"):
            with Vertical(id="notifications-left"):
                yield from self.compose_table()
            with VerticalScroll(id="notification-detail", classes="panel"):
                yield Static("", id="notification-context")

    # -- loading ------------------------------------------------------------------------------
    @property
    def problems_view(self) -> bool:
        return self.view_value == PROBLEMS

    def row_key(self, row: dict) -> Any:
        return row["cause"] if "affected" in row else row["id"]

    @property
    def current_id(self) -> int | None:
        key = self.current_key
        return int(key) if key is not None and key.isdigit() else None

    def page_query(self) -> PageQuery:
        if self.problems_view:
            return PageQuery(count=lambda store: len(list_problems(store)),
                             fetch=lambda store, limit, offset: read_problems(store)[offset:offset + limit],
                             extra=partial(count_notifications, unread_only=True))
        unread = self.view_value
        return PageQuery(count=partial(count_notifications, unread_only=unread),
                         fetch=partial(list_notifications, unread_only=unread),
                         extra=partial(count_notifications, unread_only=True))

    def row_cells(self, row: dict) -> list[Any]:
        return problem_cells(row) if "affected" in row else notification_cells(row)

    def status_text(self) -> str:
        return f"{self.view_name.capitalize()}: {self.table.position_text()}  ·  {self.page_extra or 0:,} unread"

    def show_detail(self) -> None:
        row = self.current_row
        target = self.query_one("#notification-context", Static)
        if row is None:
            empty = "No open problems: everything that failed has worked since." if self.problems_view else "No notifications."
            target.update(Text(empty, style="dim"))
            return
        target.update(Text(problem_text(row) if "affected" in row else context_text(row)))

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
        self.app.copy_to_clipboard(problem_text(row) if "affected" in row else context_text(row))
        self.notify("Copied the context to the clipboard.", markup=False)

    # -- problem actions (issue 16) -----------------------------------------------------------
    def _problem(self) -> dict | None:
        row = self.current_row
        if row is None or "affected" not in row:
            self.notify("Pick a problem first (v shows the problems).", severity="warning", markup=False)
            return None
        return row

    def action_test_connection(self) -> None:
        problem = self._problem()
        if problem is None:
            return
        service = problem["service"]
        if service not in API_SERVICES or not self.ctx.has_client(service):
            self.notify(f"There is no {service} connection to test here.", severity="warning", markup=False)
            return
        ctx = self.ctx

        async def job(store: Store) -> dict:
            return await check_connections(store, {service: partial(ctx.make_client, service)})

        def done(results: dict) -> None:
            row = results[service]
            self.notify(f"{service.capitalize()}: {'connection works' if row['ok'] else 'still failing'} — {row['message']}",
                        severity="information" if row["ok"] else "error", markup=False)
            self.action_reload()

        self.background_async(job, done, group="notifications-test", description=f"Testing the {service} connection")

    def action_open_settings(self) -> None:
        self.app.switch_mode("settings")

    def action_retry_events(self) -> None:
        def ask(failed: int) -> None:
            if not failed:
                self.notify("No failed webhook events to retry.", markup=False)
                return
            self.app.push_screen(
                ConfirmScreen("Retry failed events", f"Queue {failed:,} failed event{'s' if failed != 1 else ''} again?",
                              yes="Retry"),
                lambda yes: yes and self.background(inbox.retry_all_failed, queued, group="notifications-write",
                                                    exclusive=False, description="Queueing the failed events"))

        def queued(n: int) -> None:
            self.notify(f"{n:,} event{'s' if n != 1 else ''} queued again.", markup=False)
            self.action_reload()

        self.background(lambda store: inbox.counts(store).get("failed", 0), ask, group="notifications-count",
                        description="Counting the failed events")

    def action_close_problem(self) -> None:
        problem = self._problem()
        if problem is not None:
            cause = problem["cause"]
            self.background(lambda store: close_problem(store, cause), lambda _: self.action_reload(),
                            group="notifications-write", exclusive=False, description="Closing the problem")
