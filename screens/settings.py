"""Settings: the S table edited in place (S1–S3) and the connections (config file + secrets).

Design notes: docs/design/console.md
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widgets import DataTable, Input, Label, Static

from screens.base import ConsoleScreen, subscribe_health
from screens.confirm import ConfirmScreen
from screens.widgets.health import SERVICE_TITLES, health_text
from screens.widgets.paged_table import cursor_row_key as _row_key
from services.core.config import AppConfig, ConfigError, load_config, save_config
from services.core.secrets import SECRET_DESCRIPTIONS, SECRET_ENV, NoKeyringError, keyring_backend_problem
from services.store.db import Store
from services.store.health import API_SERVICES, check_connections, is_configured, read_health
from services.store.settings import (
    DESCRIPTIONS,
    EXPECTED,
    OPTIONAL_KEYS,
    SettingError,
    list_settings,
    set_setting,
    validate_setting,
)


@dataclass(frozen=True)
class ConnectionField:
    """One editable line of the connections table: a config value or a secret."""

    key: str  # "credly.base_url" or "secret:credly_token"
    label: str
    help: str

    @property
    def is_secret(self) -> bool:
        return self.key.startswith("secret:")

    @property
    def secret_name(self) -> str:
        return self.key.removeprefix("secret:")

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


CONNECTION_FIELDS: tuple[ConnectionField, ...] = (
    ConnectionField("credly.base_url", "Credly API base URL", "e.g. https://api.credly.com/v1"),
    ConnectionField("credly.organization_id", "Credly organization id", "the organization's UUID in Credly"),
    ConnectionField("secret:credly_token", "Credly token", SECRET_DESCRIPTIONS["credly_token"]),
    ConnectionField("credly.rate_limit_per_minute", "Credly calls per minute",
                    "client-side limit; blank = none (Credly answers 429 when it wants us slower)"),
    ConnectionField("docebo.base_url", "Docebo platform URL", "e.g. https://acme.docebosaas.com"),
    ConnectionField("docebo.client_id", "Docebo client id", "the OAuth2 client (API credentials) id"),
    ConnectionField("secret:docebo_client_secret", "Docebo client secret", SECRET_DESCRIPTIONS["docebo_client_secret"]),
    ConnectionField("docebo.grant", "Docebo grant", "client_credentials or password"),
    ConnectionField("docebo.username", "Docebo username", "only for the password grant"),
    ConnectionField("secret:docebo_password", "Docebo password", SECRET_DESCRIPTIONS["docebo_password"]),
    ConnectionField("docebo.rate_limit_per_hour", "Docebo calls per hour", "Docebo documents 1,000 per hour per IP"),
    ConnectionField("docebo.burst", "Docebo burst", "calls that may go at once before the hourly pace applies"),
    ConnectionField("server.host", "Receiver host", "address the webhook receiver listens on"),
    ConnectionField("server.port", "Receiver port", "port of the webhook receiver"),
    ConnectionField("server.docebo_basic_auth_user", "Docebo webhook Basic-auth user", "blank = no Basic auth"),
    ConnectionField("secret:webhook_secret", "Webhook secret", SECRET_DESCRIPTIONS["webhook_secret"]),
    ConnectionField("smtp.host", "SMTP host", "mail server for notifications; blank = no mail"),
    ConnectionField("smtp.port", "SMTP port", "usually 587 (STARTTLS) or 465 (TLS)"),
    ConnectionField("smtp.username", "SMTP username", "blank = no login"),
    ConnectionField("secret:smtp_password", "SMTP password", SECRET_DESCRIPTIONS["smtp_password"]),
    ConnectionField("smtp.sender", "SMTP sender", "From address of notification mail"),
    ConnectionField("smtp.starttls", "SMTP STARTTLS", "true or false"),
    ConnectionField("smtp.tls", "SMTP implicit TLS", "true or false"),
)
FIELDS_BY_KEY = {f.key: f for f in CONNECTION_FIELDS}


# -- pure helpers (unit-tested) -----------------------------------------------------------------


def config_value_text(cfg: AppConfig, field: ConnectionField) -> str:
    value = getattr(getattr(cfg, field.section), field.name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_with(cfg: AppConfig, field: ConnectionField, text: str) -> AppConfig:
    """A copy of `cfg` with `field` set from the typed `text` (converted to the field's type as
    TOML would hold it; anything that does not convert is kept as text so that `load_config`
    refuses it with its own message)."""
    new = copy.deepcopy(cfg)
    section = getattr(new, field.section)
    current = {f.name: f for f in dataclasses.fields(section)}[field.name]
    text = text.strip()
    value: Any = text
    kind = str(current.type)
    if "bool" in kind:
        value = {"true": True, "false": False}.get(text.lower(), text)
    elif "int" in kind:
        if text == "" and "None" in kind:
            value = None
        else:
            try:
                value = int(text)
            except ValueError:
                value = text
    setattr(section, field.name, value)
    return new


def check_config(cfg: AppConfig) -> AppConfig:
    """Validate `cfg` with `load_config` (the only validator of the file) by writing it to a
    temporary file and reading it back; returns the normalised configuration or raises
    `ConfigError`. The temporary file is deleted."""
    import tomli_w

    fd, tmp = tempfile.mkstemp(prefix="credly-console-check-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomli_w.dumps(cfg.to_dict()))
        return load_config(tmp)
    finally:
        os.unlink(tmp)


def config_error_text(exc: ConfigError) -> str:
    """A ConfigError without the temporary file's name."""
    text = f"{exc.key}"
    if exc.detail:
        text += f": {exc.detail}"
    return f"{text}; expected {exc.expected}"


