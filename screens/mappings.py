"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class MappingsScreen(ConsoleScreen):
    TITLE_TEXT = "Mappings"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Mappings")
        yield Footer()
