"""Bulk reads shared by the flows: users, held badges, certifications, mappings and templates.

Batches read in bulk (issue 5): every page once, and never per item what one paged scan gives.
For the few reads where either a per-item lookup or a full scan may be cheaper, the choice is
made from what the flow knows (see each function).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from services.flows.base import Job, collect
from services.flows.rules import parse_datetime

# Up to this many users are looked up one call each; more are found by scanning the user list
# (200 per page), stopping as soon as all are found.
PER_USER_LOOKUPS_MAX = 3
HELD_STATES = ("pending", "accepted")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # orders a badge without issued_at first


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
    detail = user.get("user_data")
    data: dict[str, Any] = detail if isinstance(detail, dict) else user
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


async def users_by_id(job: Job, user_ids: Iterable[str], *, per_user_max: int = PER_USER_LOOKUPS_MAX) -> dict[str, Learner]:
    """Learners for Docebo user ids: a few by `get_user`, many by one scan of the user list."""
    wanted = {str(u) for u in user_ids}
    out: dict[str, Learner] = {}
    if not wanted:
        return out
    docebo = job.docebo
    if len(wanted) <= per_user_max:
        from services.core.errors import NotFoundError

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


async def users_by_email(job: Job, emails: Iterable[str], *, per_user_max: int = PER_USER_LOOKUPS_MAX) -> dict[str, Learner]:
    """Learners keyed by lower-case e-mail: a few by `find_user_by_email`, many by one scan."""
    wanted = {e.strip().lower() for e in emails if e and e.strip()}
    out: dict[str, Learner] = {}
    if not wanted:
        return out
    docebo = job.docebo
    if len(wanted) <= per_user_max:

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


# What the decisions read of a held badge (F3c, the ledger's recovery and replacement, F4's dates
# and L1 marker, revocation). Credly's badge carries much more (template, issuer, image, evidence:
# kilobytes each); a full F7 holds tens of thousands of badges, so only these are kept.
HELD_FIELDS = ("id", "state", "recipient_email", "issuer_earner_id", "issued_at", "expires_at", "replaces_badge_id")


def held_record(badge: dict[str, Any]) -> dict[str, Any]:
    """The part of a held badge the decisions use: HELD_FIELDS and `badge_template_id` (lower
    case); the values that repeat across badges are shared, not copied."""
    record = {k: badge.get(k) for k in HELD_FIELDS}
    record["state"] = sys.intern(str(record["state"] or ""))
    record["badge_template_id"] = sys.intern(badge_template_id(badge))
    return record


class HeldBadges:
    """Pending/accepted badges (F3c "already holds") by (lower-case e-mail, template id), each
    kept as its `held_record`."""

    def __init__(self, badges: Iterable[dict[str, Any]] = ()) -> None:
        self._by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for b in badges:
            self.add(b)

    def add(self, badge: dict[str, Any]) -> None:
        if str(badge.get("state") or "") not in HELD_STATES:
            return
        record = held_record(badge)
        key = (str(record["recipient_email"] or "").strip().lower(), record["badge_template_id"])
        self._by_key.setdefault(key, []).append(record)

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
        return max(badges, key=lambda b: parse_datetime(b.get("issued_at")) or _EPOCH)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())


CREDLY_PAGE = 50  # badges per Credly page
# A scan per template runs concurrently (a chain of pages each); one organisation-wide scan is one
# long chain. Per template is chosen while it costs at most this much more than org-wide.
PER_TEMPLATE_SLACK = 1.1


async def template_badge_counts(job: Job) -> dict[str, int]:
    """Badges issued per template (Credly's `badges_count`), from the template listing."""
    counts: dict[str, int] = {}
    async for t in job.credly.iter_templates():
        try:
            counts[str(t.get("id", "")).lower()] = int(t.get("badges_count") or 0)
        except (TypeError, ValueError):
            counts[str(t.get("id", "")).lower()] = 0
    return counts


def credly_pages(badges: int) -> int:
    """Calls to list this many badges (a listing is at least one call)."""
    return max(1, -(-badges // CREDLY_PAGE))


def _scan_calls(counts: dict[str, int], tids: set[str]) -> tuple[int, int]:
    """(one scan per template, one organisation-wide scan): calls each needs (`badges_count`)."""
    return sum(credly_pages(counts.get(t, 0)) for t in tids), credly_pages(sum(counts.values()))


def scan_per_template(counts: dict[str, int] | None, template_ids: Iterable[str]) -> bool:
    """Read the badges of these templates one scan per template (True) or in one scan of the
    organisation's badges (False), whichever needs fewer calls (`badges_count` estimates)."""
    tids = set(template_ids)
    if counts is None or not tids:
        return True
    per, org = _scan_calls(counts, tids)
    return per <= PER_TEMPLATE_SLACK * org


def scan_calls(counts: dict[str, int], template_ids: Iterable[str]) -> int:
    """Calls `each_badge` makes to read every badge of these templates (`badges_count`
    estimates): what a full read of them costs."""
    tids = set(template_ids)
    per, org = _scan_calls(counts, tids)
    return per if scan_per_template(counts, tids) else org


async def each_badge(
    job: Job,
    template_ids: Iterable[str],
    *,
    states: tuple[str, ...] | None,
    counts: dict[str, int] | None = None,
    take: Callable[[dict[str, Any]], None],
) -> None:
    """Hand `take` every badge (in `states`, or all) of these templates as the pages arrive,
    read in bulk: one paged scan per template (concurrently) or one organisation-wide scan,
    whichever is cheaper. Nothing is kept here."""
    wanted = set(template_ids)
    if not wanted:
        return
    credly = job.credly
    filt = list(states) if states else None
    if scan_per_template(counts, wanted):
        sem = asyncio.Semaphore(job.concurrency(credly))

        async def one(tid: str) -> None:
            async with sem:
                async for b in credly.iter_badges(badge_template_id=tid, states=filt):
                    if badge_template_id(b) in wanted:
                        take(b)

        await asyncio.gather(*(one(t) for t in sorted(wanted)))
    else:
        async for b in credly.iter_badges(states=filt):
            if badge_template_id(b) in wanted:
                take(b)


async def scan_badges(
    job: Job,
    template_ids: Iterable[str],
    *,
    states: tuple[str, ...] | None,
    counts: dict[str, int] | None = None,
    on_badge=None,
) -> list[dict[str, Any]]:
    """Every badge (in `states`, or all) of these templates, whole (see `each_badge`).
    `on_badge` is called for each badge as it arrives."""
    out: list[dict[str, Any]] = []

    def take(b: dict[str, Any]) -> None:
        out.append(b)
        if on_badge is not None:
            on_badge(b)

    await each_badge(job, template_ids, states=states, counts=counts, take=take)
    return out


async def held_badges_of_templates(job: Job, template_ids: Iterable[str], counts: dict[str, int] | None = None) -> HeldBadges:
    """Every pending/accepted badge of these templates (see `each_badge`), each reduced to its
    `held_record` as it arrives: no page of whole badges outlives its own reading."""
    held = HeldBadges()
    await each_badge(job, template_ids, states=HELD_STATES, counts=counts, take=held.add)
    return held


class UserDirectory:
    """Finds Docebo users for a batch. Ids (or e-mails) are added while other scans run; once
    more than PER_USER_LOOKUPS_MAX are wanted, one scan of the whole user list starts at once,
    concurrently with the rest; otherwise `resolve()` looks the few up one call each."""

    def __init__(self, job: Job, *, by: str = "id", per_user_max: int = PER_USER_LOOKUPS_MAX) -> None:
        self.job = job
        self.by = by
        self.per_user_max = per_user_max
        self.wanted: set[str] = set()
        self.found: dict[str, Learner] = {}
        self.task: asyncio.Task | None = None

    def _key(self, value: str) -> str:
        return str(value).strip().lower() if self.by == "email" else str(value)

    def want(self, value: str) -> None:
        key = self._key(value)
        if not key:
            return
        self.wanted.add(key)
        if self.task is None and len(self.wanted) > self.per_user_max:
            self.task = asyncio.ensure_future(self._scan())

    async def _scan(self) -> None:
        async for user in self.job.docebo.iter_users():
            learner = learner_from(user)
            if learner is None:
                continue
            key = learner.email.lower() if self.by == "email" else learner.user_id
            self.found.setdefault(key, learner)

    async def resolve(self) -> dict[str, Learner]:
        if self.task is not None:
            await self.task
            return {k: self.found[k] for k in self.wanted if k in self.found}
        if self.by == "email":
            return await users_by_email(self.job, self.wanted, per_user_max=self.per_user_max)
        return await users_by_id(self.job, self.wanted, per_user_max=self.per_user_max)

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


# Incremental batches: up to this many learners are looked up one call each (users, badges);
# beyond, the cheaper of that and the bulk read is taken.
PER_LEARNER_MAX = 25


async def badges_of_learners(
    job: Job, emails: Iterable[str], template_ids: Iterable[str], *, states: tuple[str, ...] | None,
    counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Every badge (in `states`, or all) of these templates held by these e-mails, for an
    incremental batch: one `recipient_email` call per learner when that is cheaper, else the
    bulk scan of the templates (`scan_badges`; `badges_count` decides — `counts`, when the
    caller has read them already)."""
    wanted = sorted({e.strip() for e in emails if e and e.strip()}, key=str.lower)
    tids = set(template_ids)
    if not wanted or not tids:
        return []
    keys = {e.lower() for e in wanted}
    if len(wanted) > PER_LEARNER_MAX:
        counts = counts or await template_badge_counts(job)
        if min(_scan_calls(counts, tids)) < len(wanted):
            found = await scan_badges(job, tids, states=states, counts=counts)
            return [b for b in found if str(b.get("recipient_email") or "").strip().lower() in keys]
    credly = job.credly
    filt = list(states) if states else None
    sem = asyncio.Semaphore(job.concurrency(credly))
    out: list[dict[str, Any]] = []

    async def one(email: str) -> None:
        async with sem:
            async for b in credly.iter_badges(recipient_email=email, states=filt):
                if badge_template_id(b) in tids and str(b.get("recipient_email") or "").strip().lower() in keys:
                    out.append(b)

    await asyncio.gather(*(one(e) for e in wanted))
    unique: dict[str, dict[str, Any]] = {}
    for b in out:
        unique.setdefault(str(b.get("id")), b)  # the first copy of each badge, in the order found
    return list(unique.values())


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
