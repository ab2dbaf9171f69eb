"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class NotificationsScreen(ConsoleScreen):
    TITLE_TEXT = "Notifications"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Notifications")
        yield Footer()
