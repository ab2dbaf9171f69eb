"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class InboxScreen(ConsoleScreen):
    TITLE_TEXT = "Inbox"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Inbox")
        yield Footer()
