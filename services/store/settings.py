"""S — the integration settings table (SPEC §1, rules S1–S3).

Design notes: docs/design/store.md
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from dateutil import parser as date_parser

from services.core.errors import CredlyConsoleError
from services.store.db import INTEGRATION, SETTING_KEYS, Store, utcnow

OPTIONAL_KEYS: frozenset[str] = frozenset(
    {"BATCH_SYNC_START_DATE", "CREDLY_DEFAULT_EXPIRATION_DAYS", "CREDLY_INTEGRATION_MASTER"}
)
REQUIRED_KEYS: tuple[str, ...] = tuple(k for k in SETTING_KEYS if k not in OPTIONAL_KEYS)

MAX_EXPIRATION_DAYS = 36_500  # 100 years: keeps E1's date arithmetic inside the calendar
MAX_TEXT_LENGTH = 255

# What each key expects, in the words the error messages and `settings list` use.
EXPECTED: dict[str, str] = {
    "BATCH_SYNC_START_DATE": (
        "a date YYYY-MM-DD (an ISO date-time is accepted: the date as typed is kept, its time and offset are "
        "dropped), or blank for no lower bound"
    ),
    "NOTIFICATION_MAIL_ID": "an e-mail address such as lms-admin@example.com",
    "SYNC_REVOCATION": "true or false (exactly, lower-case)",
    "CREDLY_DEFAULT_EXPIRATION_DAYS": (
        f"blank (badges do not expire) or a whole number of days from 0 to {MAX_EXPIRATION_DAYS} "
        "(0 = the template's own default)"
    ),
    "EXTERNAL_TRAINING_INSTITUTE_NAME": f"a non-blank single line of text (at most {MAX_TEXT_LENGTH} characters)",
    "COURSE_ADDITIONAL_FIELD": (
        "the name of a Docebo course additional field: a non-blank single line of text (at most "
        f"{MAX_TEXT_LENGTH} characters)"
    ),
    "CREDLY_INTEGRATION_MASTER": "blank (both directions), DOCEBO or CREDLY (upper-case)",
    "EVIDENCE_TITLE": f"a non-blank single line of text (at most {MAX_TEXT_LENGTH} characters)",
}

DESCRIPTIONS: dict[str, str] = {
    "BATCH_SYNC_START_DATE": "batch flows only consider completions, awards and badges on or after this date",
    "NOTIFICATION_MAIL_ID": "receives error notifications and the template deletion notice",
    "SYNC_REVOCATION": "propagate revocations and deletions in both directions",
    "CREDLY_DEFAULT_EXPIRATION_DAYS": "expiry of badges whose Docebo object has none",
    "EXTERNAL_TRAINING_INSTITUTE_NAME": "institute of the external trainings created from badges",
    "COURSE_ADDITIONAL_FIELD": "Docebo course dropdown field that holds a course's badge template",
    "CREDLY_INTEGRATION_MASTER": "which direction runs: DOCEBO, CREDLY, or blank for both",
    "EVIDENCE_TITLE": "title of the evidence attached to issued badges",
}

# A practical address check: one @, a dot-atom local part, a domain of DNS labels with a TLD.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
_EMAIL = re.compile(rf"{_LOCAL}@{_DOMAIN}")
_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")


class SettingError(CredlyConsoleError, ValueError):
    """A refused setting (S2). `str()` names the key, the value and the expected format."""

    def __init__(self, key: str, value: str, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"{key}: {_show(value)} is not valid; expected {expected}")


class SettingErrors(SettingError):
    """Several refused values of one multi-key edit. `errors` lists each; the key, value and
    expected attributes are those of the first, and `str()` names every one."""

    def __init__(self, errors: list[SettingError]) -> None:
        first = errors[0]
        super().__init__(first.key, first.value, first.expected)
        self.errors = errors
        self.args = ("; ".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class SettingProblem:
    """A configuration problem (S3) shown on the dashboard and in the log of blocked flows."""

    key: str
    message: str


@dataclass(frozen=True)
class SettingsSnapshot:
    """The settings, typed. Unset (or unreadable) values are None / "" as the type allows."""

    batch_sync_start_date: dt.date | None
    notification_mail_id: str
    sync_revocation: bool | None
    default_expiration_days: int | None
    external_training_institute_name: str
    course_additional_field: str
    integration_master: Literal["", "DOCEBO", "CREDLY"]
    evidence_title: str


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(key: str, value: str) -> str:
    if len(value) > MAX_TEXT_LENGTH or any(ord(ch) < 32 for ch in value):
        raise SettingError(key, value, EXPECTED[key])
    return value


def _date(key: str, value: str) -> str:
    if not _DATE_PREFIX.match(value):
        raise SettingError(key, value, EXPECTED[key])
    if len(value) == 10:
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise SettingError(key, value, EXPECTED[key]) from None
    if value[10] not in "T ":
        raise SettingError(key, value, EXPECTED[key])
    try:
        # python-dateutil's strict ISO-8601 parser (accepts 'Z', offsets, fractions).
        moment = date_parser.isoparse(value.replace(" ", "T", 1))
    except (ValueError, OverflowError):
        raise SettingError(key, value, EXPECTED[key]) from None
    # Issue 12: the date the admin typed, not its UTC date ("2025-01-01T00:30+02:00" is 1 January, not
    # 31 December). Batches compare it with the UTC date of each completion, award or badge.
    return moment.date().isoformat()


def validate_setting(key: str, value: str) -> str:
    """Check one value (S1/S2) and return it normalised; raise `SettingError` if refused."""
    if key not in SETTING_KEYS:
        raise SettingError(key, value, "one of the setting keys " + ", ".join(SETTING_KEYS))
    if not isinstance(value, str):
        raise SettingError(key, str(value), EXPECTED[key])
    raw = value
    value = value.strip()
    if value == "":
        if key in OPTIONAL_KEYS:
            return ""
        raise SettingError(key, raw, EXPECTED[key] + " (this setting is required and cannot be blank)")
    if key == "SYNC_REVOCATION":
        if value not in ("true", "false"):
            raise SettingError(key, raw, EXPECTED[key])
        return value
    if key == "BATCH_SYNC_START_DATE":
        return _date(key, value)
    if key == "NOTIFICATION_MAIL_ID":
        if len(value) > 254 or not _EMAIL.fullmatch(value):
            raise SettingError(key, raw, EXPECTED[key])
        return value
    if key == "CREDLY_DEFAULT_EXPIRATION_DAYS":
        if not re.fullmatch(r"[0-9]+", value) or int(value) > MAX_EXPIRATION_DAYS:
            raise SettingError(key, raw, EXPECTED[key])
        return str(int(value))
    if key == "CREDLY_INTEGRATION_MASTER":
        if value not in ("DOCEBO", "CREDLY"):
            raise SettingError(key, raw, EXPECTED[key])
        return value
    return _text(key, value)


# -- reading ----------------------------------------------------------------------------------


def _check_key(key: str) -> None:
    if key not in SETTING_KEYS:
        raise SettingError(key, "", "one of the setting keys " + ", ".join(SETTING_KEYS))


def get_setting(store: Store, key: str) -> str:
    """The stored value of `key` ('' when unset). Unknown keys raise `SettingError`."""
    _check_key(key)
    row = store.db.execute("SELECT value FROM settings WHERE integration = ? AND key = ?", (INTEGRATION, key)).fetchone()
    return row[0] if row else ""


def all_settings(store: Store) -> dict[str, str]:
    """Every key → stored value, in `SETTING_KEYS` order."""
    rows = dict(store.db.execute("SELECT key, value FROM settings WHERE integration = ?", (INTEGRATION,)).fetchall())
    return {key: rows.get(key, "") for key in SETTING_KEYS}


def list_settings(store: Store) -> list[dict]:
    """Rows for display: key, value, required, expected, description, updated_at, problem."""
    updated = dict(store.db.execute("SELECT key, updated_at FROM settings WHERE integration = ?", (INTEGRATION,)).fetchall())
    problems = {p.key: p.message for p in configuration_problems(store)}
    return [
        {
            "key": key,
            "value": value,
            "required": key not in OPTIONAL_KEYS,
            "expected": EXPECTED[key],
            "description": DESCRIPTIONS[key],
            "updated_at": updated.get(key),
            "problem": problems.get(key, ""),
        }
        for key, value in all_settings(store).items()
    ]


def _parse_or_none(key: str, value: str) -> str | None:
    try:
        return validate_setting(key, value)
    except SettingError:
        return None


def read_settings(store: Store) -> SettingsSnapshot:
    """The settings as typed values. A stored value that no longer validates (edited by hand)
    reads as unset; `configuration_problems` reports it."""
    values = all_settings(store)
    ok = {key: (_parse_or_none(key, v) or "") for key, v in values.items()}
    start = ok["BATCH_SYNC_START_DATE"]
    days = ok["CREDLY_DEFAULT_EXPIRATION_DAYS"]
    revocation = ok["SYNC_REVOCATION"]
    return SettingsSnapshot(
        batch_sync_start_date=dt.date.fromisoformat(start) if start else None,
        notification_mail_id=ok["NOTIFICATION_MAIL_ID"],
        sync_revocation=None if not revocation else revocation == "true",
        default_expiration_days=int(days) if days else None,
        external_training_institute_name=ok["EXTERNAL_TRAINING_INSTITUTE_NAME"],
        course_additional_field=ok["COURSE_ADDITIONAL_FIELD"],
        integration_master=ok["CREDLY_INTEGRATION_MASTER"],  # type: ignore[arg-type]
        evidence_title=ok["EVIDENCE_TITLE"],
    )


def configuration_problems(store: Store, keys: list[str] | tuple[str, ...] | None = None) -> list[SettingProblem]:
    """S3: the required keys that are unset, and any stored value that does not validate.
    `keys` narrows the check to the settings a flow needs (default: all of them)."""
    values = all_settings(store)
    problems: list[SettingProblem] = []
    for key in keys if keys is not None else SETTING_KEYS:
        _check_key(key)
        value = values[key]
        if value == "" and key not in OPTIONAL_KEYS:
            problems.append(SettingProblem(key, f"{key} is not set but is required; expected {EXPECTED[key]}"))
            continue
        try:
            validate_setting(key, value)
        except SettingError as exc:
            problems.append(SettingProblem(key, f"stored value is invalid: {exc}"))
    return problems


# -- writing ----------------------------------------------------------------------------------


def set_settings(store: Store, values: dict[str, str]) -> dict[str, str]:
    """Validate every value, then write them all in one transaction (S2). If any is refused,
    raise `SettingError` (one) or `SettingErrors` (several) and write nothing. Returns the
    normalised values that were stored."""
    errors: list[SettingError] = []
    clean: dict[str, str] = {}
    for key, value in values.items():
        try:
            clean[key] = validate_setting(key, value)
        except SettingError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SettingErrors(errors)
    now = utcnow()
    with store.write() as db:
        for key, value in clean.items():
            db.execute(
                "INSERT INTO settings (integration, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(integration, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (INTEGRATION, key, value, now),
            )
    return clean


def set_setting(store: Store, key: str, value: str) -> str:
    """Validate and store one value (S2). Returns the normalised value stored."""
    return set_settings(store, {key: value})[key]
