"""A connection's health as the dashboard and the settings screen show it (one wording for both).

States, in the order they are decided: the last test recorded (ok or failing, when, and the
client's own sentence); no connection in this console (no client factory, e.g. tests); not
configured yet (`services.store.health.is_configured`); configured but never tested.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

SERVICE_TITLES: dict[str, str] = {"credly": "Credly", "docebo": "Docebo"}


def when_text(stamp: str) -> str:
    """'2025-06-01T09:00:00.000Z' → '2025-06-01 09:00 UTC'."""
    return f"{stamp[:16].replace('T', ' ')} UTC" if stamp else ""


def health_text(row: dict[str, Any] | None, *, available: bool, configured: bool, title: str = "",
                configure_hint: str = "Settings (2)", test_hint: str = "Settings (2), then t",
                brief: bool = False) -> Text:
    """The health of one connection; `title` (e.g. "Credly") is put first when given; the hints
    say where to configure it and how to test it from the screen showing it. `brief` (a narrow
    terminal) leaves out the client's sentence when the test passed."""
    text = Text()
    if title:
        text.append(f"{title}: ", style="bold")
    if row is not None:
        text.append("✔ ok" if row["ok"] else "✘ failing", style="bold green" if row["ok"] else "bold red")
        text.append(f"  tested {when_text(row['checked_at'])}", style="dim")
        if row.get("message") and not (brief and row["ok"]):
            text.append("\n" + row["message"], style="" if row["ok"] else "red")
    elif not available:
        text.append("no connection in this console", style="dim")
    elif not configured:
        text.append(f"not configured yet — {configure_hint}", style="yellow")
    else:
        text.append(f"not tested yet — {test_hint}", style="yellow")
    return text
