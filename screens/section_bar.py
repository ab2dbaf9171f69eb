"""The line of section keys above the footer: "1 Dashboard  2 Settings  3 Templates ...", the
current section highlighted, each one clickable.

The footer proper lists the current screen's own keys; with seven sections plus a screen's
actions one footer line would cut the section keys off on an ordinary terminal, so they get
their own line. Keys are read from the app's bindings after the `[keymap]`, so a remapped key
shows here. The app provides `sections` and `key_for(binding)` (duck-typed: screens do not
import the console package).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static


class SectionBar(Static):
    DEFAULT_CSS = """
    SectionBar {
        height: 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def on_mount(self) -> None:
        self.refresh_sections()

    def on_show(self) -> None:
        self.refresh_sections()

    def refresh_sections(self) -> None:
        app: Any = self.app
        sections = getattr(app, "sections", ())
        bindings = {getattr(b, "id", None): b for b in getattr(app, "BINDINGS", ())}
        text = Text(no_wrap=True, overflow="ellipsis")
        for section in sections:
            binding = bindings.get(section.binding_id)
            key = app.key_for(binding) if binding is not None else "?"
            current = section.mode == getattr(app, "current_mode", None)
            text.append(f" {key} ", style="bold reverse" if current else "bold")
            text.append(f"{section.title} ", style="reverse" if current else "")
            text.append(" ")
        self.update(text)

    def on_click(self, event: Any) -> None:
        app: Any = self.app
        # Map the click column to a section (each entry: " key title  ").
        x = event.x
        position = 0
        for section in getattr(app, "sections", ()):
            bindings = {getattr(b, "id", None): b for b in getattr(app, "BINDINGS", ())}
            binding = bindings.get(section.binding_id)
            key = app.key_for(binding) if binding is not None else "?"
            width = len(key) + 2 + len(section.title) + 2
            if position <= x < position + width:
                app.switch_mode(section.mode)
                return
            position += width
