"""The command palette provider: every section and every action of every section.

Commands are built from the bindings themselves (each `Binding` with an `id` and a description),
so a new binding on a screen is in the palette without anything else to maintain, and the key
shown next to it is the one the `[keymap]` gave it. Choosing an action of another section first
switches to that section, then runs the action on its screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:  # pragma: no cover
    from console.app import CredlyConsoleApp


@dataclass(frozen=True)
class PaletteCommand:
    text: str
    help: str
    mode: str | None  # None: an app action
    action: str


def palette_commands(app: CredlyConsoleApp) -> list[PaletteCommand]:
    """Every command, in section order: "Go to X" first, then each section's actions."""
    out: list[PaletteCommand] = []
    for section in app.sections:
        out.append(PaletteCommand(f"Go to {section.title}", f"Switch to the {section.title.lower()} section "
                                  f"(key {_key(app, _find(app.BINDINGS, section.binding_id))})",
                                  None, f"section('{section.mode}')"))
    for section in app.sections:
        for binding in section.screen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.id or not binding.description:
                continue
            help_text = binding.tooltip or binding.description
            out.append(PaletteCommand(f"{section.title}: {binding.description}",
                                      f"{help_text} (key {_key(app, binding)})", section.mode, binding.action))
    return out


def _find(bindings: Any, binding_id: str) -> Binding | None:
    for binding in bindings:
        if isinstance(binding, Binding) and binding.id == binding_id:
            return binding
    return None


def _key(app: CredlyConsoleApp, binding: Binding | None) -> str:
    return app.key_for(binding) if binding is not None else "-"


class ConsoleCommands(Provider):
    """Sections and section actions for the command palette."""

    def _run(self, command: PaletteCommand):
        app: CredlyConsoleApp = self.app  # type: ignore[assignment]

        async def run() -> None:
            if command.mode is None:
                await app.run_action(command.action)
                return
            if app.current_mode != command.mode:
                await app.switch_mode(command.mode)
            await app.run_action(command.action, app.screen)

        return run

    async def discover(self) -> Hits:
        for command in palette_commands(self.app):  # type: ignore[arg-type]
            yield DiscoveryHit(command.text, self._run(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in palette_commands(self.app):  # type: ignore[arg-type]
            score = matcher.match(command.text)
            if score > 0:
                yield Hit(score, matcher.highlight(command.text), self._run(command), text=command.text,
                          help=command.help)
