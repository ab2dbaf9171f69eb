"""Credly → Docebo: F5 badge events and F6 the batch (full and incremental). Applying a badge to Docebo's
external trainings and certification awards: docebo_apply.py (SPEC F5, F6, L1, O2, O3, I2).

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.core.errors import ApiError
from services.flows import incremental, rules
from services.flows.base import FlowFailed, Job
from services.flows.docebo_apply import DoceboSide, _delete_training_entry, _obj, _remove_award, apply_badge, mappings_by_template
from services.flows.lookups import (
    HELD_STATES,
    PER_LEARNER_MAX,
    Learner,
    UserDirectory,
    badge_template_id,
    badges_of_learners,
    certifications_by_code,
    credly_pages,
    scan_badges,
    scan_calls,
    template_badge_counts,
    template_rows,
    users_by_email,
)
from services.store import ledger

# Above this many learners, external trainings are read without a user filter (one scan).
UNFILTERED_TRAININGS_USERS = 400


# -- F5 real-time ----------------------------------------------------------------------------------


async def badge_event(job: Job, event: dict[str, Any]) -> None:
    """F5 for one Credly `badge.*` notice: re-read the event, then `apply_badge`."""
    event_id = str(event.get("id") or "")
    if not event_id:
        raise FlowFailed("the Credly notice has no event id")
    data = await job.credly.get_event(event_id)
    event_type = str(data.get("event_type") or event.get("event_type") or "")
    badge = data.get("badge") or {}
    if not badge:
        job.skip(f"event {event_id}", f"event {event_id} ({event_type}) carries no badge: nothing to do")
        return
    job.rec.count("examined")
    tid = badge_template_id(badge)
    maps = mappings_by_template(job).get(tid, [])
    replaced = str(badge.get("replaces_badge_id") or "")
    follow = bool(replaced) and any(
        e.object_type == "external_training" and e.target != tid
        for e in ledger.find_by_origin(job.store, "credly_badge", replaced)
    )
    if not maps and not follow:
        job.skip(
            _obj(str(badge.get("recipient_email") or ""), badge),
            f"no active mapping for the template of badge {badge.get('id')}: nothing to import",
        )
        return
    email = str(badge.get("recipient_email") or "")
    learner = (await users_by_email(job, [email])).get(email.strip().lower())
    side = DoceboSide()
    if learner is not None and str(badge.get("issuer_earner_id") or "") != learner.user_id:
        await _read_side(job, side, [learner.user_id], maps_by_template={tid: maps})
    await apply_badge(job, badge, learner, maps, side, deleted=event_type == "badge.deleted")


async def _read_side(
    job: Job, side: DoceboSide, user_ids: list[str], *, maps_by_template: dict[str, list[dict[str, Any]]]
) -> None:
    """Read what Docebo holds for these learners: trainings and the awards of the mapped
    certifications."""
    await asyncio.gather(
        _read_trainings(job, side, user_ids, maps_by_template),
        _read_awards(job, side, maps_by_template, user_ids=user_ids if len(user_ids) == 1 else None),
    )


async def _read_trainings(
    job: Job, side: DoceboSide, user_ids: list[str], maps_by_template: dict[str, list[dict[str, Any]]]
) -> None:
    """External trainings of these learners (filtered by user, or one unfiltered scan when many)."""
    if not any(m["import_as_external_training"] for ms in maps_by_template.values() for m in ms) or not user_ids:
        return
    unique = sorted(set(user_ids), key=str)
    filt = unique if len(unique) <= UNFILTERED_TRAININGS_USERS else None
    async for t in job.docebo.iter_external_trainings(user_ids=filt):
        side.add_training(t)


async def _read_awards(
    job: Job, side: DoceboSide, maps_by_template: dict[str, list[dict[str, Any]]], *, user_ids: list[str] | None = None
) -> None:
    """Certifications, and every award of the mapped certifications (one scan)."""
    codes = sorted(
        {
            str(m["certification_code"]).strip()
            for ms in maps_by_template.values()
            for m in ms
            if str(m["certification_code"] or "").strip()
        }
    )
    if not codes:
        return
    side.certs.update(await certifications_by_code(job))
    ids = sorted({str(side.certs[c].get("id_cert")) for c in codes if c in side.certs})
    if not ids:
        return
    async for a in job.docebo.iter_certification_awards(user_ids=user_ids, certification_ids=ids):
        side.add_award(a)


# -- F6 batch --------------------------------------------------------------------------------------


def _fingerprint(job: Job, maps: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What decides which badges qualify and what their Docebo objects look like
    (incremental.py): a change here makes the next run full."""
    rows = template_rows(job)
    s = job.settings
    return {
        "active mappings": sorted(
            (tid, bool(m["import_as_external_training"]), str(m["certification_code"] or "").strip())
            for tid, ms in maps.items()
            for m in ms
        ),
        "mapped template names": sorted((tid, str((rows.get(tid) or {}).get("name") or "")) for tid in maps),
        "EXTERNAL_TRAINING_INSTITUTE_NAME": s.external_training_institute_name,
        "BATCH_SYNC_START_DATE": str(s.batch_sync_start_date or ""),
        "CREDLY_DEFAULT_EXPIRATION_DAYS": str(s.default_expiration_days),
        "SYNC_REVOCATION": str(s.sync_revocation),
        "CREDLY_INTEGRATION_MASTER": s.integration_master,
    }


