"""Syncs: launch a flow, review its dry run, apply it, watch it live, cancel it, read history.

Design notes: docs/design/console.md
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Footer, Header, Label, Log, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from screens.base import ConsoleScreen, flow_context, flows_available
from screens.learners import open_learner
from screens.plan_review import PlanReviewScreen, counts_text
from screens.widgets.paged_table import PagedTable, plain
from screens.widgets.section_bar import SectionBar
from services.store.db import Store
from services.store.runs import AUTOMATIC_TRIGGERS

FLOWS: tuple[tuple[str, str], ...] = (
    ("templates", "F1  Credly templates → table T"),
    ("dropdown", "F2  table T → Docebo course field"),
    ("docebo-to-credly", "F7  Docebo completions & awards → badges"),
    ("credly-to-docebo", "F6  Credly badges → Docebo"),
    ("all", "All  F1, F2, F7, F6 in order"),
)
LIVE_LOG_LINES = 5000
LOG_FLUSH_SECONDS = 0.1
HISTORY_REFRESH_SECONDS = 3.0
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "", "debug": "dim"}


class RunProgress(Message):
    """Progress of the running flow. A newer one replaces an older one still queued."""

    def __init__(self, done: int, total: int | None) -> None:
        super().__init__()
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunProgress)


def log_line_text(line: Any) -> str:
    """One live log line: level, object, message (no clock: the history has the times)."""
    level = getattr(line, "level", "info")
    obj = getattr(line, "object", "")
    action = getattr(line, "action", "")
    head = f"{level.upper():7}"
    if action:
        head += f" [{action}]"
    if obj:
        head += f" {obj}:"
    return f"{head} {getattr(line, 'message', '')}"


def run_cells(row: dict) -> list[Any]:
    status = row["status"]
    style = {"succeeded": "green", "failed": "bold red", "cancelled": "yellow", "running": "bold cyan",
             "interrupted": "yellow", "skipped": "dim"}.get(status, "")
    flow = ("↳ " if row.get("parent_run_id") else "") + row["flow"]
    return [
        plain(row["id"]), plain(flow), plain(row["trigger"]), plain("dry" if row["dry_run"] else ""),
        Text(status, style=style), plain((row["started_at"] or "")[:19].replace("T", " ")),
        plain(f"{row['examined']:,}"), plain(f"{row['issued'] + row['created'] + row['replaced']:,}"),
        Text(f"{row['failed']:,}", style="bold red" if row["failed"] else ""),
    ]


class SyncsScreen(ConsoleScreen):
    TITLE_TEXT = "Syncs"
    BINDINGS = [
        Binding("d", "dry_run", "Dry run", id="syncs.dry_run",
                tooltip="Run the highlighted flow as a dry run, then review its plan"),
        Binding("c", "cancel_run", "Cancel run", id="syncs.cancel", tooltip="Cancel the running flow between items"),
        Binding("u", "toggle_full", "Full run", show=False, id="syncs.full",
                tooltip="Full run on/off: F7 and F6 re-read everything instead of only what changed"),
        Binding("f", "toggle_failures", "Failures only", id="syncs.failures",
                tooltip="Show only the failures in the selected run's log"),
        Binding("h", "focus_history", "History", show=False, id="syncs.history", tooltip="Go to the history of runs"),
        Binding("l", "focus_flows", "Flows", show=False, id="syncs.flows", tooltip="Go to the list of flows"),
        Binding("r", "reload", "Reload", show=False, id="syncs.reload", tooltip="Read the history again"),
        Binding("e", "explain_learner", "Learner", show=False, id="syncs.learner",
                tooltip="Open the learner the highlighted log line names in Learners"),
        Binding("w", "toggle_triggers", "Webhook runs", show=False, id="syncs.triggers",
                tooltip="History: also show the runs of webhook events and of the scheduler, or hide them again"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.running: str | None = None  # "flow" or "flow (dry run)" while a run goes
        self._cancel = threading.Event()
        self._pending_lines: deque[Any] = deque()
        self.failures_only = False
        self.all_triggers = False  # history: also the webhook and scheduler runs
        self.selected_run: int | None = None
        self.last_summary: Any = None
        self._run_full = False  # the run going (or just reviewed) was asked to be full

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="syncs-top"):
            with Vertical(id="flows-panel", classes="panel"):
                yield Label("Flows", classes="section-title")
                yield OptionList(*(Option(text, id=name) for name, text in FLOWS), id="flow-list")
                yield Checkbox("Full run (F7, F6 re-read all)", value=False, id="full-run")
            with Vertical(id="live-panel", classes="panel"):
                yield Static("No run in progress. Pick a flow and press d for a dry run.", id="run-title")
                yield ProgressBar(total=None, show_eta=False, id="run-progress")
                yield Static("", id="run-counts")
                yield Log(max_lines=LIVE_LOG_LINES, id="live-log", auto_scroll=True)
        with Horizontal(id="syncs-bottom"):
            with Vertical(id="history-panel", classes="panel"):
                yield Label(self._history_title(), id="history-title", classes="section-title")
                yield PagedTable(id="runs-table", page_size=100)
                yield Static("", id="runs-status", classes="status-line")
            with Vertical(id="run-log-panel", classes="panel"):
                yield Label("Log of the selected run", id="run-log-title", classes="section-title")
                yield PagedTable(id="run-log-table", page_size=500)
                yield Static("", id="run-log-status", classes="status-line")
        yield SectionBar()
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs-table", PagedTable)
        for key, heading, width in (("id", "Run", 5), ("flow", "Flow", 18), ("trigger", "Trigger", 8),
                                    ("dry", "Dry", 3), ("status", "Status", 11), ("started", "Started (UTC)", 19),
                                    ("examined", "Seen", 7), ("changed", "Done", 6), ("failed", "Fail", 5)):
            runs.add_column(heading, width=width, key=key)
        log = self.query_one("#run-log-table", PagedTable)
        log.add_column("Level", width=7, key="level")
        log.add_column("Object", width=22, key="object")
        log.add_column("Message", key="message")
        self.query_one("#run-progress", ProgressBar).display = False  # no pulsing bar while idle
        self.query_one("#flow-list", OptionList).highlighted = 0
        self.query_one("#flow-list", OptionList).focus()
        self.set_interval(LOG_FLUSH_SECONDS, self._flush_log)
        self.set_interval(HISTORY_REFRESH_SECONDS, self._refresh_history)
        self.load_runs(0, "first")

    def on_unmount(self) -> None:
        self._cancel.set()  # the app is closing: let a running flow stop between items

    # -- history ------------------------------------------------------------------------------
    def _visible(self) -> bool:
        return self in self.app.screen_stack

    def _refresh_history(self) -> None:
        if self._visible():
            self.action_reload()

    def action_reload(self) -> None:
        self.load_runs(self.query_one("#runs-table", PagedTable).page_offset, follow=self.selected_run)

    def _history_title(self) -> str:
        if self.all_triggers:
            return "History — every run (w: batch and manual only)"
        return "History — batch and manual runs (w: also webhook and scheduler)"

    def action_toggle_triggers(self) -> None:
        self.all_triggers = not self.all_triggers
        self.query_one("#history-title", Label).update(self._history_title())
        selected = self.selected_run
        self.load_runs(0, str(selected) if selected is not None else "first", follow=selected)

    def load_runs(self, offset: int, cursor: Any = "keep", *, follow: int | None = None) -> None:
        """Show the page of the history at `offset` — or, with `follow`, the page holding that
        run (when the filter shows it). `cursor`: "keep", "first" or the key of a row to select
        (PagedTable.show_page)."""
        size = self.query_one("#runs-table", PagedTable).page_size
        hidden = () if self.all_triggers else AUTOMATIC_TRIGGERS

        def job(store: Store) -> tuple[list[dict], int, int]:
            from services.store.runs import count_runs, query_runs, run_position

            total = count_runs(store, exclude_triggers=hidden)
            start = offset
            position = run_position(store, follow, exclude_triggers=hidden) if follow is not None else None
            if position is not None:
                start = position // size * size
            start = min(start, max(0, (total - 1) // size * size)) if total else 0
            return query_runs(store, exclude_triggers=hidden, limit=size, offset=start), total, start

        def show(result: tuple[list[dict], int, int]) -> None:
            rows, total, start = result
            table = self.query_one("#runs-table", PagedTable)
            keep = table.current_key if cursor == "keep" else cursor
            table.show_page(((r["id"], run_cells(r)) for r in rows), offset=start, total=total,
                            cursor=keep if keep is not None else "first")
            self.query_one("#runs-status", Static).update(Text(f"Runs: {table.position_text()}"))
            self._select_run(table.current_key)

        self.background(job, show, group="syncs-history", description="Loading the history of runs")

    def on_paged_table_page_wanted(self, event: PagedTable.PageWanted) -> None:
        if event.table.id == "runs-table":
            self.load_runs(event.offset, event.cursor)
        else:
            self.load_run_log(event.offset, event.cursor)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs-table":
            self._select_run(event.row_key.value)

    def _select_run(self, key: str | None) -> None:
        run_id = int(key) if key is not None else None
        if run_id == self.selected_run and run_id is not None:
            # The same run: refresh its log only while it may still be growing.
            return self.load_run_log(self.query_one("#run-log-table", PagedTable).page_offset, "keep")
        self.selected_run = run_id
        self.load_run_log(0, "first")

    def load_run_log(self, offset: int, cursor: Any = "keep") -> None:
        run_id, failures = self.selected_run, self.failures_only
        table = self.query_one("#run-log-table", PagedTable)
        size = table.page_size
        title = self.query_one("#run-log-title", Label)
        if run_id is None:
            title.update("Log of the selected run")
            table.show_page([], offset=0, total=0)
            return
        title.update(f"Log of run #{run_id}" + (" — failures only" if failures else ""))

        def job(store: Store) -> tuple[list[dict], int, int]:
            from services.store.runs import count_run_log, query_run_log

            total = count_run_log(store, run_id, failures_only=failures)
            start = min(offset, max(0, (total - 1) // size * size)) if total else 0
            return query_run_log(store, run_id, failures_only=failures, limit=size, offset=start), total, start

        def show(result: tuple[list[dict], int, int]) -> None:
            rows, total, start = result
            self.log_rows = {str(r["id"]): r for r in rows}
            table.show_page(
                ((r["id"], [Text(r["level"], style=LEVEL_STYLE.get(r["level"], "")), plain(r["object"]),
                            plain(r["message"])]) for r in rows),
                offset=start, total=total, cursor=cursor)
            what = "failures" if failures else "lines"
            self.query_one("#run-log-status", Static).update(Text(f"{what.capitalize()}: {table.position_text()}"))

        self.background(job, show, group="syncs-run-log", description="Loading the run's log")

    async def action_explain_learner(self) -> None:
        key = self.query_one("#run-log-table", PagedTable).current_key
        row = getattr(self, "log_rows", {}).get(str(key), {})
        await open_learner(self, str(row.get("object") or ""), str(row.get("message") or ""))

    def action_toggle_failures(self) -> None:
        self.failures_only = not self.failures_only
        self.load_run_log(0, "first")

    def action_focus_history(self) -> None:
        self.query_one("#runs-table", PagedTable).focus()

    def action_focus_flows(self) -> None:
        self.query_one("#flow-list", OptionList).focus()

    # -- launching ----------------------------------------------------------------------------
    def _highlighted_flow(self) -> str | None:
        options = self.query_one("#flow-list", OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_dry_run()

    def action_dry_run(self) -> None:
        flow = self._highlighted_flow()
        if flow is not None:
            self.start_run(flow, dry_run=True, full=self.query_one("#full-run", Checkbox).value)

    def action_toggle_full(self) -> None:
        box = self.query_one("#full-run", Checkbox)
        box.value = not box.value

    def start_run(self, flow: str, *, dry_run: bool, full: bool = False) -> None:
        """Run `flow` (a dry run first; `dry_run=False` only after the plan was reviewed).
        `full`: F7/F6 read everything instead of only what changed (`--full`)."""
        if not flows_available():
            self.notify("The sync flows are not part of this build yet.", severity="warning", markup=False)
            return
        if self.running is not None:
            self.notify(f"{self.running} is still running; cancel it (c) or wait.", severity="warning",
                        markup=False)
            return
        from services.core.flow_types import Callbacks

        ctx = self.ctx
        self._cancel = cancel = threading.Event()
        lines = self._pending_lines
        self._run_full = full
        self.running = f"{flow}{' (full)' if full else ''}{' (dry run)' if dry_run else ''}"
        self.query_one("#run-title", Static).update(Text(f"Running {self.running}…", style="bold"))
        self.query_one("#run-counts", Static).update("")
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        live = self.query_one("#live-log", Log)
        live.clear()
        lines.clear()
        callbacks = Callbacks(
            on_progress=lambda done, total: self.post_message(RunProgress(done, total)),
            on_log=lines.append,
            should_cancel=cancel.is_set,
        )

        async def job(store: Store) -> tuple[Any, dict | None]:
            from services.flows import run_flow
            from services.store.runs import get_run

            async with flow_context(ctx, store) as fctx:
                summary = await run_flow(flow, fctx, dry_run=dry_run, trigger="console", callbacks=callbacks,
                                         full=full)
            return summary, get_run(store, summary.run_id) if summary.run_id else None

        worker = self.background_async(job, self._run_finished, group="syncs-run", exclusive=False,
                                       description=f"Sync {self.running}")
        self._run_worker = worker

    def on_worker_state_changed(self, event: Any) -> None:
        # A run that crashed (a bug) is reported by the base handler; free the panel here.
        worker = event.worker
        if worker is getattr(self, "_run_worker", None) and event.state.name in ("ERROR", "CANCELLED"):
            self.running = None
            self.query_one("#run-title", Static).update(Text("The run stopped with an error.", style="bold red"))

    def on_run_progress(self, message: RunProgress) -> None:
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=message.total, progress=message.done)

    def _flush_log(self) -> None:
        if not self._pending_lines:
            return
        batch = []
        while self._pending_lines:
            batch.append(log_line_text(self._pending_lines.popleft()))
        self.query_one("#live-log", Log).write_lines(batch)

    def action_cancel_run(self) -> None:
        if self.running is None:
            self.notify("No run in progress.", markup=False)
            return
        self._cancel.set()
        self.query_one("#run-title", Static).update(Text(f"Cancelling {self.running}… (after the items in flight)",
                                                         style="bold yellow"))

    def _run_finished(self, result: tuple[Any, dict | None]) -> None:
        summary, row = result
        self._flush_log()
        self.running = None
        self.last_summary = summary
        bar = self.query_one("#run-progress", ProgressBar)
        if row is not None:
            # The run row is the truth: its final progress and counts are what the store holds.
            total = row["progress_total"] if row["progress_total"] is not None else row["progress_done"]
            bar.update(total=max(total or 0, row["progress_done"]) or 1,
                       progress=row["progress_done"] if total else 1)
            counts = {k: row[k] for k in ("examined", "issued", "replaced", "revoked", "created", "updated",
                                          "deleted", "skipped", "failed")}
        else:
            counts = dict(summary.counts)
        verb = "Would do:" if summary.dry_run else "Done:"
        mode = f" ({summary.mode})" if getattr(summary, "mode", "") else ""
        title = f"Run #{summary.run_id} {summary.flow}{mode}{' (dry run)' if summary.dry_run else ''}: {summary.status}"
        if summary.reason and summary.status != "succeeded":
            title += f" — {summary.reason}"
        style = {"succeeded": "bold green", "failed": "bold red", "cancelled": "bold yellow"}.get(summary.status, "bold")
        self.query_one("#run-title", Static).update(Text(title, style=style))
        self.query_one("#run-counts", Static).update(Text(counts_text(counts, verb=verb)))
        self.load_runs(0, str(summary.run_id), follow=summary.run_id)
        if summary.dry_run and summary.status in ("succeeded", "failed"):
            flow = next((name for name, _ in FLOWS if name.replace("-", "_") == summary.flow), summary.flow)

            full = self._run_full

            def reviewed(apply: bool | None) -> None:
                if apply:
                    self.start_run(flow, dry_run=False, full=full)

            self.app.push_screen(PlanReviewScreen(summary), reviewed)
