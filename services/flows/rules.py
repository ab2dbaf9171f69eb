"""Pure rules shared by the flows: G1 gate, S3 required keys, E1 expiry, evidence, dates.

Nothing here does I/O; every function is unit-tested on its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil import parser as date_parser

# -- flow names ----------------------------------------------------------------------------------

# Public names (run_flow, CLI) → the name stored in runs.flow / flow_locks / schedule.job.
BATCH_FLOWS: dict[str, str] = {
    "templates": "templates",  # F1
    "dropdown": "dropdown",  # F2
    "docebo-to-credly": "docebo_to_credly",  # F7 (F3 + F4 over everything)
    "credly-to-docebo": "credly_to_docebo",  # F6 (F5 over every mapped badge)
    "all": "all",  # F1, F2, F7, F6 in that order, as child runs
}
# Real-time flows (one run per webhook event).
EVENT_FLOWS = ("course_completion", "certification", "badge_event", "template_event")

DOCEBO_TO_CREDLY = frozenset({"docebo_to_credly", "course_completion", "certification"})
CREDLY_TO_DOCEBO = frozenset({"credly_to_docebo", "badge_event"})


def flow_key(name: str) -> str:
    """Normalise a flow name ('docebo-to-credly' or 'docebo_to_credly') to its stored form."""
    key = name.strip().lower().replace("-", "_")
    known = set(BATCH_FLOWS.values()) | set(EVENT_FLOWS)
    if key not in known:
        raise ValueError(
            f"unknown flow {name!r}; expected one of {', '.join(BATCH_FLOWS)}"
        )
    return key


# -- G1 ------------------------------------------------------------------------------------------


def gate_reason(flow: str, master: str) -> str:
    """G1: '' when `flow` may run under CREDLY_INTEGRATION_MASTER = `master`, else the reason.

    F3, F4, F7 (Docebo → Credly) need blank or DOCEBO; F5, F6 (Credly → Docebo) need blank or
    CREDLY. F1 and F2 (the template table and the dropdown) serve both directions and always run.
    """
    key = flow_key(flow)
    if key in DOCEBO_TO_CREDLY and master == "CREDLY":
        return (
            "CREDLY_INTEGRATION_MASTER is CREDLY: only Credly → Docebo flows run, "
            "so this Docebo → Credly flow is skipped (G1)"
        )
    if key in CREDLY_TO_DOCEBO and master == "DOCEBO":
        return (
            "CREDLY_INTEGRATION_MASTER is DOCEBO: only Docebo → Credly flows run, "
            "so this Credly → Docebo flow is skipped (G1)"
        )
    return ""


# -- S3: the settings each flow needs ------------------------------------------------------------

# NOTIFICATION_MAIL_ID is needed by every flow: its errors (and F1's deletion notice) must reach
# someone (N1). The optional keys (BATCH_SYNC_START_DATE, CREDLY_DEFAULT_EXPIRATION_DAYS,
# CREDLY_INTEGRATION_MASTER) are checked too, so a value stored invalid by hand blocks the flow
# instead of being read silently as blank.
_OPTIONAL = ("BATCH_SYNC_START_DATE", "CREDLY_DEFAULT_EXPIRATION_DAYS", "CREDLY_INTEGRATION_MASTER")
REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "templates": ("NOTIFICATION_MAIL_ID", "CREDLY_INTEGRATION_MASTER"),
    "template_event": ("NOTIFICATION_MAIL_ID", "CREDLY_INTEGRATION_MASTER"),
    "dropdown": ("NOTIFICATION_MAIL_ID", "COURSE_ADDITIONAL_FIELD", "CREDLY_INTEGRATION_MASTER"),
    "course_completion": (
        "NOTIFICATION_MAIL_ID",
        "COURSE_ADDITIONAL_FIELD",
        "EVIDENCE_TITLE",
        *_OPTIONAL,
    ),
    "certification": ("NOTIFICATION_MAIL_ID", "EVIDENCE_TITLE", "SYNC_REVOCATION", *_OPTIONAL),
    "docebo_to_credly": (
        "NOTIFICATION_MAIL_ID",
        "COURSE_ADDITIONAL_FIELD",
        "EVIDENCE_TITLE",
        "SYNC_REVOCATION",
        *_OPTIONAL,
    ),
    "badge_event": ("NOTIFICATION_MAIL_ID", "EXTERNAL_TRAINING_INSTITUTE_NAME", "SYNC_REVOCATION", *_OPTIONAL),
    "credly_to_docebo": (
        "NOTIFICATION_MAIL_ID",
        "EXTERNAL_TRAINING_INSTITUTE_NAME",
        "SYNC_REVOCATION",
        *_OPTIONAL,
    ),
}


def required_settings(flow: str) -> tuple[str, ...]:
    return REQUIRED_SETTINGS.get(flow_key(flow), ())


# -- dates ---------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> dt.datetime | None:
    """An API date (Docebo 'YYYY-MM-DD HH:MM:SS' UTC, Credly ISO with Z, a date) as an aware UTC
    datetime; None for blank, null or Docebo's '0000-00-00 00:00:00'."""
    if value is None or value is False:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    text = str(value).strip()
    if not text or text.startswith("0000-00-00"):
        return None
    try:
        moment = date_parser.isoparse(text.replace(" ", "T", 1) if len(text) > 10 and text[10] == " " else text)
    except (ValueError, OverflowError):
        try:
            moment = date_parser.parse(text)
        except (ValueError, OverflowError):
            return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def credly_time(moment: dt.datetime) -> str:
    """A datetime as Credly's request format 'YYYY-MM-DD HH:MM:SS +0000' (UTC)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def docebo_time(moment: dt.datetime | None) -> str | None:
    """A datetime as Docebo's 'YYYY-MM-DD HH:MM:SS' (UTC); None stays None."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def same_day(a: Any, b: Any) -> bool:
    """Dates compared at day precision (both sides round-trip through different formats)."""
    da, db = parse_datetime(a), parse_datetime(b)
    if da is None or db is None:
        return da is None and db is None
    return da.date() == db.date()


