"""The line of section keys above the footer: "1 Dashboard  2 Settings  3 Templates ...", the
current section highlighted, each one clickable.

Design notes: docs/design/console.md
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.events import Click, Resize
from textual.widgets import Static


class SectionBar(Static):
    DEFAULT_CSS = """
    SectionBar {
        height: 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._spans: list[tuple[int, int, str]] = []  # (first column, end column, mode) of each entry

    def on_mount(self) -> None:
        self.refresh_sections()

    def on_show(self) -> None:
        self.refresh_sections()

    def on_resize(self, event: Resize) -> None:
        self.refresh_sections()

    def _entries(self) -> list[tuple[str, str, str]]:
        """(mode, key, title) of every section, keys after the keymap."""
        app: Any = self.app
        bindings = {getattr(b, "id", None): b for b in getattr(app, "BINDINGS", ())}
        out = []
        for section in getattr(app, "sections", ()):
            binding = bindings.get(section.binding_id)
            out.append((section.mode, app.key_for(binding) if binding is not None else "?", section.title))
        return out

    def refresh_sections(self) -> None:
        entries = self._entries()
        current_mode = getattr(self.app, "current_mode", None)
        roomy = sum(len(key) + len(title) + 5 for _, key, title in entries)
        tight = self.size.width and roomy > self.size.width
        # Eight sections at 80 columns: the bold key runs into its title ("8Learners").
        tightest = tight and sum(len(key) + len(title) + 3 for _, key, title in entries) + 1 > self.size.width
        text = Text(no_wrap=True, overflow="ellipsis")
        spans: list[tuple[int, int, str]] = []
        if tight and not tightest:
            text.append(" ")
        for mode, key, title in entries:
            current = mode == current_mode
            start = len(text.plain)
            if tight:
                text.append(key, style="bold reverse" if current else "bold")
                text.append(f"{'' if tightest else ' '}{title}", style="reverse" if current else "")
                spans.append((start, len(text.plain), mode))
                text.append(" ")
            else:
                text.append(f" {key} ", style="bold reverse" if current else "bold")
                text.append(f"{title} ", style="reverse" if current else "")
                spans.append((start, len(text.plain), mode))
                text.append(" ")
        self._spans = spans
        self.update(text)

    def on_click(self, event: Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end:
                self.app.switch_mode(mode)
                return
