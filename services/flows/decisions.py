"""What the product does for one learner and one template (SPEC F3c, E1, O1, O3, O5): pure functions,
typed records in, a `Decision(action, reason, rule)` out. F3/F4 (events) and F7 (batch) call them
through docebo_to_credly.ensure_badge; `credly-console explain` may call them directly.
No I/O here: the callers read Credly, Docebo and the ledger and pass what they found."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from services.flows import rules

ACTIONS = ("issue", "replace", "revoke", "create", "update", "delete", "nothing")


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision: `action` (one of ACTIONS), a plain `reason`, the SPEC `rule` that decided it."""

    action: str
    reason: str
    rule: str


@dataclasses.dataclass(frozen=True)
class Source:
    """A Docebo object that calls for a badge: a course completion (F3a), a plan completion (F3b)
    or a certification award (F4). `issued_at` is its date, `expires_at` its own expiry (or None)."""

    user_id: str
    template_id: str
    rule: str  # F3a | F3b | F4
    origin_type: str  # course | learning_plan | certification_award
    origin_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime | None = None
    # F4 semantics: "award" (awarded, or an award seen by F7) | "update" (certification.updated)
    mode: str = "award"


@dataclasses.dataclass(frozen=True)
class HeldBadge:
    """A pending or accepted Credly badge of the learner for the template."""

    badge_id: str
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None
    issuer_earner_id: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> HeldBadge:
        """From a `lookups.held_record` (or any Credly badge dict)."""
        return cls(
            badge_id=str(record.get("id") or ""),
            issued_at=rules.parse_datetime(record.get("issued_at")),
            expires_at=rules.parse_datetime(record.get("expires_at")),
            issuer_earner_id=str(record.get("issuer_earner_id") or ""),
        )


@dataclasses.dataclass(frozen=True)
class IssuedBefore:
    """The product's last badge for this learner and template (ledger, any status): which badge,
    its status (active|revoked|replaced|deleted) and the source it was issued for."""

    badge_id: str
    status: str
    origin_type: str
    origin_id: str
    origin_date: dt.datetime | None


def badge_expiry(source_expiry: Any, today: dt.datetime, default_days: int | None) -> str | bool | None:
    """E1: the `expires_at` of a badge issued now. The Docebo object's own expiry wins; else
    CREDLY_DEFAULT_EXPIRATION_DAYS: blank → False (never expires), N > 0 → today (the day the
    badge is issued in Credly, UTC) + N days, 0 → None (the template's own default)."""
    own = rules.parse_datetime(source_expiry)
    if own is not None:
        return rules.credly_time(own)
    if default_days is None:
        return False
    if default_days == 0:
        return None
    return rules.credly_time(today + dt.timedelta(days=default_days))


def is_current(held: HeldBadge, now: dt.datetime) -> bool:
    """F3c: a held badge counts only while it has not expired."""
    return held.expires_at is None or held.expires_at > now


def issued_by_product(held: HeldBadge, user_id: str, before: IssuedBefore | None) -> bool:
    """O1: the product issued this badge (ledger names it, or the L1 marker is this learner's id)."""
    return (before is not None and before.badge_id == held.badge_id) or (bool(user_id) and held.issuer_earner_id == user_id)


def same_source(source: Source, before: IssuedBefore) -> bool:
    """O3: the same origin object with the same date (day precision, dates round-trip)."""
    return (
        before.origin_type == source.origin_type
        and before.origin_id == source.origin_id
        and (before.origin_date is None or rules.same_day(before.origin_date, source.issued_at))
    )


def dates_differ(held: HeldBadge, source: Source, wanted_expiry: str | bool | None) -> bool:
    """O5 / F4 updated: does the held badge carry other dates than the source asks for?"""
    if not rules.same_day(held.issued_at, source.issued_at):
        return True
    if wanted_expiry is None:  # the template's default: nothing to compare
        return False
    if wanted_expiry is False:
        return held.expires_at is not None
    return not rules.same_day(held.expires_at, wanted_expiry)


def decide_badge(
    source: Source,
    held: HeldBadge | None,
    before: IssuedBefore | None,
    *,
    now: dt.datetime,
    default_days: int | None,
) -> Decision:
    """What F3/F4/F7 do for one source of one learner and template: issue, replace or nothing."""
    if source.expires_at is not None and source.expires_at <= source.issued_at:
        return Decision("nothing", f"its expiry {source.expires_at.date()} is not after its date {source.issued_at.date()}", "E1")
    if source.expires_at is not None and source.expires_at <= now:
        return Decision("nothing", f"expired in Docebo on {source.expires_at.date()}: no badge for it", "E1")
    wanted = badge_expiry(source.expires_at, now, default_days)
    if held is not None and is_current(held, now):
        ours = issued_by_product(held, source.user_id, before)
        if source.rule == "F4" and dates_differ(held, source, wanted):
            if not ours:
                return Decision("nothing", f"held badge {held.badge_id} not issued by credly-console: left as is", "O1")
            if source.mode == "update":
                return Decision("replace", f"badge {held.badge_id} replaced with the award's new dates", "F4")
            return Decision("replace", f"renewal: badge {held.badge_id} replaced with the award's new dates", "O5")
        return Decision("nothing", f"already holds badge {held.badge_id}: not issued again", "F3c")
    if before is not None and before.status != "intent" and same_source(source, before):
        return Decision(
            "nothing",
            f"badge {before.badge_id} was issued for this same {source.origin_type} {source.origin_id} and is no longer "
            "held (revoked, deleted or expired): not issued again for the same source",
            "O3",
        )
    if held is not None:  # held but expired
        if issued_by_product(held, source.user_id, before):
            reason = f"held badge {held.badge_id} expired on {_day(held.expires_at)}: replaced with the new dates"
            return Decision("replace", reason, "F3c")
        return Decision("issue", f"held badge {held.badge_id} expired on {_day(held.expires_at)}: a newer source issues", "F3c")
    if before is not None and before.status != "intent":
        return Decision("issue", f"a newer source than badge {before.badge_id}'s issues again", "O3")
    return Decision("issue", "no current badge of this template", source.rule)


def _day(moment: dt.datetime | None) -> str:
    return str(moment.date()) if moment else "?"


def decide_revoke(
    held: HeldBadge | None,
    user_id: str,
    before: IssuedBefore | None,
    *,
    sync_revocation: bool,
    why: str,
    kept_by: str = "",
    rule: str = "F4",
) -> Decision:
    """Revoke the learner's badge because its source is gone (F4 revoked; O4 in F7)? Only a badge the
    product issued (O1), only when no other current source calls for it (O4), only with SYNC_REVOCATION."""
    if held is None:
        return Decision("nothing", "holds no pending or accepted badge of this template: nothing to revoke", rule)
    if not issued_by_product(held, user_id, before):
        return Decision("nothing", f"held badge {held.badge_id} not issued by credly-console: left as is", "O1")
    if kept_by:
        return Decision("nothing", f"badge {held.badge_id} kept: {kept_by} still calls for it", "O4")
    if not sync_revocation:
        return Decision("nothing", f"{why}; SYNC_REVOCATION is false: badge {held.badge_id} is kept", rule)
    return Decision("revoke", why, rule)


def award_echo(award_id: str, made_from_badge: str | None) -> Decision | None:
    """O2: a Docebo award that F5/F6 created or updated from a Credly badge never makes F4/F7 issue,
    replace or revoke a badge; None when the award is Docebo's own."""
    if not made_from_badge:
        return None
    return Decision("nothing", f"award {award_id} was made by credly-console from Credly badge {made_from_badge}: no echo", "O2")
