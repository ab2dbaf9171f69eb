"""The error modal: an unexpected failure (a bug, not a refused value) with its details, so the
admin can copy them into a report. Opened only by `screens.base.report_worker_failure`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static, TextArea


class ErrorScreen(ModalScreen[None]):
    """Title, one-line summary and the details (traceback) in a read-only text area."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="error.close"),
        Binding("c", "copy", "Copy details", id="error.copy"),
    ]

    def __init__(self, title: str, summary: str, details: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.summary = summary
        self.details = details

    def compose(self) -> ComposeResult:
        yield Footer()  # the dialog's own keys (the screen's below would mislead)
        with Vertical(id="error-dialog", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.summary, id="error-summary", markup=False)
            if self.details:
                area = TextArea(self.details, read_only=True, id="error-details", soft_wrap=False)
                area.cursor_blink = False
                yield area
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy details", id="copy")
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(f"{self.title_text}\n{self.summary}\n\n{self.details}")
        self.notify("Error details copied to the clipboard.", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
