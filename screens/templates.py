"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class TemplatesScreen(ConsoleScreen):
    TITLE_TEXT = "Templates"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Templates")
        yield Footer()
