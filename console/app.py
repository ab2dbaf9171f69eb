"""`CredlyConsoleApp`: the Textual console of credly-console (SPEC §4, DESIGN.md "Console").

Design notes: docs/design/console.md
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import HelpPanel
from textual.worker import Worker, WorkerState

import assets
from console.commands import ConsoleCommands
from screens.base import report_worker_failure
from screens.dashboard import DashboardScreen
from screens.inbox import InboxScreen
from screens.learners import LearnersScreen
from screens.mappings import MappingsScreen
from screens.notifications import NotificationsScreen
from screens.settings import SettingsScreen
from screens.syncs import SyncsScreen
from screens.templates import TemplatesScreen
from services.appcontext import AppContext
from services.clients.http import set_call_outcome_listener
from services.store.health import API_SERVICES, CallOutcomeRecorder, check_connections, is_configured, stale_services

ASSETS = Path(assets.__file__).parent
CONNECTION_CHECK = "connection-check"


@dataclass(frozen=True)
class Section:
    """One top-level section: its mode name, title, default key and screen class."""

    mode: str
    title: str
    key: str
    screen: type[Screen[Any]]

    @property
    def binding_id(self) -> str:
        return f"app.section.{self.mode}"


SECTIONS: tuple[Section, ...] = (
    Section("dashboard", "Dashboard", "1", DashboardScreen),
    Section("settings", "Settings", "2", SettingsScreen),
    Section("templates", "Templates", "3", TemplatesScreen),
    Section("mappings", "Mappings", "4", MappingsScreen),
    Section("syncs", "Syncs", "5", SyncsScreen),
    Section("notifications", "Problems", "6", NotificationsScreen),
    Section("inbox", "Inbox", "7", InboxScreen),
    Section("learners", "Learners", "8", LearnersScreen),
)

STYLESHEETS: tuple[str, ...] = (
    "console.tcss", "dialogs.tcss", "dashboard.tcss", "settings.tcss", "templates.tcss",
    "mappings.tcss", "syncs.tcss", "notifications.tcss", "inbox.tcss", "learners.tcss",
)


def _section_bindings() -> list[Binding]:
    return [
        Binding(s.key, f"section('{s.mode}')", s.title, id=s.binding_id, tooltip=f"Go to {s.title}", show=False)
        for s in SECTIONS
    ]


class CredlyConsoleApp(App[None]):
    """The console. `CredlyConsoleApp(AppContext.from_environment()).run()` is what
    `credly-console` with no arguments does."""

    TITLE = "credly-console"
    CSS_PATH = [ASSETS / name for name in STYLESHEETS]
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    # Screens lay some panels out differently below 100 columns and dialogs tighten below 30
    # rows (assets/*.tcss: `Screen.-narrow`, `Screen.-short`).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        *_section_bindings(),
        Binding("question_mark", "toggle_keys", "Keys", id="app.keys", tooltip="Show or hide the keys of this screen"),
        Binding("ctrl+t", "change_theme", "Theme", show=False, id="app.theme"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, context: AppContext, *, initial_section: str = "dashboard", cursor_blink: bool = True) -> None:
        super().__init__()
        # Published with {service: health row} whenever the app records a connection test;
        # the screens that show health subscribe (screens.base.subscribe_health).
        self.health_changed: Signal[dict[str, dict]] = Signal(self, "health-changed")
        self.context = context
        self.cursor_blink = cursor_blink
        self.initial_section = initial_section
        self._saved_theme = context.config.ui.theme
        if context.label:
            self.title = f"credly-console · {context.label}"
        for section in SECTIONS:
            self.add_mode(section.mode, partial(section.screen, context))
        theme = context.config.ui.theme
        self._unknown_theme = theme if theme and theme not in self.available_themes else ""
        if theme and not self._unknown_theme:
            self.theme = theme
        self._unknown_keymap_ids = sorted(set(context.config.keymap) - set(all_binding_ids()))
        self.set_keymap({k: v for k, v in context.config.keymap.items() if k not in self._unknown_keymap_ids})

    # -- start --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Health from real calls (issue 16): every API call of this process updates the dashboard.
        set_call_outcome_listener(CallOutcomeRecorder(self.context.database_path))
        self.switch_mode(self.initial_section)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._unknown_theme:
            self.notify(f"[ui] theme {self._unknown_theme!r} is not a known theme; using {self.theme}.",
                        severity="warning", markup=False)
        if self._unknown_keymap_ids:
            self.notify("[keymap] has unknown binding ids (ignored): " + ", ".join(self._unknown_keymap_ids),
                        severity="warning", markup=False, timeout=10)
        self._check_connections_at_start()

    def on_unmount(self) -> None:
        set_call_outcome_listener(None)

    # -- connection health --------------------------------------------------------------------
    def _check_connections_at_start(self) -> None:
        ctx = self.context
        services = [s for s in API_SERVICES if ctx.has_client(s) and is_configured(ctx.config, s)]
        if not services:
            return

        async def work() -> dict[str, dict]:
            with ctx.open_store() as store:
                stale = stale_services(store, services)
                if not stale:
                    return {}
                from services.clients.budget import caller_class

                with caller_class("console"):  # the console's own calls go first (issue 15)
                    return await check_connections(store, {s: partial(ctx.make_client, s) for s in stale})

        self.run_worker(work, thread=True, group=CONNECTION_CHECK, exit_on_error=False,
                        description="Testing the connections")

    def _connections_checked(self, results: dict[str, dict]) -> None:
        for service, row in results.items():
            if not row["ok"]:
                self.notify(f"{service.capitalize()} connection test failed: {row['message']} "
                            "(Settings, 2; t tests again)", severity="warning", markup=False, timeout=15)
        if results:
            self.health_changed.publish(results)

    # -- sections -----------------------------------------------------------------------------
    def action_section(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    @property
    def sections(self) -> tuple[Section, ...]:
        return SECTIONS

    # -- keys ---------------------------------------------------------------------------------
    def action_toggle_keys(self) -> None:
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def key_for(self, binding: Binding) -> str:
        """The key shown for `binding`, after the keymap."""
        keys = self._keymap.get(binding.id or "") if binding.id else None
        if keys:
            binding = binding.with_key(keys.split(",")[0].strip(), key_display=None)
        return self.get_key_display(binding)

    # -- theme --------------------------------------------------------------------------------
    def _theme_changed(self, theme: Any) -> None:
        name = getattr(theme, "name", str(theme))
        if name == self._saved_theme:
            return
        self._saved_theme = name
        self.context.config.ui.theme = name
        path = self.context.config_path
        if path is None:
            return
        self.run_worker(partial(_save_theme, path, name), thread=True, group="save-theme", exclusive=True,
                        exit_on_error=False, description="Saving the theme")

    # -- errors -------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            report_worker_failure(self, event.worker)
        elif event.state == WorkerState.SUCCESS and event.worker.group == CONNECTION_CHECK:
            self._connections_checked(event.worker.result or {})


def _save_theme(path: Path, theme: str) -> None:
    """Write `[ui] theme` into the config file, keeping everything else in it (re-read first:
    the CLI may have changed the file since the console started)."""
    from services.core.config import load_config, save_config

    cfg = load_config(path)
    cfg.ui.theme = theme
    save_config(cfg, path)


def all_binding_ids() -> list[str]:
    """Every binding id a `[keymap]` may name: the app's, each section's, the modals' and the
    tables'."""
    from screens import MODAL_CLASSES, WIDGET_CLASSES

    ids: list[str] = []
    for cls in [CredlyConsoleApp, *(s.screen for s in SECTIONS), *MODAL_CLASSES, *WIDGET_CLASSES]:
        for binding in cls.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                ids.append(binding.id)
    return ids


def run_console(context: AppContext | None = None) -> None:
    """Open the console (on the environment's context unless one is given)."""
    CredlyConsoleApp(context or AppContext.from_environment()).run()
