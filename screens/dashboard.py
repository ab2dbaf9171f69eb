"""Dashboard: is everything working? (SPEC §4)

* each connection's health — the last "test connection" (when, ok or not, the message) and the
  API calls left in the current rate-limit window of the clients' limiter;
* configuration problems (S3) — required settings not set, stored values that do not validate;
* the last run of each flow with its status and counts;
* unread notifications, the newest first;
* the webhook inbox — backlog (queued + processing), failed, done.

Everything is read in one worker every `REFRESH_SECONDS` (and on `r`), so new runs, events and
notifications appear without a key press; the UI thread only paints the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import DataTable, Label, Static

from screens.base import ConsoleScreen, client
from screens.plan_review import counts_text
from services import inbox
from services.health import read_health
from services.notifications import list_notifications, unread_count
from services.settings import configuration_problems
from services.store import Store

REFRESH_SECONDS = 2.0
FLOWS_SHOWN: tuple[tuple[str, str], ...] = (
    ("templates", "F1 templates"),
    ("dropdown", "F2 dropdown"),
    ("docebo_to_credly", "F7 Docebo → Credly"),
    ("credly_to_docebo", "F6 Credly → Docebo"),
    ("all", "all"),
    ("course_completion", "F3 completions (webhook)"),
    ("certification", "F4 certifications (webhook)"),
    ("badge_event", "F5 badges (webhook)"),
    ("template_event", "F1 template events (webhook)"),
)


@dataclass
class DashboardData:
    health: dict[str, dict]
    limits: dict[str, str]
    problems: list[Any]
    last_runs: dict[str, dict]
    unread: int
    latest: list[dict]
    inbox: dict[str, int]
    available: dict[str, bool] = field(default_factory=dict)


def limit_text(limiter: Any) -> str:
    """ "20 calls available now (1000/hour, burst 20; all back by 14:05:00 UTC)" or "no
    client-side limit". The limiter is a token bucket: `remaining()` calls may go at once now,
    and the bucket is full again at `window_reset_at()`."""
    if limiter is None:
        return "not known until the first call"
    remaining = limiter.remaining()
    if remaining is None:
        return "no client-side limit"
    text = f"{remaining:,} calls available now"
    details = [limiter.describe()] if hasattr(limiter, "describe") else []
    reset = limiter.window_reset_at()
    if reset is not None:
        details.append(f"all back by {reset.strftime('%H:%M:%S')} UTC")
    if details:
        text += f" ({'; '.join(details)})"
    return text


def read_dashboard(store: Store) -> DashboardData:
    """Everything the dashboard shows except the limiters (which live in the process)."""
    last: dict[str, dict] = {}
    for flow, _ in FLOWS_SHOWN:
        rows = list(store.db.query(
            "SELECT * FROM runs WHERE flow = ? AND parent_run_id IS NULL ORDER BY id DESC LIMIT 1", [flow]))
        if rows:
            last[flow] = rows[0]
    return DashboardData(
        health=read_health(store),
        limits={},
        problems=configuration_problems(store),
        last_runs=last,
        unread=unread_count(store),
        latest=list_notifications(store, unread_only=True, limit=5),
        inbox=inbox.counts(store),
    )


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "Dashboard"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="dashboard.refresh", tooltip="Read everything again now"),
    ]

    def compose_body(self) -> ComposeResult:
        with Grid(id="dashboard-grid"):
            for service, title in (("credly", "Credly"), ("docebo", "Docebo")):
                with Vertical(classes="panel tile", id=f"tile-{service}"):
                    yield Label(f"{title} connection", classes="tile-title")
                    yield Static("", id=f"health-{service}")
            with Vertical(classes="panel tile", id="tile-inbox"):
                yield Label("Webhook inbox", classes="tile-title")
                yield Static("", id="inbox-counts")
            with Vertical(classes="panel tile", id="tile-problems"):
                yield Label("Configuration (S3)", classes="tile-title")
                yield Static("", id="config-problems")
            with Vertical(classes="panel tile", id="tile-notifications"):
                yield Label("Unread notifications", classes="tile-title")
                yield Static("", id="notification-summary")
            with Vertical(classes="panel tile", id="tile-runs"):
                yield Label("Last run of each flow", classes="tile-title")
                yield DataTable(id="last-runs", cursor_type="none", zebra_stripes=True, show_cursor=False)

    def on_mount(self) -> None:
        table = self.query_one("#last-runs", DataTable)
        for key, heading, width in (("flow", "Flow", 28), ("run", "Run", 6), ("status", "Status", 11),
                                    ("ended", "Ended (UTC)", 19), ("counts", "Counts", 60)):
            table.add_column(heading, width=width, key=key)
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self._tick)

    def _tick(self) -> None:
        if self in self.app.screen_stack:
            self.action_refresh()

    def action_refresh(self) -> None:
        ctx = self.ctx

        async def job(store: Store) -> DashboardData:
            data = read_dashboard(store)
            for service in ("credly", "docebo"):
                data.available[service] = ctx.has_client(service)
                if not data.available[service]:
                    data.limits[service] = "no connection in this console"
                    continue
                if ctx.limiter(service) is None:
                    # Building a client makes no call; it tells which limiter its calls use.
                    async with client(ctx, service):
                        pass
                data.limits[service] = limit_text(ctx.limiter(service))
            return data

        self.background_async(job, self._show, group="dashboard-refresh", description="Refreshing the dashboard")

    # -- painting -----------------------------------------------------------------------------
    def _show(self, data: DashboardData) -> None:
        for service in ("credly", "docebo"):
            text = Text()
            row = data.health.get(service)
            if row is None and not data.available.get(service):
                text.append("no connection in this console\n", style="dim")
            elif row is None:
                text.append("not tested yet (Settings → t)\n", style="yellow")
            else:
                text.append("✔ ok" if row["ok"] else "✘ failing", style="bold green" if row["ok"] else "bold red")
                text.append(f"  last test {row['checked_at'][:19].replace('T', ' ')}\n", style="dim")
                if row["message"]:
                    text.append(row["message"] + "\n", style="" if row["ok"] else "red")
            text.append("API: " + data.limits.get(service, ""), style="dim")
            self.query_one(f"#health-{service}", Static).update(text)

        counts = data.inbox
        text = Text()
        text.append(f"backlog {counts.get('backlog', 0):,}", style="bold cyan" if counts.get("backlog") else "")
        text.append("  ·  ")
        text.append(f"failed {counts.get('failed', 0):,}", style="bold red" if counts.get("failed") else "")
        text.append(f"  ·  done {counts.get('done', 0):,}  ·  skipped {counts.get('skipped', 0):,}")
        if counts.get("failed"):
            text.append("\nRetry failed events in the Inbox (7).", style="dim")
        self.query_one("#inbox-counts", Static).update(text)

        problems = Text()
        if not data.problems:
            problems.append("✔ no problems", style="green")
        for p in data.problems:
            problems.append(f"✘ {p.message}\n", style="red")
        self.query_one("#config-problems", Static).update(problems)

        note = Text()
        note.append(f"{data.unread:,} unread", style="bold" if data.unread else "dim")
        for n in data.latest:
            note.append(f"\n● {n['created_at'][:19].replace('T', ' ')}  {n['title']}", style="")
        self.query_one("#notification-summary", Static).update(note)

        table = self.query_one("#last-runs", DataTable)
        table.clear()
        for flow, label in FLOWS_SHOWN:
            run = data.last_runs.get(flow)
            if run is None:
                if flow in ("course_completion", "certification", "badge_event", "template_event", "all"):
                    continue
                table.add_row(Text(label), Text("—"), Text("never run", style="dim"), Text(""), Text(""), key=flow)
                continue
            style = {"succeeded": "green", "failed": "bold red", "cancelled": "yellow", "running": "bold cyan",
                     "interrupted": "yellow", "skipped": "dim"}.get(run["status"], "")
            table.add_row(
                Text(label + (" (dry run)" if run["dry_run"] else "")), Text(str(run["id"])),
                Text(run["status"], style=style), Text((run["ended_at"] or "")[:19].replace("T", " ")),
                Text(counts_text({k: run[k] for k in ("examined", "issued", "replaced", "revoked", "created",
                                                      "updated", "deleted", "skipped", "failed")})),
                key=flow)