class SettingValueValidator(Validator):
    """S1/S2 as you type: the services' own `validate_setting`."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def validate(self, value: str) -> ValidationResult:
        try:
            validate_setting(self.key, value)
        except SettingError as exc:
            return self.failure(str(exc))
        return self.success()


# -- background jobs ----------------------------------------------------------------------------


def _save_setting(key: str, value: str):
    def job(store: Store) -> tuple[bool, str]:
        try:
            return True, set_setting(store, key, value)
        except SettingError as exc:
            return False, str(exc)

    return job


class SettingsScreen(ConsoleScreen):
    TITLE_TEXT = "Settings"
    BINDINGS = [
        Binding("e", "edit", "Edit", id="settings.edit", tooltip="Edit the highlighted value"),
        Binding("x", "clear_value", "Clear", id="settings.clear",
                tooltip="Clear an optional setting, or delete a stored secret"),
        Binding("t", "test_connections", "Test connections", id="settings.test",
                tooltip="Test the Credly and Docebo connections and record the result"),
        Binding("r", "reload", "Reload", id="settings.reload", tooltip="Read the settings again"),
        Binding("escape", "cancel_edit", "Cancel edit", id="settings.cancel",
                tooltip="Close the editor without saving"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._editing: str | None = None  # "setting:KEY" or a connection key
        self._settings: dict[str, dict] = {}
        self._secret_sources: dict[str, str | None] = {}
        self._keyring_problem: str | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="settings-body"):
            yield Label("Integration settings (S)", classes="section-title")
            yield DataTable(id="settings-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="settings-help", classes="help-line")
            with Vertical(id="editor", classes="editor"):
                yield Label("", id="editor-label")
                yield Input(id="editor-input")
                yield Static("", id="editor-error", classes="inline-error")
                yield Static("Enter saves · Escape cancels", classes="help-line")
            yield Label("Connections", classes="section-title")
            yield DataTable(id="connections-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="connections-help", classes="help-line")
            with Horizontal(id="health"):
                yield Static("", id="health-credly", classes="health-box")
                yield Static("", id="health-docebo", classes="health-box")

    def on_mount(self) -> None:
        settings = self.query_one("#settings-table", DataTable)
        # Status before the value: a problem stays visible on a narrow terminal, the value (any
        # length) comes last; where a connection value is kept is also in its help line.
        settings.add_column("Key", width=32, key="key")
        settings.add_column("Status", width=19, key="status")
        settings.add_column("Value", width=44, key="value")
        connections = self.query_one("#connections-table", DataTable)
        connections.add_column("Connection", width=30, key="label")
        connections.add_column("Value", width=40, key="value")
        connections.add_column("Where", width=44, key="where")
        self.query_one("#editor").display = False
        settings.focus()
        subscribe_health(self, self._health_changed)
        self.action_reload()

    # -- loading ------------------------------------------------------------------------------
    def action_reload(self) -> None:
        secrets = self.ctx.secrets

        def job(store: Store) -> tuple[list[dict], dict, dict, str | None]:
            sources = {}
            for field in CONNECTION_FIELDS:
                if field.is_secret:
                    source = getattr(secrets, "source", None)
                    if source is not None:
                        sources[field.secret_name] = source(field.secret_name)
                    else:
                        sources[field.secret_name] = "set" if secrets.get(field.secret_name) else None
            problem = keyring_backend_problem() if type(secrets).__name__ == "KeyringSecrets" else None
            return list_settings(store), read_health(store), sources, problem

        self.background(job, self._show, group="settings-load", description="Loading settings")

    def _show(self, result: tuple[list[dict], dict, dict, str | None]) -> None:
        rows, health, sources, problem = result
        self._settings = {r["key"]: r for r in rows}
        self._secret_sources = sources
        self._keyring_problem = problem
        table = self.query_one("#settings-table", DataTable)
        current = _row_key(table)
        table.clear()
        for row in rows:
            if row["problem"]:
                status = Text("✘ " + ("required, not set" if row["value"] == "" else "invalid"), style="bold red")
            elif row["required"]:
                status = Text("✔ set", style="green")
            else:
                status = Text("optional" + ("" if row["value"] else ", blank"), style="dim")
            table.add_row(Text(row["key"]), status, Text(row["value"] or "—"), key=row["key"])
        _restore_cursor(table, current)
        self._show_connections()
        self._show_health(health)
        self._update_help()

    def _where(self, field: ConnectionField) -> str:
        """Where the value of a connection field is kept (or would be)."""
        if not field.is_secret:
            return "config file" if self.ctx.config_path else "this session only"
        source = self._secret_sources.get(field.secret_name)
        env = SECRET_ENV[field.secret_name]
        if source == "env":
            return f"environment {env}"
        if source:
            return "OS keyring" if source == "keyring" else "this session only"
        if self._keyring_problem:
            return f"no keyring: set {env}"
        return f"keyring or {env}"

    def _show_connections(self) -> None:
        table = self.query_one("#connections-table", DataTable)
        current = _row_key(table)
        table.clear()
        cfg = self.ctx.config
        for field in CONNECTION_FIELDS:
            if field.is_secret:
                source = self._secret_sources.get(field.secret_name)
                value = Text("•••••••• (set)", style="green") if source else Text("not set", style="dim")
                table.add_row(Text(field.label), value, Text(self._where(field)), key=field.key)
            else:
                text = config_value_text(cfg, field)
                table.add_row(Text(field.label), Text(text or "—"), Text(self._where(field), style="dim"),
                              key=field.key)
        _restore_cursor(table, current)

    def _show_health(self, health: dict) -> None:
        for service in API_SERVICES:
            self.query_one(f"#health-{service}", Static).update(health_text(
                health.get(service), available=self.ctx.has_client(service),
                configured=is_configured(self.ctx.config, service), title=SERVICE_TITLES[service],
                configure_hint="its URL and id are in the connections above", test_hint="press t"))

    def _health_changed(self, _results: dict[str, dict]) -> None:
        """A connection test has just been recorded (the app's test at start)."""
        self.action_reload()

    # -- help line ----------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_help()

    def on_descendant_focus(self) -> None:
        self._update_help()

    def _focused_row(self) -> tuple[str, str] | None:
        """("setting", KEY) or ("connection", KEY) of the row the admin is on."""
        focused = self.focused
        if isinstance(focused, Input):
            return None
        tables = [t for t in (self.query_one("#settings-table", DataTable),
                              self.query_one("#connections-table", DataTable)) if t is focused]
        table = tables[0] if tables else self.query_one("#settings-table", DataTable)
        key = _row_key(table)
        if key is None:
            return None
        return ("setting" if table.id == "settings-table" else "connection", key)

    def _update_help(self) -> None:
        row = self._focused_row()
        settings_help = self.query_one("#settings-help", Static)
        connections_help = self.query_one("#connections-help", Static)
        if row and row[0] == "setting":
            info = self._settings.get(row[1], {})
            text = f"{DESCRIPTIONS.get(row[1], '')} — expected {EXPECTED.get(row[1], '')}"
            if info.get("problem"):
                text += f"\nProblem: {info['problem']}"
            settings_help.update(Text(text))
        if row and row[0] == "connection":
            field = FIELDS_BY_KEY[row[1]]
            connections_help.update(Text(f"{field.help} — kept in: {self._where(field)}"))

    # -- editing ------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_edit(self) -> None:
        row = self._focused_row()
        if row is None:
            return
        kind, key = row
        editor = self.query_one("#editor")
        label = self.query_one("#editor-label", Label)
        field = self.query_one("#editor-input", Input)
        self.query_one("#editor-error", Static).update("")
        if kind == "setting":
            self._editing = f"setting:{key}"
            label.update(f"{key} — expected {EXPECTED[key]}")
            field.password = False
            field.validators = [SettingValueValidator(key)]
            field.valid_empty = False
            field.value = self._settings.get(key, {}).get("value", "")
        else:
            spec = FIELDS_BY_KEY[key]
            self._editing = key
            field.validators = []
            field.valid_empty = True
            if spec.is_secret:
                label.update(f"{spec.label} (typed characters are hidden; stored in the OS keyring)")
                field.password = True
                field.value = ""
            else:
                label.update(f"{spec.label} — {spec.help}")
                field.password = False
                field.value = config_value_text(self.ctx.config, spec)
        # The editor opens under the table of the row being edited.
        self.query_one("#settings-body").move_child(editor, after=self.query_one(
            "#settings-help" if kind == "setting" else "#connections-help"))
        editor.display = True
        editor.scroll_visible(animate=False)
        self.refresh_bindings()
        field.focus()
        field.cursor_position = len(field.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_edit":
            return self._editing is not None  # in the footer only while the editor is open
        return True

    def action_cancel_edit(self) -> None:
        if self._editing is None:
            return
        self._close_editor()

    def _close_editor(self) -> None:
        editing = self._editing
        self._editing = None
        self.query_one("#editor").display = False
        self.refresh_bindings()
        self.query_one("#editor-input", Input).value = ""
        if editing is not None:  # back to the edited row's table; without an editor focus stays (issue 16)
            kind = "settings" if editing.startswith("setting:") else "connections"
            self.query_one(f"#{kind}-table", DataTable).focus()

    def _inline_error(self, message: str) -> None:
        self.query_one("#editor-error", Static).update(Text("✘ " + message, style="bold red"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "editor-input" or not (self._editing or "").startswith("setting:"):
            return
        result = event.validation_result
        if result is not None and not result.is_valid:
            self._inline_error(result.failure_descriptions[0])
        else:
            self.query_one("#editor-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "editor-input" or self._editing is None:
            return
        event.stop()
        editing = self._editing
        value = event.value
        if editing.startswith("setting:"):
            key = editing.removeprefix("setting:")
            result = event.validation_result
            if result is not None and not result.is_valid:
                self._inline_error(result.failure_descriptions[0])  # S2: nothing is saved
                return
            self.background(_save_setting(key, value), partial_saved(self, key),
                            group="settings-save", description=f"Saving {key}")
            return
        spec = FIELDS_BY_KEY[editing]
        if spec.is_secret:
            self._save_secret(spec, value)
        else:
            self._save_config(spec, value)

    def _setting_saved(self, key: str, result: tuple[bool, str]) -> None:
        ok, text = result
        if not ok:
            self._inline_error(text)
            return
        self._close_editor()
        self.notify(f"{key} saved.", markup=False)
        self.action_reload()

    def _save_secret(self, spec: ConnectionField, value: str) -> None:
        if not value:
            self._inline_error("type the secret, or press Escape and use x to delete a stored one")
            return
        secrets = self.ctx.secrets
        name = spec.secret_name

        def job(store: Store) -> str:
            try:
                secrets.set(name, value)
            except NoKeyringError as exc:
                return str(exc)
            return ""

        def done(error: str) -> None:
            if error:
                self._inline_error(error)
                return
            self._close_editor()
            self.notify(f"{spec.label} stored.", markup=False)
            self.action_reload()

        self.background(job, done, group="settings-save", description=f"Storing the {spec.label}")

    def _save_config(self, spec: ConnectionField, text: str) -> None:
        ctx = self.ctx
        path = ctx.config_path
        candidate = config_with(ctx.config, spec, text)

        def job(store: Store) -> tuple[AppConfig | None, str]:
            try:
                checked = check_config(candidate)
            except ConfigError as exc:
                return None, config_error_text(exc)
            if path is not None:
                # Keep what is in the file (another process may have changed other keys): read
                # it, change this one value, check again, write atomically.
                on_disk = config_with(load_config(path), spec, text)
                try:
                    checked_disk = check_config(on_disk)
                except ConfigError as exc:
                    return None, config_error_text(exc)
                save_config(checked_disk, Path(path))
                checked.keymap = checked_disk.keymap
            return checked, ""

        def done(result: tuple[AppConfig | None, str]) -> None:
            new, error = result
            if new is None:
                self._inline_error(error)
                return
            new.keymap = ctx.config.keymap
            ctx.config = new  # one reference swap: the next client built uses it
            self._close_editor()
            self.notify(f"{spec.label} saved.", markup=False)
            self._show_connections()

        self.background(job, done, group="settings-save", description=f"Saving {spec.label}")

    def action_clear_value(self) -> None:
        """Clear the highlighted value, after asking (issue 16: never delete a token unasked)."""
        row = self._focused_row()
        if row is None:
            return
        kind, key = row
        if kind == "setting":
            if key not in OPTIONAL_KEYS:
                self.notify(f"{key} is required and cannot be cleared (S3).", severity="warning", markup=False)
                return
            question, yes = f"Clear the setting {key}?", "Clear"
        else:
            spec = FIELDS_BY_KEY[key]
            question, yes = ((f"Delete the {spec.label} from the keyring?", "Delete") if spec.is_secret
                             else (f"Clear {spec.label} in the configuration file?", "Clear"))
        self.app.push_screen(ConfirmScreen(yes, question, yes=yes, danger=True),
                             lambda confirmed: confirmed and self._clear_value(kind, key))

    def _clear_value(self, kind: str, key: str) -> None:
        if kind == "setting":
            self.background(_save_setting(key, ""), partial_saved(self, key), group="settings-save",
                            description=f"Clearing {key}")
            return
        spec = FIELDS_BY_KEY[key]
        if spec.is_secret:
            secrets = self.ctx.secrets

            def job(store: Store) -> str:
                try:
                    secrets.delete(spec.secret_name)
                except NoKeyringError as exc:
                    return str(exc)
                return ""

            def done(error: str) -> None:
                if error:
                    self.notify(error, severity="error", markup=False)
                else:
                    self.notify(f"{spec.label} deleted.", markup=False)
                self.action_reload()

            self.background(job, done, group="settings-save", description=f"Deleting the {spec.label}")
            return
        self._save_config(spec, "")

    # -- connection test ----------------------------------------------------------------------
    def action_test_connections(self) -> None:
        ctx = self.ctx
        services = [s for s in API_SERVICES if ctx.has_client(s)]
        if not services:
            self.notify("No Credly or Docebo connection is available in this console.", severity="warning",
                        markup=False)
            return
        for service in services:
            self.query_one(f"#health-{service}", Static).update(Text(f"{SERVICE_TITLES[service]}: testing…"))

        async def job(store: Store) -> dict:
            from services.clients.budget import caller_class

            with caller_class("console"):  # the console's interactive calls go first (issue 15)
                await check_connections(store, {s: partial(ctx.make_client, s) for s in services})
            return read_health(store)

        self.background_async(job, self._show_health, group="settings-test", description="Testing connections")


def partial_saved(screen: SettingsScreen, key: str):
    return lambda result: screen._setting_saved(key, result)


def _restore_cursor(table: DataTable, key: str | None) -> None:
    if key is None:
        return
    try:
        table.move_cursor(row=table.get_row_index(key), animate=False)
    except Exception:
        pass
