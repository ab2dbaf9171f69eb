"""The configuration file: TOML in the user's config directory (DESIGN.md "Config").

Design notes: docs/design/core.md
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from services.core.errors import EXIT_USAGE, CredlyConsoleError
from services.core.files import write_atomically

APP_NAME = "credly-console"
CONFIG_ENV = "CREDLY_CONSOLE_CONFIG"
DB_ENV = "CREDLY_CONSOLE_DB"

DEFAULT_CREDLY_BASE_URL = "https://api.credly.com/v1"


class ConfigError(CredlyConsoleError):
    """The configuration file cannot be used. `str()` names the file, the key and the form
    that was expected; `path`, `key` and `expected` carry the same facts for callers."""

    exit_code = EXIT_USAGE

    def __init__(self, path: Path | str | None, key: str, expected: str, detail: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        self.expected = expected
        self.detail = detail
        where = f"config file {self.path}" if self.path else "configuration"
        text = f"{where}: {key}"
        if detail:
            text += f": {detail}"
        text += f"; expected {expected}"
        super().__init__(text)


# -- sections ---------------------------------------------------------------------------------


@dataclass
class CredlyConfig:
    """`[credly]` — the Credly organization the product issues badges for."""

    base_url: str = DEFAULT_CREDLY_BASE_URL
    organization_id: str = ""
    # Client-side limit on calls per minute; None = no limit beyond Credly's own 429s.
    rate_limit_per_minute: int | None = None


@dataclass
class DoceboConfig:
    """`[docebo]` — the Docebo Learn platform and its OAuth2 client."""

    base_url: str = ""
    client_id: str = ""
    grant: str = "client_credentials"  # or "password" (then `username` + DOCEBO_PASSWORD)
    username: str = ""
    # Docebo documents 1,000 API calls per hour per IP; `burst` is how many may go at once.
    rate_limit_per_hour: int = 1000
    burst: int = 20
    # Issue 15: the share of the burst a batch may use; the rest is kept for webhook events and
    # the console's interactive calls, which also go ahead of every waiting batch call.
    batch_share_percent: int = 80
    # The window Docebo counts `rate_limit_per_hour` calls in (its documented hour); shorter only
    # to rehearse the budget against a sandbox in seconds.
    rate_limit_window_seconds: int = 3600


@dataclass
class ServerConfig:
    """`[server]` — the webhook receiver of `credly-console serve` (W1)."""

    host: str = "127.0.0.1"
    port: int = 8787
    # When set, Docebo deliveries must carry HTTP Basic auth with this user; the password is the
    # webhook secret (keyring / CREDLY_CONSOLE_WEBHOOK_SECRET).
    docebo_basic_auth_user: str = ""
    # Issue 15: `serve` deletes the log lines of runs that ended longer ago (the runs' summaries
    # stay); 0 keeps them forever.
    run_log_retention_days: int = 90


@dataclass
class SmtpConfig:
    """`[smtp]` — the mail server for notifications (N1). Password: keyring / SMTP_PASSWORD."""

    host: str = ""
    port: int = 587
    username: str = ""
    starttls: bool = True
    tls: bool = False  # implicit TLS (usually port 465); exclusive with starttls
    sender: str = ""


@dataclass
class UiConfig:
    """`[ui]` — console appearance."""

    theme: str = "textual-dark"


@dataclass
class AppConfig:
    """The whole configuration file. `keymap` is the `[keymap]` table (binding id → keys, e.g.
    `"mappings.add" = "a"`). A section this version does not know is refused (a misspelt
    `[sever]` would otherwise be silently ignored)."""

    credly: CredlyConfig = field(default_factory=CredlyConfig)
    docebo: DoceboConfig = field(default_factory=DoceboConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    keymap: dict[str, str] = field(default_factory=dict)
    ui: UiConfig = field(default_factory=UiConfig)

    def to_dict(self) -> dict[str, Any]:
        """The TOML document this config saves as (None values left out: TOML has no null)."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            out[name] = {k: v for k, v in dataclasses.asdict(section).items() if v is not None}
        out["keymap"] = dict(self.keymap)
        return out


_SECTIONS: dict[str, type] = {
    "credly": CredlyConfig,
    "docebo": DoceboConfig,
    "server": ServerConfig,
    "smtp": SmtpConfig,
    "ui": UiConfig,
}

# Keys people are tempted to put in the file, and where the secret belongs instead.
_SECRET_KEYS = {
    "token": "CREDLY_TOKEN",
    "api_token": "CREDLY_TOKEN",
    "credly_token": "CREDLY_TOKEN",
    "client_secret": "DOCEBO_CLIENT_SECRET",
    "secret": "CREDLY_CONSOLE_WEBHOOK_SECRET",
    "webhook_secret": "CREDLY_CONSOLE_WEBHOOK_SECRET",
    "password": "SMTP_PASSWORD",  # refined per section below
}


# -- paths ------------------------------------------------------------------------------------


