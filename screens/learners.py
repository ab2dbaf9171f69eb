"""Learners (key 8): why did — or didn't — this learner get this badge. The trace of `explain`
(issue 13) per template — decision, rule (F3c, O1, L1/O2, G1, S3), reason — with its history,
and keys to jump to a run's log (Syncs) or the learner's inbox events.

Reference: docs/explain.md
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Static

from screens.base import ConsoleScreen, flow_context
from services.store.db import Store

DECISION_STYLE = {"issue": "bold green", "create": "bold green", "replace": "bold yellow", "update": "bold yellow",
                  "revoke": "bold red", "delete": "bold red", "nothing": "dim"}
SUGGESTIONS_MAX = 2000


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_USER = re.compile(r"(?:docebo-user:|Docebo user |\buser )(\d+)")


def learner_in(*texts: str) -> str | None:
    """The learner a row names (an e-mail first, else a Docebo user id), or None."""
    for text in texts:
        found = _EMAIL.search(text or "")
        if found:
            return found.group(0)
    for text in texts:
        found = _USER.search(text or "")
        if found:
            return found.group(1)
    return None


async def open_learner(screen: Any, *texts: str) -> None:
    """The other sections' "learner" key: explain the learner the highlighted row names."""
    learner = learner_in(*texts)
    if learner is None:
        screen.notify("This row names no learner.", severity="warning")
        return
    await screen.app.switch_mode("learners")
    target = screen.app.screen
    if isinstance(target, LearnersScreen):
        target.show_learner(learner)


def known_learners(store: Store) -> list[str]:
    """E-mails the ledger knows (badge recipients), for the input's suggestions."""
    rows = store.db.query("SELECT DISTINCT subject FROM ledger WHERE object_type = 'badge' ORDER BY subject LIMIT ?",
                          [SUGGESTIONS_MAX])
    return [r["subject"] for r in rows]


def history_text(trace: Any) -> Text:
    out = Text()
    if trace is None:
        return Text("Type an e-mail or a Docebo user id and press Enter.", style="dim")
    out.append(f"{trace.template_name}\n", style="bold")
    out.append(f"{trace.decision} [{trace.rule}] ", style=DECISION_STYLE.get(trace.decision, ""))
    out.append(f"{trace.reason}\n")
    for s in trace.sources:
        out.append(f"source: {s['type'].replace('_', ' ')} {s['id']}{' on ' + s['date'] if s['date'] else ''}\n", style="cyan")
    for b in trace.credly_badges:
        by = ", issued by credly-console" if b["issued_by_product"] else ""
        out.append(f"Credly badge {b['id']} ({b['state']}){by}\n", style="cyan")
    for h in trace.history:
        run = f"run {h['run_id']}" if h["run_id"] is not None else "-"
        out.append(f"{str(h['at'])[:16].replace('T', ' ')}  {run:>7}  {h['message']}\n")
    return out


class LearnersScreen(ConsoleScreen):
    TITLE_TEXT = "Learners"
    BINDINGS = [
        Binding("slash", "focus_learner", "Learner", id="learners.search", tooltip="Type an e-mail or a Docebo user id"),
        Binding("r", "explain", "Explain again", show=False, id="learners.explain",
                tooltip="Read the learner live again and ask the flows what they would do now"),
        Binding("s", "open_run", "Run log", id="learners.open_run",
                tooltip="Open the log of the newest run in the highlighted template's history (Syncs)"),
        Binding("i", "open_inbox", "Inbox", id="learners.open_inbox", tooltip="Show this learner's inbox events (Inbox)"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.explanation: Any = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="learners-body"):
            yield Input(placeholder="e-mail or Docebo user id, then Enter", id="learner-input", compact=True)
            yield Static("", id="learner-summary")
            table: DataTable[Any] = DataTable(id="learner-trace", cursor_type="row", zebra_stripes=True)
            yield table
            with VerticalScroll(id="learner-detail", classes="panel") as detail:
                detail.border_title = "Why, and what was done before"
                yield Static(history_text(None), id="learner-history")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#learner-trace", DataTable)
        table.add_columns("Template", "Decision", "Rule", "Reason")
        table.focus()  # `/` goes to the learner input (the footer shows it)
        self.background(known_learners, self._suggest, group="learners-suggest", description="Reading known learners")

    def _suggest(self, emails: list[str]) -> None:
        self.query_one("#learner-input", Input).suggester = SuggestFromList(emails, case_sensitive=False)

    # -- explaining ---------------------------------------------------------------------------
    def show_learner(self, learner: str) -> None:
        """Explain `learner` (used by the other sections' "learner" key)."""
        self.query_one("#learner-input", Input).value = learner
        self.action_explain()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "learner-input":
            self.action_explain()

    def action_focus_learner(self) -> None:
        self.query_one("#learner-input", Input).focus()

    def action_explain(self) -> None:
        text = self.query_one("#learner-input", Input).value.strip()
        if not text:
            self.notify("Type an e-mail or a Docebo user id first.", severity="warning")
            return
        ctx = self.ctx
        self.query_one("#learner-summary", Static).update(Text(f"Reading {text} live…", style="italic"))

        async def job(store: Store) -> Any:
            from services.flows.explain import explain_learner

            async with flow_context(ctx, store) as fctx:
                return await explain_learner(fctx, text)

        self.background_async(job, self._show, group="learners-explain", description=f"Explaining {text}")

    def _show(self, ex: Any) -> None:
        self.explanation = ex
        who = f"{ex.email or '(no e-mail)'} — Docebo user {ex.docebo_user_id or '-'}"
        if not ex.found:
            summary = Text(f"{who}: found neither in Docebo nor in Credly.", style="bold red")
        else:
            summary = Text(who + ("" if ex.found_in_docebo else " (not found in Docebo)"))
            if ex.blocked:
                summary.append(f"  Blocked: {ex.blocked}", style="bold red")
        self.query_one("#learner-summary", Static).update(summary)
        table = self.query_one("#learner-trace", DataTable)
        table.clear()
        for t in ex.templates:
            table.add_row(t.template_name, Text(t.decision, style=DECISION_STYLE.get(t.decision, "")), t.rule, t.reason,
                          key=t.template_id)
        self._show_detail()
        if ex.templates:
            table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "learner-trace":
            self._show_detail()

    def _current(self) -> Any:
        ex = self.explanation
        if ex is None or not ex.templates:
            return None
        row = self.query_one("#learner-trace", DataTable).cursor_row
        return ex.templates[min(max(row, 0), len(ex.templates) - 1)]

    def _show_detail(self) -> None:
        trace = self._current()
        empty = Text("No template has a source or a badge for this learner.", style="dim")
        self.query_one("#learner-history", Static).update(history_text(trace) if trace or self.explanation is None else empty)

    # -- jumps --------------------------------------------------------------------------------
    async def action_open_run(self) -> None:
        trace = self._current()
        runs = [h["run_id"] for h in (trace.history if trace else []) if h["run_id"] is not None]
        if not runs:
            self.notify("No run in this template's history.", severity="warning")
            return
        await self.app.switch_mode("syncs")
        screen = self.app.screen
        if hasattr(screen, "load_runs"):
            screen.load_runs(0, follow=int(runs[0]))

    async def action_open_inbox(self) -> None:
        ex = self.explanation
        if ex is None:
            self.notify("Explain a learner first.", severity="warning")
            return
        key = f"docebo-user:{ex.docebo_user_id}" if ex.found_in_docebo else ex.email
        await self.app.switch_mode("inbox")
        screen = self.app.screen
        box = screen.query(Input).filter("#inbox-filter")
        if box:
            box.first().value = key
