"""Export the mappings table to a CSV file (M1/M4): the whole table, by id, in the import format,
written atomically in a worker. Dismisses with (path, count) or None."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Label, Static

from screens.base import CsvFileDialog
from services.store.db import Store
from services.store.mappings import export_csv


class CsvExportScreen(CsvFileDialog[tuple[str, int] | None]):
    BINDINGS = [
        Binding("ctrl+s", "export", "Export", id="csv_export.apply", priority=True),
        Binding("escape", "close", "Close", id="csv_export.close"),
    ]

    def __init__(self, ctx: Any, path: str = "mappings.csv") -> None:
        super().__init__(ctx, path)

    def compose(self) -> ComposeResult:
        yield Footer()  # the dialog's own keys (the screen's below would mislead)
        with Vertical(id="csv-export-dialog", classes="dialog"):
            yield Label("Export mappings to CSV", classes="dialog-title")
            yield Label("CSV file (replaced if it exists)", classes="field-label")
            yield Input(value=self.initial_path, id="csv-path")
            yield Static("", id="csv-result")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one("#csv-path", Input).focus()

    def action_export(self) -> None:
        path = self.csv_path()
        if path is None:
            return

        def job(store: Store) -> tuple[str, int]:
            return path, export_csv(store, path)

        self.background(job, self.dismiss, group="csv-export", description="Exporting mappings")

    def submit(self) -> None:
        self.action_export()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self.action_export()
        else:
            self.dismiss(None)
