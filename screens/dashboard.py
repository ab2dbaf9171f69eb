"""Dashboard: is everything working? (SPEC §4)

Design notes: docs/design/console.md
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from screens.base import ConsoleScreen, client, subscribe_health
from screens.plan_review import counts_text
from screens.widgets.health import health_text
from services.store import inbox
from services.store.db import Store
from services.store.health import API_SERVICES, is_configured, read_health
from services.store.notifications import list_problems, unread_count
from services.store.settings import configuration_problems

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
    open_problems: list[dict]
    inbox: dict[str, int]
    available: dict[str, bool] = field(default_factory=dict)
    configured: dict[str, bool] = field(default_factory=dict)


def limit_text(limiter: Any, *, brief: bool = False) -> str:
    """ "20 calls available now (1,000/hour, burst 20; all back by 14:05:00 UTC)" or "no
    client-side limit". The limiter is a token bucket: `remaining()` calls may go at once now,
    and the bucket is full again at `window_reset_at()` (not said while it is full)."""
    if limiter is None:
        return "not known until the first call"
    remaining = limiter.remaining()
    if remaining is None:
        return "no client-side limit"
    text = f"{remaining:,} calls available now"
    if brief:
        return text
    details = [limiter.describe()] if hasattr(limiter, "describe") else []
    reset = limiter.window_reset_at()
    burst = getattr(limiter, "burst", None)
    if reset is not None and not (isinstance(burst, int) and remaining >= burst):
        details.append(f"all back by {reset.strftime('%H:%M:%S')} UTC")
    usage = limiter.usage() if hasattr(limiter, "usage") else None
    if usage and usage["limit"]:  # the install's shared budget (issue 15): used, left and by whom
        by = usage["by_class"]
        details.append(f"{usage['used']:,} used, {usage['left']:,} left this window: real-time {by['realtime']:,}, "
                       f"batch {by['batch']:,}, console {by['console']:,}")
    if details:
        text += f" ({'; '.join(details)})"
    return text


def problem_line(problem: Any) -> str:
    """One S3 problem on one line: "KEY — not set (required)" or "KEY — <why the stored value
    is refused>"."""
    key, message = problem.key, problem.message
    if message.startswith(f"{key} is not set"):
        return f"{key} — not set (required)"
    return f"{key} — {message}"


def problems_text(problems: list[Any]) -> Text:
    """Every S3 problem (none left out), then where to fix them."""
    text = Text()
    if not problems:
        text.append("✔ every required setting is set and valid", style="green")
        return text
    for p in problems:
        text.append(f"✘ {problem_line(p)}\n", style="red")
    text.append(f"Fix {'it' if len(problems) == 1 else 'them'} in Settings (2); until then the flows that need "
                f"{'it' if len(problems) == 1 else 'them'} stop with this reason (S3).", style="dim")
    return text


def inbox_text(counts: dict[str, int]) -> Text:
    text = Text()
    text.append(f"backlog {counts.get('backlog', 0):,}", style="bold cyan" if counts.get("backlog") else "")
    text.append("  ·  ")
    text.append(f"failed {counts.get('failed', 0):,}", style="bold red" if counts.get("failed") else "")
    text.append(f"\ndone {counts.get('done', 0):,}  ·  skipped {counts.get('skipped', 0):,}")
    if counts.get("failed"):
        text.append("\nRetry failed events in the Inbox (7).", style="dim")
    return text


def open_problems_text(open_problems: list[dict], unread: int) -> Text:
    """The open problems (notifications grouped by cause, issue 16): each one's title, how many
    events and runs it touches, and what to do; then the unread count."""
    text = Text()
    if not open_problems:
        text.append("No open problems", style="green")
    for problem in open_problems[:3]:
        text.append("✖ ", style="bold red")
        text.append(problem["title"], style="bold")
        text.append(f"\n  {problem['events']:,} event(s), {problem['runs']:,} run(s), last "
                    f"{problem['last_seen'][11:16]} UTC\n  {problem['advice']}\n")
    if len(open_problems) > 3:
        text.append(f"… and {len(open_problems) - 3} more\n", style="dim")
    text.append(f"\n{unread:,} unread notification(s)" if unread else "", style="dim")
    if open_problems or unread:
        text.append("\nDetails and actions in Problems (6).", style="dim")
    return text


def run_status_text(run: dict) -> tuple[str, str]:
    """(words, style) of a run's status: a run that ended with failed items is "succeeded with N
    failures" in its own colour, never a plain green "succeeded" (issue 16)."""
    status, failed = run["status"], run.get("failed") or 0
    if status == "succeeded" and failed:
        return f"succeeded with {failed:,} failure{'s' if failed != 1 else ''}", "bold dark_orange"
    return status, {"succeeded": "green", "failed": "bold red", "cancelled": "yellow", "running": "bold cyan",
                    "interrupted": "yellow", "skipped": "dim"}.get(status, "")


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
        open_problems=list_problems(store),
        inbox=inbox.counts(store),
    )


