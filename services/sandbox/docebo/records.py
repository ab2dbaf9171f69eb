"""The records of the Docebo sandbox: its domain error (the HTTP status Docebo would answer),
dates in Docebo's ``YYYY-MM-DD HH:MM:SS`` UTC form (api/docebo.md §1.3), integer and enrollment
status parsing (§4.1), the OAuth2 client and token records (§1.2). No HTTP here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ENROLLMENT_STATUSES = ("not_started", "in_progress", "completed")
# Legacy numeric codes and webhook vocabulary accepted on writes (api/docebo.md §4.1).
_STATUS_ALIASES = {
    "0": "not_started",
    "subscribed": "not_started",
    "enrolled": "not_started",
    "1": "in_progress",
    "2": "completed",
}
CERTIFICATION_EVENTS = ("certification.awarded", "certification.updated", "certification.revoked")
COMPLETION_EVENT = "course.enrollment.completed"


class DoceboError(Exception):
    """A domain error with the HTTP status Docebo would answer."""

    NAMES = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def name(self) -> str:
        return self.NAMES.get(self.status, "Error")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def fmt(dt: datetime | None) -> str | None:
    return dt.strftime(DATE_FORMAT) if dt is not None else None


def parse_date(value: Any, field_name: str, *, required: bool = False) -> str | None:
    """Validate a Docebo date (`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`) and return it in the long
    form; None/'' → None unless required. Raises DoceboError(400) naming the field."""
    if value is None or value == "":
        if required:
            raise DoceboError(400, f"Field '{field_name}' is required")
        return None
    if isinstance(value, str):
        text = value.strip().replace("T", " ").removesuffix("Z")
        for pattern in (DATE_FORMAT, "%Y-%m-%d"):
            try:
                return datetime.strptime(text, pattern).strftime(DATE_FORMAT)
            except ValueError:
                pass
    raise DoceboError(400, f"Field '{field_name}' must be a date 'YYYY-MM-DD HH:MM:SS', got {value!r}")


def as_datetime(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)


def as_int(value: Any, field_name: str) -> int:
    if isinstance(value, bool):
        raise DoceboError(400, f"Field '{field_name}' must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise DoceboError(400, f"Field '{field_name}' must be an integer, got {value!r}") from None


def normalise_status(value: Any) -> str:
    text = str(value).strip().lower()
    text = _STATUS_ALIASES.get(text, text)
    if text not in ENROLLMENT_STATUSES:
        raise DoceboError(
            400, f"Invalid enrollment status {value!r}; expected one of {', '.join(ENROLLMENT_STATUSES)}"
        )
    return text


@dataclass
class Token:
    value: str
    client_id: str
    username: str | None
    expires_at: float
    scope: str = "api"


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    grants: tuple[str, ...] = ("client_credentials", "password", "refresh_token")
