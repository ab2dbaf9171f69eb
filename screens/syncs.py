"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class SyncsScreen(ConsoleScreen):
    TITLE_TEXT = "Syncs"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Syncs")
        yield Footer()