TILES: tuple[tuple[str, str, str], ...] = (  # (tile id, border title, id of its Static)
    ("tile-credly", "Credly connection", "health-credly"),
    ("tile-docebo", "Docebo connection", "health-docebo"),
    ("tile-inbox", "Webhook inbox", "inbox-counts"),
    ("tile-problems", "Configuration (S3)", "config-problems"),
    ("tile-notifications", "Problems", "notification-summary"),
)


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "Dashboard"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="dashboard.refresh", tooltip="Read everything again now"),
    ]

    def compose_body(self) -> ComposeResult:
        # Every tile is as tall as what it holds (no list is cut); on a short terminal the page
        # scrolls instead.
        with VerticalScroll(id="dashboard"):
            for row in ((TILES[0], TILES[1], TILES[2]), (TILES[3], TILES[4])):
                with Grid(classes="tile-row"):
                    for tile_id, title, static_id in row:
                        with Vertical(classes="panel tile", id=tile_id) as tile:
                            tile.border_title = title
                            yield Static("", id=static_id)
            with Vertical(classes="panel tile", id="tile-runs") as tile:
                tile.border_title = "Last run of each flow"
                yield DataTable(id="last-runs", cursor_type="none", zebra_stripes=True, show_cursor=False)

    def on_mount(self) -> None:
        table = self.query_one("#last-runs", DataTable)
        for key, heading, width in (("flow", "Flow", 28), ("run", "Run", 6), ("status", "Status", None),
                                    ("ended", "Ended (UTC)", 16), ("counts", "Counts", 50)):
            table.add_column(heading, width=width, key=key)
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self._tick)
        subscribe_health(self, self._health_changed)

    def _tick(self) -> None:
        if self in self.app.screen_stack:
            self.action_refresh()

    def on_resize(self) -> None:
        # Narrow or wide changes what the tiles say (brief or not): paint them again.
        if self.is_mounted:
            self.action_refresh()

    def _even_rows(self) -> None:
        """Give the tiles of a row the height of the tallest one's content (each tile is as tall
        as its own text otherwise, and a row of unequal boxes looks broken). Measured from the
        texts, not the boxes, so a row shrinks again when its longest text does."""
        for row in self.query(".tile-row"):
            tiles = list(row.query(".tile"))
            tallest = max(tile.query_one(Static).outer_size.height + tile.styles.gutter.height for tile in tiles)
            for tile in tiles:
                if tile.styles.min_height is None or tile.styles.min_height.value != tallest:
                    tile.styles.min_height = tallest

    def _health_changed(self, _results: dict[str, dict]) -> None:
        """A connection test has just been recorded (the app's test at start)."""
        self.action_refresh()

    def action_refresh(self) -> None:
        ctx = self.ctx
        brief = self.has_class("-narrow")

        async def job(store: Store) -> DashboardData:
            data = read_dashboard(store)
            for service in API_SERVICES:
                data.available[service] = ctx.has_client(service)
                data.configured[service] = is_configured(ctx.config, service)
                if not data.available[service]:
                    data.limits[service] = "no connection in this console"
                    continue
                if ctx.limiter(service) is None:
                    # Building a client makes no call; it tells which limiter its calls use.
                    async with client(ctx, service):
                        pass
                data.limits[service] = limit_text(ctx.limiter(service), brief=brief)
            return data

        self.background_async(job, self._show, group="dashboard-refresh", description="Refreshing the dashboard")

    # -- painting -----------------------------------------------------------------------------
    def _show(self, data: DashboardData) -> None:
        for service in API_SERVICES:
            text = health_text(data.health.get(service), available=data.available.get(service, False),
                               configured=data.configured.get(service, False), brief=self.has_class("-narrow"))
            if data.available.get(service):
                text.append("\nAPI: " + data.limits.get(service, ""), style="dim")
            self.query_one(f"#health-{service}", Static).update(text)
        self.query_one("#inbox-counts", Static).update(inbox_text(data.inbox))
        self.query_one("#config-problems", Static).update(problems_text(data.problems))
        self.query_one("#notification-summary", Static).update(open_problems_text(data.open_problems, data.unread))
        self.call_after_refresh(self._even_rows)

        table = self.query_one("#last-runs", DataTable)
        table.clear()
        for flow, label in FLOWS_SHOWN:
            run = data.last_runs.get(flow)
            if run is None:
                if flow in ("course_completion", "certification", "badge_event", "template_event", "all"):
                    continue
                table.add_row(Text(label), Text("—"), Text("never run", style="dim"), Text(""), Text(""), key=flow)
                continue
            status, style = run_status_text(run)
            table.add_row(
                Text(label + (" (dry run)" if run["dry_run"] else "")), Text(str(run["id"])),
                Text(status, style=style), Text((run["ended_at"] or "")[:16].replace("T", " ")),
                Text(counts_text({k: run[k] for k in ("examined", "issued", "replaced", "revoked", "created",
                                                      "updated", "deleted", "skipped", "failed")})),
                key=flow)