def config_path() -> Path:
    """The configuration file: `$CREDLY_CONSOLE_CONFIG`, else the user config dir."""
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def database_path() -> Path:
    """The SQLite database: `$CREDLY_CONSOLE_DB`, else the user data dir."""
    env = os.environ.get(DB_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "credly-console.db"


# -- checking values --------------------------------------------------------------------------


def _check_str(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, key, "a quoted string", f"got {_show(value)}")
    if any(ord(ch) < 32 for ch in value):
        raise ConfigError(path, key, "a single-line string without control characters")
    return value.strip()


def _check_url(path: Path, key: str, value: Any, *, allow_blank: bool) -> str:
    text = _check_str(path, key, value).rstrip("/")
    if not text and allow_blank:
        return ""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise ConfigError(path, key, 'an http(s) URL such as "https://acme.docebosaas.com"',
                          f"got {_show(value)}")
    return text


def _check_int(path: Path, key: str, value: Any, *, low: int, high: int, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(path, key, f"a whole number from {low} to {high} (unquoted)", f"got {_show(value)}")
    return value


def _check_bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, key, "true or false (unquoted, lower-case)", f"got {_show(value)}")
    return value


def _check_choice(path: Path, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(path, key, " or ".join(f'"{c}"' for c in choices), f"got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section(path: Path, name: str, raw: Any) -> Any:
    cls = _SECTIONS[name]
    if not isinstance(raw, dict):
        raise ConfigError(path, f"[{name}]", "a table (a [section] header followed by key = value lines)")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key in known:
            continue
        if key in _SECRET_KEYS:
            env = _SECRET_KEYS[key]
            if key == "password" and name == "docebo":
                env = "DOCEBO_PASSWORD"
            raise ConfigError(
                path, f"[{name}] {key}",
                f"no secrets in the config file: store it with `credly-console secrets set` "
                f"(OS keyring) or set the environment variable {env}",
            )
        raise ConfigError(path, f"[{name}] {key}", "one of the keys " + ", ".join(sorted(known)),
                          "unknown key")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        k = f"[{name}] {key}"
        if name == "credly":
            if key == "base_url":
                value = _check_url(path, k, value, allow_blank=False)
            elif key == "organization_id":
                value = _check_str(path, k, value)
            elif key == "rate_limit_per_minute":
                value = _check_int(path, k, value, low=1, high=100_000, optional=True)
        elif name == "docebo":
            if key == "base_url":
                value = _check_url(path, k, value, allow_blank=True)
            elif key in ("client_id", "username"):
                value = _check_str(path, k, value)
            elif key == "grant":
                value = _check_choice(path, k, value, ("client_credentials", "password"))
            elif key == "rate_limit_per_hour":  # 0 = no client-side limit
                value = _check_int(path, k, value, low=0, high=1_000_000)
            elif key == "burst":
                value = _check_int(path, k, value, low=1, high=1000)
            elif key == "batch_share_percent":
                value = _check_int(path, k, value, low=10, high=100)
            elif key == "rate_limit_window_seconds":
                value = _check_int(path, k, value, low=1, high=86_400)
        elif name == "server":
            if key == "host":
                value = _check_str(path, k, value)
                if not value:
                    raise ConfigError(path, k, 'a host name or IP address such as "127.0.0.1"')
            elif key == "port":
                value = _check_int(path, k, value, low=0, high=65535)
            elif key == "docebo_basic_auth_user":
                value = _check_str(path, k, value)
            elif key == "run_log_retention_days":
                value = _check_int(path, k, value, low=0, high=36_500)
        elif name == "smtp":
            if key in ("host", "username", "sender"):
                value = _check_str(path, k, value)
            elif key == "port":
                value = _check_int(path, k, value, low=1, high=65535)
            elif key in ("starttls", "tls"):
                value = _check_bool(path, k, value)
        elif name == "ui":
            if key == "theme":
                value = _check_str(path, k, value)
        values[key] = value
    section = cls(**values)
    if name == "smtp" and section.starttls and section.tls:
        raise ConfigError(path, "[smtp] tls", "at most one of tls and starttls set to true "
                          "(tls = implicit TLS, usually port 465; starttls = upgrade, usually 587)")
    return section


def _keymap(path: Path, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(path, "[keymap]", 'a table of binding id = "keys" lines')
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(path, f"[keymap] {key}", 'a quoted key list such as "ctrl+s" or "a,ctrl+n"',
                              f"got {_show(value)}")
        out[str(key)] = value.strip()
    return out


# -- load / save ------------------------------------------------------------------------------


def load_config(path: Path | str | None = None) -> AppConfig:
    """Read and check the config file (`config_path()` by default). A missing file gives the
    defaults; anything unusable raises `ConfigError`."""
    file = Path(path) if path is not None else config_path()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return AppConfig()
    except OSError as exc:
        raise ConfigError(file, "(file)", "a readable file", str(exc)) from exc
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "(file)", "UTF-8 text", "not valid UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "(syntax)", 'TOML: [section] headers and key = value lines, '
                          'strings in double quotes', str(exc)) from exc
    except RecursionError:  # arrays or inline tables nested thousands deep: no config looks like that
        raise ConfigError(file, "(syntax)", "TOML: [section] headers and key = value lines",
                          "arrays or inline tables nested deeper than the parser goes") from None
    cfg = AppConfig()
    for name, raw in doc.items():
        if name in _SECTIONS:
            setattr(cfg, name, _section(file, name, raw))
        elif name == "keymap":
            cfg.keymap = _keymap(file, raw)
        elif name in _SECRET_KEYS:
            raise ConfigError(file, name, "no secrets in the config file: use `credly-console "
                              f"secrets set` or the environment variable {_SECRET_KEYS[name]}")
        elif isinstance(raw, dict):
            known = [*_SECTIONS, "keymap"]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise ConfigError(file, f"[{name}]", "one of the sections " + ", ".join(f"[{s}]" for s in known),
                              f"unknown section{hint}")
        else:
            raise ConfigError(file, name, "settings inside a section: [credly], [docebo], "
                              "[server], [smtp], [keymap] or [ui]", "a key outside any section")
    return cfg


def save_config(cfg: AppConfig, path: Path | str | None = None) -> Path:
    """Write `cfg` atomically (temp file in the same directory, then rename). Returns the path."""
    file = Path(path) if path is not None else config_path()
    write_atomically(file, tomli_w.dumps(cfg.to_dict()))
    return file
