"""The records of the Credly sandbox (templates, badges, events), its API error and the parsing
helpers its state and wire format share: times (credly.md §1.9), ``filter``/``sort`` query
syntax (§1.6), blank checks and evidence echo (§3.8). No HTTP here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dateutil import parser as dateparser

DEFAULT_TOKEN = "credly-sandbox-token"
DEFAULT_ORG_NAME = "Sandbox Academy"

TEMPLATE_STATES = ("active", "archived", "draft")
BADGE_STATES = ("pending", "accepted", "rejected", "revoked", "replaced")
HOLDING_STATES = ("pending", "accepted")

REQUIRED_ISSUE_FIELDS = (
    ("recipient_email", "Recipient email"),
    ("issued_to_first_name", "Issued to first name"),
    ("issued_to_last_name", "Issued to last name"),
    ("badge_template_id", "Badge template"),
    ("issued_at", "Issued at"),
)
INVALID_TEMPLATE = "Invalid or missing Badge Template ID: "
ALREADY_HAS = "User already has this badge"
NOT_FOUND = "Resource not found"
BATCH_LIMIT = 50

TEMPLATE_EPOCH = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)


class CredlyError(Exception):
    """An API error: HTTP ``status``, Credly's ``message`` and extra ``data`` keys."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"data": {"message": self.message, **self.extra}, "metadata": None}


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Template:
    id: str
    name: str
    state: str
    allow_duplicate_badges: bool
    description: str
    default_expires_in_days: int | None
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    public: bool = True


@dataclass(slots=True)
class Badge:
    id: str
    template_id: str
    recipient_email: str
    first_name: str
    last_name: str
    issued_at: datetime
    expires_at: datetime | None
    state: str
    issuer_earner_id: str | None
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    middle_name: str | None = None
    locale: str = "en"
    suppress_email: bool = False
    claimed: bool = False  # an earner account exists (accepted or rejected once)
    revocation_reason: str | None = None
    replaces_badge_id: str | None = None
    replacement_badge_id: str | None = None
    evidence: list | None = None
    country_name: str | None = None
    state_or_province: str | None = None
    issuer_earner_group: dict | None = None
    seq: int = 0  # creation order (the default list order)

    @property
    def email_key(self) -> str:
        return self.recipient_email.lower()


@dataclass(slots=True)
class Event:
    id: str
    event_type: str
    occurred_at: datetime
    badge: Badge | None = None
    template: Template | None = None


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    """``2014-04-01T14:41:00.000Z`` (credly.md §1.9)."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_date(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d")


def parse_time(value: Any) -> datetime:
    """Lenient, as the real server is (credly.md §1.9); naive times are UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("blank")
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            dt = dateparser.parse(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_filter(raw: str | None) -> dict[str, list[str]]:
    """``k::v|k2::v1,v2`` → ``{"k": ["v"], "k2": ["v1", "v2"]}`` (credly.md §1.6)."""
    out: dict[str, list[str]] = {}
    if not raw:
        return out
    for part in raw.split("|"):
        key, sep, value = part.partition("::")
        key = key.strip()
        if not sep or not key:
            continue
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            out[key] = [value]  # a quoted value is one strict value, commas and all
        else:
            out[key] = [v.strip() for v in value.split(",") if v.strip() != ""]
    return out


def parse_sort(raw: str | None) -> list[tuple[str, bool]]:
    """``a|-b`` → ``[("a", False), ("b", True)]`` (True = descending)."""
    out = []
    for part in (raw or "").split("|"):
        part = part.strip()
        if part:
            out.append((part[1:], True) if part.startswith("-") else (part, False))
    return out


def sort_items(items: list, sort: list[tuple[str, bool]], keys: Mapping[str, Callable]) -> list:
    for name, descending in reversed([(n, d) for n, d in sort if n in keys]):
        key = keys[name]
        present = [x for x in items if key(x) is not None]
        missing = [x for x in items if key(x) is None]
        present.sort(key=key, reverse=descending)
        items = present + missing if not descending else missing + present
    return items



def full_name(b: Badge) -> str:
    return " ".join(p for p in (b.first_name, b.middle_name, b.last_name) if p)


def slugify(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)


def freeze_filters(filters: Mapping[str, list[str]]) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in filters.items()))


def optional_int(value: Any) -> int | None:
    if value in (None, "", False):
        return None
    return int(value)


def evidence_item(item: Any, new_id: Callable[[], str]) -> Any:
    """Echo evidence as sent, adding an ``id``; ``IdEvidence`` ``"Name=value"`` reads back as
    ``name`` + ``id`` (credly.md §3.8)."""
    if not isinstance(item, Mapping):
        return item
    out = dict(item)
    if out.get("type") == "IdEvidence" and isinstance(out.get("id"), str) and "=" in out["id"]:
        name, _, value = out["id"].partition("=")
        out["name"], out["id"] = name, value
    out.setdefault("id", new_id())
    return out


__all__ = [
    "ALREADY_HAS",
    "Badge",
    "CredlyError",
    "DEFAULT_TOKEN",
    "Event",
    "INVALID_TEMPLATE",
    "Template",
    "iso",
    "parse_filter",
    "parse_sort",
]
