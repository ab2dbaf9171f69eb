"""The plan of a dry run, for review before applying it (SPEC §5: "every batch flow can run as a
plan that lists what it would do, changing nothing").

Shows the dry run's counts and its planned actions (issue_badge, create_external_training, …
with the object each concerns). Apply (`a`) dismisses with True and the caller starts the real
run; Close dismisses with False and nothing is changed.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Label, Static

ACTIONS_SHOWN = 1000
COUNT_ORDER = ("examined", "issued", "replaced", "revoked", "created", "updated", "deleted", "skipped", "failed")


def counts_text(counts: dict[str, int], *, verb: str = "") -> str:
    """ "examined 12 · issued 3 · failed 1" (zero counts left out, examined always shown)."""
    parts = []
    for key in COUNT_ORDER:
        value = int(counts.get(key, 0) or 0)
        if value or key == "examined":
            parts.append(f"{key} {value:,}")
    return (verb + " " if verb else "") + " · ".join(parts)


class PlanReviewScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("a", "apply", "Apply", id="plan_review.apply", tooltip="Run the flow for real"),
        Binding("escape", "close", "Close", id="plan_review.close", tooltip="Close without changing anything"),
    ]

    def __init__(self, summary: Any) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        yield Footer()  # the dialog's own keys (the screen's below would mislead)
        s = self.summary
        actions = list(s.actions or [])
        with Vertical(id="plan-dialog", classes="dialog"):
            yield Label(f"Dry run of {s.flow} (run #{s.run_id}): the plan", classes="dialog-title")
            status = f"Status: {s.status}" + (f" — {s.reason}" if s.reason else "")
            yield Static(Text(status, style="bold red" if s.status == "failed" else ""), id="plan-status")
            yield Static(Text(counts_text(s.counts, verb="Would do:")), id="plan-counts")
            if actions:
                yield Static(Text(f"{len(actions):,} planned change{'s' if len(actions) != 1 else ''}"
                                  + (f" (first {ACTIONS_SHOWN:,} shown; all are in the run's log)"
                                     if len(actions) > ACTIONS_SHOWN else "") + ":"), id="plan-summary")
                yield DataTable(id="plan-actions", cursor_type="row", zebra_stripes=True)
                yield Static("", id="plan-detail")
            else:
                yield Static(Text("Nothing to change: applying would make no write call.", style="green"),
                             id="plan-summary")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", id="apply", variant="warning" if actions else "primary",
                             disabled=self.summary.status == "failed")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        if self.query("#plan-actions"):
            table = self.query_one("#plan-actions", DataTable)
            table.add_column("Action", width=26, key="action")
            table.add_column("Object", width=34, key="object")
            table.add_column("Details", key="message")
            for n, a in enumerate(list(self.summary.actions)[:ACTIONS_SHOWN]):
                table.add_row(Text(a.get("action", "")), Text(a.get("object", "")), Text(a.get("message", "")),
                              key=str(n))
            table.focus()
        else:
            self.query_one("#close", Button).focus()
        self.call_after_refresh(self._fit_table)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_table)

    def _fit_table(self) -> None:
        """The table of changes gets the height the rest of the dialog leaves, so the buttons
        always show whatever the terminal's height (the dialog is at most 90% of the screen)."""
        if not self.query("#plan-actions"):
            return
        dialog, table = self.query_one("#plan-dialog"), self.query_one("#plan-actions", DataTable)
        others = dialog.styles.gutter.height + sum(
            child.outer_size.height + child.styles.margin.height for child in dialog.children if child is not table)
        screen_room = self.size.height - self.query_one(Footer).outer_size.height
        room = max(3, int(screen_room * 0.9) - others - table.styles.margin.height)  # header + 2 rows at least
        if table.styles.max_height is None or table.styles.max_height.value != room:
            table.styles.max_height = room

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted change in full (the table cuts long e-mails and details)."""
        action = self.summary.actions[int(event.row_key.value)]
        text = Text()
        text.append(action.get("action", ""), style="bold")
        if action.get("object"):
            text.append(f"  {action['object']}")
        if action.get("message"):
            text.append(f"\n{action['message']}", style="dim")
        self.query_one("#plan-detail", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.dismiss(False)

    def action_apply(self) -> None:
        if self.summary.status == "failed":
            self.notify("The dry run failed; fix the reason and run it again.", severity="warning", markup=False)
            return
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
