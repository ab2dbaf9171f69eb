"""Import mappings from a CSV file (M4): all-or-nothing, with every bad row listed.

Enter a path; `Check` reads the file and says what an import would do (added / updated /
unchanged / removed) without changing anything; `Import` applies it. A file with any invalid row
is refused whole and its errors fill the table (row numbers as in a spreadsheet: the header is
row 1), so the admin can fix the file and try again without leaving the dialog. With "replace"
the table becomes exactly the file (mappings not in it are removed). Reading the file and writing
the store happen in a worker.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Input, Label, Static, Switch

from screens.base import CsvFileDialog
from screens.confirm import ConfirmScreen
from services.store.db import Store
from services.store.mappings import ImportResult, MappingError, import_mappings_csv

ERRORS_SHOWN = 500


def describe_result(result: ImportResult) -> str:
    verb = "would" if result.dry_run else ""
    parts = [f"{result.rows} row{'s' if result.rows != 1 else ''} in the file"]
    for name in ("added", "updated", "unchanged", "removed"):
        n = getattr(result, name)
        if n or name != "removed":
            parts.append(f"{n} {verb + ' be ' if verb else ''}{name}")
    return ", ".join(parts)


class CsvImportScreen(CsvFileDialog[ImportResult | None]):
    """Dismisses with the applied ImportResult, or None when closed without importing."""

    BINDINGS = [
        Binding("ctrl+s", "apply", "Import", id="csv_import.apply", priority=True),
        Binding("escape", "close", "Close", id="csv_import.close"),
    ]

    EMPTY_PATH = "enter the path of a CSV file"

    def compose(self) -> ComposeResult:
        yield Footer()  # the dialog's own keys (the screen's below would mislead)
        with Vertical(id="csv-import-dialog", classes="dialog"):
            yield Label("Import mappings from CSV", classes="dialog-title")
            yield Label("CSV file", classes="field-label")
            yield Input(value=self.initial_path, id="csv-path", placeholder="path to a .csv file")
            with Horizontal(classes="switches"):
                yield Switch(value=False, id="replace")
                yield Label("Replace: the table becomes exactly the file (others are removed)")
            yield Static(Text("Header: template_id,template_name,learning_plan_id,import_as_external_training,"
                              "certification_code,is_active — only template_id is required.", style="dim"),
                         classes="help-line")
            yield Static("", id="csv-result")
            table = DataTable(id="csv-errors", cursor_type="row", zebra_stripes=True)
            table.display = False
            yield table
            with Horizontal(classes="dialog-buttons"):
                yield Button("Check", id="check")
                yield Button("Import", id="apply", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        table = self.query_one("#csv-errors", DataTable)
        table.add_column("Row", width=5, key="row")
        table.add_column("Column", width=18, key="field")
        table.add_column("Problem", key="message")
        self.query_one("#csv-path", Input).focus()

    def _run(self, dry_run: bool, *, confirmed: bool = False) -> None:
        path = self.csv_path()
        if path is None:
            return
        replace = self.query_one("#replace", Switch).value
        if replace and not dry_run and not confirmed:
            self._confirm_replace(path)
            return

        def job(store: Store) -> tuple[ImportResult | None, MappingError | None]:
            try:
                return import_mappings_csv(store, Path(path), replace=replace, dry_run=dry_run), None
            except MappingError as exc:
                return None, exc

        self.background(job, self._done, group="csv-import", description="Importing mappings")

    def _done(self, outcome: tuple[ImportResult | None, MappingError | None]) -> None:
        result, error = outcome
        table = self.query_one("#csv-errors", DataTable)
        table.clear()
        if error is not None:
            summary = error.summary or "the file was not imported (nothing changed)"
            self.show_result(Text(f"✘ {summary}", style="bold red"))
            for e in error.errors[:ERRORS_SHOWN]:
                table.add_row(Text(str(getattr(e, "row", ""))), Text(getattr(e, "field", "") or "—"),
                              Text(getattr(e, "message", str(e))))
            if len(error.errors) > ERRORS_SHOWN:
                table.add_row(Text("…"), Text(""), Text(f"and {len(error.errors) - ERRORS_SHOWN} more"))
            table.display = True
            return
        assert result is not None
        table.display = False
        if result.dry_run:
            self.show_result(Text(f"✔ the file is valid: {describe_result(result)}. Press Import to apply.",
                              style="green"))
            return
        self.dismiss(result)

    def _confirm_replace(self, path: str) -> None:
        """Replace removes rows: check the file first and say how much it touches (issue 16)."""

        def job(store: Store) -> tuple[ImportResult | None, MappingError | None]:
            try:
                return import_mappings_csv(store, Path(path), replace=True, dry_run=True), None
            except MappingError as exc:
                return None, exc

        def ask(outcome: tuple[ImportResult | None, MappingError | None]) -> None:
            result, error = outcome
            if error is not None:
                self._done(outcome)
                return
            if result is None or not result.removed:
                self._run(dry_run=False, confirmed=True)
                return
            question = (f"Replace: {result.removed} mapping{'s' if result.removed != 1 else ''} will be removed, "
                        f"{result.added} added, {result.updated} updated. Import?")
            self.app.push_screen(ConfirmScreen("Replace the mappings", question, yes="Replace", danger=True),
                                 lambda yes: yes and self._run(dry_run=False, confirmed=True))

        self.background(job, ask, group="csv-import", description="Checking what Replace removes")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check":
            self._run(dry_run=True)
        elif event.button.id == "apply":
            self._run(dry_run=False)
        else:
            self.dismiss(None)

    def submit(self) -> None:
        self._run(dry_run=True)

    def action_apply(self) -> None:
        self._run(dry_run=False)