async def batch_credly_to_docebo(job: Job) -> None:
    """F6: every badge of every actively mapped template → F5, in bulk (module doc) — or,
    incremental (services/flows/incremental.py), the learners whose badges of those templates
    changed since the last good run, through the same decisions."""
    start = job.settings.batch_sync_start_date
    maps = mappings_by_template(job)
    inc = incremental.begin(job, "credly_to_docebo", {"credly": job.credly}, _fingerprint(job, maps))
    job.rec.info(
        f"{len(maps)} badge templates have an active mapping to Docebo"
        + (f"; badges issued on or after {start.isoformat()}" if start else "")
    )
    if not maps:
        return
    counts: dict[str, int] = {}  # the templates' badge counts, once read (by either kind of run)
    if inc.incremental:
        try:
            if await _incremental_f6(job, inc, maps, counts):
                return
        except incremental.FilterIgnored as exc:
            inc.fallback(exc)
    await _full_f6(job, maps, counts)


async def _full_f6(job: Job, maps: dict[str, list[dict[str, Any]]], counts: dict[str, int]) -> None:
    """F6 over every badge of the mapped templates. `counts`: the templates' badge counts if
    already read (else read here when they choose between ways of reading)."""
    start = job.settings.batch_sync_start_date
    # 1. Concurrently: every badge of the mapped templates (per template or org-wide, whichever
    #    is cheaper), the awards of the mapped certifications, and — once more than a few
    #    learners are involved — the user list.
    side = DoceboSide()
    users = UserDirectory(job, by="email")
    try:
        if not counts and len(maps) > 1:
            counts.update(await template_badge_counts(job))
        badges, _ = await asyncio.gather(
            scan_badges(
                job, maps, states=None, counts=counts or None, on_badge=lambda b: users.want(str(b.get("recipient_email") or ""))
            ),
            _read_awards(job, side, maps),
        )
        job.check_cancel()
        seen_ids = {str(b.get("id")) for b in badges}
        in_range = [b for b in badges if rules.on_or_after(b.get("issued_at"), start)]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for b in in_range:
            groups.setdefault((str(b.get("recipient_email") or "").strip().lower(), badge_template_id(b)), []).append(b)
        gone = _gone_entries(job, maps, seen_ids)
        job.rec.info(
            f"read {len(badges)} badges ({len(in_range)} in range) for {len(groups)} learner/template pairs; {len(gone)} "
            "objects of badges deleted in Credly"
        )
        # 2. The learners, then their external trainings.
        learners = await users.resolve() if groups else {}
    finally:
        users.cancel()
    await _read_trainings(job, side, sorted({ln.user_id for ln in learners.values()}), maps)
    job.check_cancel()
    await _apply_groups(job, groups, gone, learners, side, maps)


