"""Bulk reads shared by the flows: users, held badges, certifications, mappings and templates.

Batches read in bulk (issue 5): every page once, and never per item what one paged scan gives.
For the few reads where either a per-item lookup or a full scan may be cheaper, the choice is
made from what the flow knows (see each function).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

from services.flows.base import Job, collect
from services.flows.rules import parse_datetime

# Up to this many users are looked up one call each; more are found by scanning the user list
# (200 per page), stopping as soon as all are found.
PER_USER_LOOKUPS_MAX = 3
HELD_STATES = ("pending", "accepted")


@dataclasses.dataclass(frozen=True)
class Learner:
    user_id: str
    email: str
    first_name: str
    last_name: str
    username: str = ""

    @property
    def label(self) -> str:
        return f"{self.email} (Docebo user {self.user_id})"


def learner_from(user: dict[str, Any] | None) -> Learner | None:
    """A Docebo user (list item, or `get_user`'s detail with `user_data`) as a Learner."""
    if not user:
        return None
    data = user.get("user_data") if isinstance(user.get("user_data"), dict) else user
    uid = data.get("user_id", data.get("id"))
    if uid is None:
        return None
    return Learner(
        user_id=str(uid),
        email=str(data.get("email") or "").strip(),
        first_name=str(data.get("first_name") or "").strip(),
        last_name=str(data.get("last_name") or "").strip(),
        username=str(data.get("username") or ""),
    )


async def users_by_id(job: Job, user_ids: Iterable[str]) -> dict[str, Learner]:
    """Learners for Docebo user ids: a few by `get_user`, many by one scan of the user list."""
    wanted = {str(u) for u in user_ids}
    out: dict[str, Learner] = {}
    if not wanted:
        return out
    docebo = job.docebo
    if len(wanted) <= PER_USER_LOOKUPS_MAX:
        from services.errors import NotFoundError

        async def one(uid: str) -> None:
            try:
                learner = learner_from(await docebo.get_user(uid))
            except NotFoundError:
                return
            if learner is not None:
                out[uid] = learner

        await asyncio.gather(*(one(u) for u in sorted(wanted)))
        return out
    async for user in docebo.iter_users():
        learner = learner_from(user)
        if learner is not None and learner.user_id in wanted:
            out[learner.user_id] = learner
            if len(out) == len(wanted):
                break
    return out


async def users_by_email(job: Job, emails: Iterable[str]) -> dict[str, Learner]:
    """Learners keyed by lower-case e-mail: a few by `find_user_by_email`, many by one scan."""
    wanted = {e.strip().lower() for e in emails if e and e.strip()}
    out: dict[str, Learner] = {}
    if not wanted:
        return out
    docebo = job.docebo
    if len(wanted) <= PER_USER_LOOKUPS_MAX:

        async def one(email: str) -> None:
            learner = learner_from(await docebo.find_user_by_email(email))
            if learner is not None:
                out[email] = learner

        await asyncio.gather(*(one(e) for e in sorted(wanted)))
        return out
    async for user in docebo.iter_users():
        learner = learner_from(user)
        if learner is None:
            continue
        key = learner.email.lower()
        if key in wanted and key not in out:
            out[key] = learner
            if len(out) == len(wanted):
                break
    return out


def badge_template_id(badge: dict[str, Any]) -> str:
    tpl = badge.get("badge_template")
    if isinstance(tpl, dict) and tpl.get("id"):
        return str(tpl["id"]).lower()
    return str(badge.get("badge_template_id") or "").lower()


def badge_template_name(badge: dict[str, Any]) -> str:
    tpl = badge.get("badge_template")
    return str(tpl.get("name") or "") if isinstance(tpl, dict) else ""


class HeldBadges:
    """Pending/accepted badges (F3c "already holds") by (lower-case e-mail, template id)."""

    def __init__(self, badges: Iterable[dict[str, Any]] = ()) -> None:
        self._by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for b in badges:
            self.add(b)

    def add(self, badge: dict[str, Any]) -> None:
        if str(badge.get("state") or "") not in HELD_STATES:
            return
        key = (str(badge.get("recipient_email") or "").strip().lower(), badge_template_id(badge))
        self._by_key.setdefault(key, []).append(badge)

    def all(self, email: str, template_id: str) -> list[dict[str, Any]]:
        return self._by_key.get((email.strip().lower(), template_id.lower()), [])

    def get(self, email: str, template_id: str, *, prefer_id: str = "", user_id: str = "") -> dict[str, Any] | None:
        """The learner's held badge of a template: the one the ledger names, else one issued by
        the product for this Docebo user (L1 marker), else the newest."""
        badges = self.all(email, template_id)
        if not badges:
            return None
        if prefer_id:
            for b in badges:
                if str(b.get("id")) == prefer_id:
                    return b
        if user_id:
            ours = [b for b in badges if str(b.get("issuer_earner_id") or "") == user_id]
            if ours:
                badges = ours
        return max(badges, key=lambda b: parse_datetime(b.get("issued_at")) or parse_datetime("1970-01-01"))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())


async def held_badges_of_templates(job: Job, template_ids: Iterable[str]) -> HeldBadges:
    """Every pending/accepted badge of these templates: one paged scan per template, run
    concurrently (a template with no badge costs one call)."""
    held = HeldBadges()
    credly = job.credly
    sem = asyncio.Semaphore(job.concurrency(credly))

    async def one(tid: str) -> None:
        async with sem:
            async for b in credly.iter_badges(badge_template_id=tid, states=list(HELD_STATES)):
                held.add(b)

    await asyncio.gather(*(one(t) for t in sorted(set(template_ids))))
    return held


async def held_badges_of_learner(job: Job, email: str) -> HeldBadges:
    """One learner's pending/accepted badges (real-time flows): one call."""
    return HeldBadges(await collect(job.credly.iter_badges(recipient_email=email, states=list(HELD_STATES))))


def template_rows(job: Job) -> dict[str, dict[str, Any]]:
    """Rows of T by lower-case template id."""
    return {str(r["template_id"]).lower(): dict(r) for r in job.store.db.query("SELECT * FROM badge_templates")}


def template_usable(rows: dict[str, dict[str, Any]], template_id: str) -> bool:
    """A mapping's template may be used unless T knows it and has it switched off."""
    row = rows.get(template_id.lower())
    return row is None or bool(row["is_active"])


def active_mappings(job: Job) -> list[dict[str, Any]]:
    return [dict(r) for r in job.store.db.query("SELECT * FROM mappings WHERE is_active = 1 ORDER BY id")]


async def certifications_by_code(job: Job) -> dict[str, dict[str, Any]]:
    """Docebo certifications by code (every page; a handful of calls at most)."""
    out: dict[str, dict[str, Any]] = {}
    async for c in job.docebo.iter_certifications():
        code = str(c.get("code") or "").strip()
        if code and code not in out:
            out[code] = c
    return out
