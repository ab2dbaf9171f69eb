"""Placeholder."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from screens.base import ConsoleScreen


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "Dashboard"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Dashboard")
        yield Footer()