def _gone_entries(
    job: Job, maps: dict[str, list[dict[str, Any]]], seen_ids: set[str], subjects: set[str] | None = None
) -> list[ledger.LedgerEntry]:
    """Objects the ledger tied to badges of the scanned templates that Credly no longer lists
    (deleted there); `subjects`: only these Docebo users (an incremental run reads only theirs)."""
    start = job.settings.batch_sync_start_date
    gone: list[ledger.LedgerEntry] = []
    for kind in ("external_training", "certification_award"):
        for e in ledger.live_entries(job.store, kind).values():
            if e.status == "active" and e.origin_type == "credly_badge" and e.origin_id not in seen_ids:
                if subjects is not None and e.subject not in subjects:
                    continue
                # only badges of the templates just scanned can be known to be gone
                if str(e.details.get("template_id") or "") in maps and rules.on_or_after(e.details.get("issued_at"), start):
                    gone.append(e)
    return gone


async def _apply_groups(
    job: Job,
    groups: dict[tuple[str, str], list[dict[str, Any]]],
    gone: list[ledger.LedgerEntry],
    learners: dict[str, Learner],
    side: DoceboSide,
    maps: dict[str, list[dict[str, Any]]],
) -> None:
    """F5 for every (learner, template) group, and the removal of objects of deleted badges;
    the same for full and incremental runs."""
    items: list[tuple[str, Any]] = [("group", k) for k in sorted(groups)] + [("gone", e) for e in gone]
    job.rec.set_total(len(items))

    async def work(item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "gone":
            await _gone(job, value, learners, side)
            return
        email, tid = value
        group = groups[value]
        job.rec.count("examined", len(group))
        badge, other_template = _representative(group)
        learner = learners.get(email)
        try:
            await apply_badge(
                job,
                badge,
                learner,
                maps.get(tid, []),
                side,
                replaced_by_other_template=other_template,
                follow_replacement=False,
            )
        except ApiError as exc:
            job.item_failed(_obj(learner or email, badge), exc, what=f"import badge {badge.get('id')}")

    await job.for_each(items, work, limit=job.concurrency(job.docebo))


async def _incremental_f6(
    job: Job, inc: incremental.Incremental, maps: dict[str, list[dict[str, Any]]], counts: dict[str, int]
) -> bool:
    """F6 over the badges changed in Credly since the watermark (incremental.py). Returns False
    when the run should go on as a full run: decided on the first page when the changed badges
    alone are more pages than a full run reads (`_changes_outweigh_full`), else after the scan
    when too many learners are touched.

    1. One scan of the organisation's badges updated since the bound (any template, any state).
    2. For each learner with a changed badge of a mapped template: all their badges of the
       mapped templates (so a pair is decided on its whole group, as in a full run), their
       Docebo user, external trainings and awards (user filters) — then `_apply_groups`."""
    start = job.settings.batch_sync_start_date
    since = inc.since["credly"]
    pairs: set[tuple[str, str]] = set()
    emails: dict[str, str] = {}
    listing: dict[str, Any] = {}  # the first page's metadata: `total_count` of the changed badges
    first = True
    async for b in inc.changed(
        job.credly.iter_badges(updated_at_min=since, metadata=listing),
        "credly",
        "badges",
        "updated_at",
        key=lambda b: b.get("id"),
    ):
        if first:
            first = False
            why = await _changes_outweigh_full(job, listing, maps, counts)
            if why:
                inc.to_full(why)
                return False
        tid = badge_template_id(b)
        email = str(b.get("recipient_email") or "").strip()
        if tid in maps and email:
            pairs.add((email.lower(), tid))
            emails.setdefault(email.lower(), email)
    job.check_cancel()
    found = ", ".join(f"{n} {what}" for what, n in sorted(inc.changes.items())) or "nothing"
    if not pairs:
        job.rec.info(f"changed since {since.isoformat()}: {found}; none of a mapped template")
        return True
    if len(emails) > incremental.MAX_TOUCHED:
        inc.to_full(f"{len(emails)} learners have changed badges ({found}): reading everything costs less")
        return False
    job.rec.info(f"changed since {since.isoformat()}: {found}; {len(pairs)} learner/template pairs to look at")
    side = DoceboSide()
    users = UserDirectory(job, by="email", per_user_max=PER_LEARNER_MAX)
    for email in emails:
        users.want(email)
    try:
        badges, learners = await incremental.gather(
            badges_of_learners(job, emails.values(), maps, states=None, counts=counts or None), users.resolve()
        )
    finally:
        users.cancel()
    job.check_cancel()
    seen_ids = {str(b.get("id")) for b in badges}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for b in badges:
        key = (str(b.get("recipient_email") or "").strip().lower(), badge_template_id(b))
        if key in pairs and rules.on_or_after(b.get("issued_at"), start):
            groups.setdefault(key, []).append(b)
    user_ids = sorted({ln.user_id for ln in learners.values()})
    gone = _gone_entries(job, maps, seen_ids, subjects=set(user_ids))
    await asyncio.gather(_read_trainings(job, side, user_ids, maps), _read_awards(job, side, maps, user_ids=user_ids))
    job.check_cancel()
    await _apply_groups(job, groups, gone, learners, side, maps)
    return True


async def _changes_outweigh_full(
    job: Job, listing: dict[str, Any], maps: dict[str, list[dict[str, Any]]], counts: dict[str, int]
) -> str:
    """Why this incremental run should be a full run at once ('' when it should go on), from the
    first page of the changed badges alone: Credly's `total_count` says how many there are, and
    they come one page after another (`next_page_url`), whatever their templates. When they are
    more pages than a full run reads of the mapped templates' badges (per template or
    organisation-wide, `badges_count` estimates: one listing of the templates), the full run
    reads less — right after a large F7, say. Up to MAX_TOUCHED changed badges are a few pages
    and at most that many learners: no check and no extra call. A listing without `total_count`
    leaves the decision to the scan (more than MAX_TOUCHED learners, after it).

    Not weighed: the full run's bulk reads of Docebo (users, trainings, awards), which the
    incremental run makes per learner instead — so a burst of changes on templates that are not
    mapped can make a run full that would have stayed cheap; it is still correct, and the next
    run is incremental again."""
    try:
        changed = int(listing["total_count"])
    except (KeyError, TypeError, ValueError):
        return ""
    if changed <= incremental.MAX_TOUCHED:
        return ""
    if not counts:
        counts.update(await template_badge_counts(job))
    chain, full = credly_pages(changed), scan_calls(counts, maps)
    if chain <= full:
        return ""
    return (
        f"{changed:,} badges changed ({chain:,} pages, read one after the other): more than the "
        f"{full:,} pages of every badge of the {len(maps)} mapped templates that a full run reads"
    )


def _representative(group: list[dict[str, Any]]) -> tuple[dict[str, Any], bool | None]:
    """The badge that decides a (learner, template) pair: the newest live one; else the newest
    revoked; else a replaced one (replaced by another template when its replacement is not among
    this template's badges); else the newest."""

    def newest(bs: list[dict[str, Any]]) -> dict[str, Any]:
        return max(bs, key=lambda b: (str(b.get("issued_at") or ""), str(b.get("id"))))

    live = [b for b in group if b.get("state") in HELD_STATES]
    if live:
        return newest(live), None
    revoked = [b for b in group if b.get("state") == "revoked"]
    if revoked:
        return newest(revoked), None
    replaced = [b for b in group if b.get("state") == "replaced"]
    if replaced:
        ids = {str(b.get("id")) for b in group}
        b = newest(replaced)
        return b, str(b.get("replacement_badge_id") or "") not in ids
    return newest(group), None


async def _gone(job: Job, entry: ledger.LedgerEntry, learners: dict[str, Learner], side: DoceboSide) -> None:
    """An object whose badge was deleted in Credly (F5 badge.deleted, found by the batch)."""
    learner = next((ln for ln in learners.values() if ln.user_id == entry.subject), None)
    obj = f"Docebo user {entry.subject} / {entry.object_type.replace('_', ' ')} {entry.object_id}"
    job.rec.count("examined")
    if not job.settings.sync_revocation:
        job.skip(obj, f"badge {entry.origin_id} was deleted in Credly; SYNC_REVOCATION is false: the Docebo object is kept")
        return
    learner = learner or Learner(entry.subject, "", "", "")
    why = f"badge {entry.origin_id} was deleted in Credly"
    try:
        if entry.object_type == "external_training":
            await _delete_training_entry(job, learner, entry, side, why)
        else:
            fake = {"id": entry.origin_id}
            await _remove_award(job, learner, fake, entry.target, side, why=why)
    except ApiError as exc:
        job.item_failed(obj, exc, what="remove the object of a deleted badge")