def on_or_after(value: Any, start: dt.date | None) -> bool:
    """BATCH_SYNC_START_DATE: True when there is no lower bound or `value` is on/after it.
    An item without a date is kept (decision: the bound filters what it can date)."""
    if start is None:
        return True
    moment = parse_datetime(value)
    return moment is None or moment.date() >= start


# -- E1 ------------------------------------------------------------------------------------------


def badge_expires_at(
    docebo_expiry: Any, issued_at: dt.datetime, default_days: int | None
) -> str | bool | None:
    """E1: the `expires_at` value of a badge issued for a Docebo object.

    * the Docebo object's own expiry wins (course enrollment validity end, award expiry);
    * else CREDLY_DEFAULT_EXPIRATION_DAYS: blank → False (the badge never expires);
      N > 0 → issue date + N days; 0 → None (Credly applies the template's own default).
    """
    own = parse_datetime(docebo_expiry)
    if own is not None:
        return credly_time(own)
    if default_days is None:
        return False
    if default_days == 0:
        return None
    return credly_time(issued_at + dt.timedelta(days=default_days))


def docebo_expiry_from_badge(badge: dict[str, Any]) -> str | None:
    """E1 the other way: a Credly badge gives its Docebo objects its expiry ('' → none)."""
    return docebo_time(parse_datetime(badge.get("expires_at")))


# -- evidence ------------------------------------------------------------------------------------

FLOW_LABELS = {
    "F3a": "course completion (course additional field)",
    "F3b": "learning plan completion",
    "F4": "certification award",
}


def evidence(title: str, rule: str, docebo_object: str) -> list[dict[str, str]]:
    """The evidence attached to every badge the product issues: titled EVIDENCE_TITLE, its
    description naming the flow and the Docebo object.

    Decision: one Credly `IdEvidence` item (text evidence with a title and a description; its
    `id` repeats the object reference in Credly's `Name=value` form)."""
    label = FLOW_LABELS.get(rule, rule)
    return [
        {
            "type": "IdEvidence",
            "title": title,
            "description": f"Issued by credly-console, flow {rule} ({label}): Docebo {docebo_object}",
            "id": f"{title}={docebo_object}",
        }
    ]


def badge_fields(
    *,
    email: str,
    first_name: str,
    last_name: str,
    template_id: str,
    issued_at: dt.datetime,
    docebo_user_id: str | int,
    expires_at: str | bool | None,
    evidence_items: list[dict[str, str]],
) -> dict[str, Any]:
    """The body of an issue (or replace) call: what F3/F4 badges carry (SPEC §2)."""
    return {
        "recipient_email": email,
        "issued_to_first_name": first_name or email.split("@")[0],
        "issued_to_last_name": last_name or "-",
        "badge_template_id": template_id,
        "issued_at": credly_time(issued_at),
        "issuer_earner_id": str(docebo_user_id),  # L1
        "expires_at": expires_at,
        "evidence": evidence_items,
    }
