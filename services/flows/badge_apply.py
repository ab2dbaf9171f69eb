"""Applying badge decisions in Credly for F3/F4/F7 (SPEC F3c, E1, O1, O3, O5): the ledger protocol around
issue, batch issue, replace and revoke calls. What to do comes from decisions.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from services.core.errors import ApiError
from services.flows import decisions, rules
from services.flows.base import Job
from services.flows.lookups import (
    HeldBadges,
    Learner,
)
from services.store import ledger

# Badges per issue call in the batch (Credly's /badges/batch takes 50).
ISSUE_BATCH = 50


@dataclasses.dataclass
class Candidate:
    """One badge a Docebo object calls for."""

    user_id: str
    template_id: str
    template_name: str
    rule: str  # F3a | F3b | F4
    origin_type: str  # course | learning_plan | certification_award
    origin_id: str
    origin_label: str  # e.g. "course 77 'Safety 101'"
    issued_at: dt.datetime
    docebo_expiry: Any = None
    # F4 semantics: "award" issues if none; "update" also replaces a held badge whose dates differ.
    mode: str = "award"

    @property
    def priority(self) -> tuple:
        """F4 first and, among awards, the newest (O5: a renewal beats the older award still in
        force); among completions the earliest."""
        moment = self.issued_at.timestamp()
        return (0 if self.rule == "F4" else 1, -moment if self.rule == "F4" else moment, self.rule, self.origin_id)


def _object(learner: Learner, template_id: str) -> str:
    return f"{learner.email.lower()} / template {template_id}"


def _issued_id(result: Any) -> str | None:
    """The id of the badge in issue_badge's result (Issued / Recovered / a dict); None when
    nothing was issued (AlreadyHolds): the ledger abandons the intent."""
    if type(result).__name__ == "AlreadyHolds":
        return None
    for attr in ("badge", "value"):
        value = getattr(result, attr, None)
        if isinstance(value, dict):
            return str(value.get("id"))
    if isinstance(result, dict):
        return str(result.get("id"))
    return None


def _intent(learner: Learner, cand: Candidate) -> ledger.Intent:
    return ledger.Intent("badge", learner.email, cand.template_id, cand.origin_type, cand.origin_id)


def source_of(cand: Candidate) -> decisions.Source:
    """The candidate as the decisions' record (services/flows/decisions.py)."""
    return decisions.Source(
        user_id=cand.user_id,
        template_id=cand.template_id,
        rule=cand.rule,
        origin_type=cand.origin_type,
        origin_id=cand.origin_id,
        issued_at=cand.issued_at,
        expires_at=rules.parse_datetime(cand.docebo_expiry),
        mode=cand.mode,
    )


def issued_before(entry: ledger.LedgerEntry | None) -> decisions.IssuedBefore | None:
    """The ledger's last badge row as the decisions' record (O3: its source and the source's date)."""
    if entry is None:
        return None
    return decisions.IssuedBefore(
        badge_id=entry.object_id,
        status=entry.status,
        origin_type=entry.origin_type,
        origin_id=entry.origin_id,
        origin_date=rules.parse_datetime(entry.origin_date or entry.details.get("issued_at")),
    )


def badge_body(job: Job, learner: Learner, cand: Candidate) -> dict[str, Any]:
    return rules.badge_fields(
        email=learner.email,
        first_name=learner.first_name,
        last_name=learner.last_name,
        template_id=cand.template_id,
        issued_at=cand.issued_at,
        docebo_user_id=learner.user_id,
        expires_at=decisions.badge_expiry(cand.docebo_expiry, job.ctx.now(), job.settings.default_expiration_days),
        evidence_items=rules.evidence(job.settings.evidence_title, cand.rule, cand.origin_label),
    )


def _details(cand: Candidate, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": cand.rule,
        "issued_at": body["issued_at"],
        "expires_at": body["expires_at"],
        "user_id": body["issuer_earner_id"],
    }


async def ensure_badge(
    job: Job,
    learner: Learner,
    cand: Candidate,
    held_index: HeldBadges,
    entry: ledger.LedgerEntry | None,
    queue: list[tuple[Learner, Candidate, ledger.LedgerEntry | None]] | None = None,
    last_badges: ledger.LastBadges | None = None,
) -> None:
    """Bring Credly to "the learner holds this template, with these dates" (see module doc).
    With a `queue`, a badge to issue is appended to it (issued later in batches) instead."""
    obj = _object(learner, cand.template_id)
    store = job.store
    if not learner.email:
        job.skip(obj, f"Docebo user {learner.user_id} has no e-mail address: no badge for {cand.origin_label}", level="warning")
        return
    held = held_index.get(
        learner.email, cand.template_id, prefer_id=entry.object_id if entry else "", user_id=learner.user_id
    )
    if held is None and entry is None:
        held, entry = _held_under_former_email(job, learner, cand, held_index, _last(job, learner, cand, last_badges))
    if held is not None:
        held_id = str(held.get("id"))
        if entry is not None and not job.dry_run:
            if entry.status == "intent":
                if ledger.intent_is_orphaned(store, entry, job.run_id):
                    entry = ledger.recover(store, entry, held_id)
                    job.rec.info(f"recovered badge {held_id}: issued by an interrupted run, found in Credly", object=obj)
                else:
                    job.skip(obj, f"run {entry.run_id} is issuing this badge right now")
                    return
            elif entry.object_id != held_id and str(held.get("replaces_badge_id") or "") == entry.object_id:
                entry = ledger.replace(store, entry.id, held_id, run_id=job.run_id)
    elif entry is not None and entry.status == "intent" and not ledger.intent_is_orphaned(store, entry, job.run_id):
        job.skip(obj, f"run {entry.run_id} is issuing this badge right now")
        return
    before = _last(job, learner, cand, last_badges)
    decision = decisions.decide_badge(
        source_of(cand),
        decisions.HeldBadge.from_record(held) if held is not None else None,
        issued_before(before),
        now=job.ctx.now(),
        default_days=job.settings.default_expiration_days,
    )
    if decision.action == "nothing":
        job.skip(obj, f"{learner.email}, {cand.template_name!r}, {cand.origin_label}: {decision.reason} ({decision.rule})")
        return
    if decision.action == "replace" and held is not None:
        job.rec.info(f"{decision.reason} ({decision.rule})", object=obj)
        await _replace(job, learner, cand, held, entry)
        return
    if entry is not None and entry.status == "active":
        if not job.dry_run:
            ledger.mark(store, entry.id, "revoked")
        entry = None
    if decision.rule != cand.rule:  # issued again after an earlier badge (O3, F3c): say why
        job.rec.info(f"{cand.template_name!r} for {cand.origin_label}: {decision.reason} ({decision.rule})", object=obj)
    if queue is not None:
        queue.append((learner, cand, entry))
        return
    await _issue(job, learner, cand, entry)


def _last(job: Job, learner: Learner, cand: Candidate, last_badges: ledger.LastBadges | None) -> ledger.LedgerEntry | None:
    if last_badges is not None:
        return last_badges.get(learner.user_id, learner.email, cand.template_id)
    return ledger.last_badge(job.store, learner.user_id, learner.email, cand.template_id)


def _held_under_former_email(
    job: Job, learner: Learner, cand: Candidate, held_index: HeldBadges, last: ledger.LedgerEntry | None
) -> tuple[dict[str, Any] | None, ledger.LedgerEntry | None]:
    """I1: the learner's e-mail changed in Docebo; the ledger (by user id) names the badge the product
    issued to the former address, which Credly keeps. Logged once per badge, naming both addresses."""
    if last is None or last.status != "active" or last.subject == learner.email.strip().lower():
        return None, None
    held = held_index.get(last.subject, cand.template_id, prefer_id=last.object_id, user_id=learner.user_id)
    if held is None or str(held.get("id")) != last.object_id:
        return None, None
    job.rec.info(
        f"Docebo user {learner.user_id}'s e-mail changed from {last.subject} to {learner.email}: badge {last.object_id} "
        f"({cand.template_name!r}) stays with {last.subject} in Credly; nothing is issued to the new address (I1)",
        object=_object(learner, cand.template_id),
    )
    return held, last


async def _issue(job: Job, learner: Learner, cand: Candidate, entry: ledger.LedgerEntry | None) -> None:
    obj = _object(learner, cand.template_id)
    body = badge_body(job, learner, cand)
    message = _issue_message(learner, cand)
    if job.dry_run:
        job.rec.count("issued")
        job.action("issue_badge", obj, message)
        return
    created = await ledger.create_once(
        job.store,
        _intent(learner, cand),
        _details(cand, body),
        lambda: job.credly.issue_badge(body),
        _issued_id,
        run_id=job.run_id,
        entry=entry,
    )
    if created.conflict is not None:
        job.skip(obj, f"another run is issuing this badge ({created.conflict})")
        return
    if created.object_id is None:
        job.skip(obj, f"Credly reports that {learner.email} already holds {cand.template_name!r}: not issued (F3c)")
        return
    job.rec.count("issued")
    job.action("issue_badge", obj, message + f": badge {created.object_id}")


async def issue_many(job: Job, items: list[tuple[Learner, Candidate, ledger.LedgerEntry | None]]) -> None:
    """Issue many badges through Credly's batch call (ISSUE_BATCH per call, chunks sent
    concurrently), with the ledger protocol step by step (services/store/ledger.py): the intents of a
    chunk are committed before its call, each result settles its own intent."""
    if not items:
        return
    if job.dry_run:
        for learner, cand, _ in items:
            job.rec.count("issued")
            job.action("issue_badge", _object(learner, cand.template_id), _issue_message(learner, cand))
            job.rec.advance()
        return
    chunks = [items[i : i + ISSUE_BATCH] for i in range(0, len(items), ISSUE_BATCH)]

    async def one(chunk: list[tuple[Learner, Candidate, ledger.LedgerEntry | None]]) -> None:
        store = job.store
        ready: list[tuple[Learner, Candidate, ledger.LedgerEntry, dict[str, Any]]] = []
        with store.write():  # the chunk's intents in one transaction
            for learner, cand, entry in chunk:
                body = badge_body(job, learner, cand)
                try:
                    opened = ledger.open_intent(
                        store, _intent(learner, cand), _details(cand, body), run_id=job.run_id, entry=entry
                    )
                except ledger.IntentConflict as exc:
                    job.skip(_object(learner, cand.template_id), f"another run is issuing this badge ({exc})")
                    continue
                ready.append((learner, cand, opened, body))
        if not ready:
            job.rec.advance(len(chunk))
            return
        try:
            results = await job.credly.issue_badges_batch([body for *_, body in ready])
        except ApiError as exc:
            results = [exc] * len(ready)
        for (learner, cand, entry, _), result in zip(ready, results, strict=True):
            obj = _object(learner, cand.template_id)
            if isinstance(result, ApiError):
                ledger.settle_failure(store, entry.id, result)
                job.item_failed(obj, result, what=f"issue {cand.template_name!r}")
                continue
            badge_id = _issued_id(result)
            ledger.settle(store, entry.id, badge_id)
            if badge_id is None:
                job.skip(obj, f"Credly reports that {learner.email} already holds {cand.template_name!r}: not issued (F3c)")
                continue
            job.rec.count("issued")
            job.action("issue_badge", obj, _issue_message(learner, cand) + f": badge {badge_id}")
        job.rec.advance(len(chunk))

    await job.for_each(chunks, one, limit=job.concurrency(job.credly), progress=False)


def _issue_message(learner: Learner, cand: Candidate) -> str:
    return f"issue {cand.template_name!r} to {learner.label} for {cand.origin_label} ({cand.rule})"


async def _replace(job: Job, learner: Learner, cand: Candidate, held: dict[str, Any], entry: ledger.LedgerEntry | None) -> None:
    obj = _object(learner, cand.template_id)
    body = badge_body(job, learner, cand)
    message = (
        f"replace badge {held.get('id')} of {learner.label} ({cand.template_name!r}) with the dates of "
        f"{cand.origin_label}: issued {body['issued_at']}, expires {body['expires_at']}"
    )
    if job.dry_run:
        job.rec.count("replaced")
        job.action("replace_badge", obj, message)
        return
    fields = {k: v for k, v in body.items() if k != "recipient_email"}
    new = await job.credly.replace_badge(str(held.get("id")), fields)
    new_id = str((new or {}).get("id") or "")
    store = job.store
    if entry is not None and entry.status == "active" and entry.object_id == str(held.get("id")):
        ledger.replace(
            store,
            entry.id,
            new_id,
            details=_details(cand, body),
            run_id=job.run_id,
            origin_type=cand.origin_type,
            origin_id=cand.origin_id,
        )
    else:
        if entry is not None and entry.status == "active":
            ledger.mark(store, entry.id, "replaced")
        ledger.record_active(
            store,
            object_type="badge",
            subject=learner.email,
            target=cand.template_id,
            object_id=new_id,
            origin_type=cand.origin_type,
            origin_id=cand.origin_id,
            details=_details(cand, body),
            run_id=job.run_id,
        )
    job.rec.count("replaced")
    job.action("replace_badge", obj, message + f": new badge {new_id}")


async def revoke_badge(
    job: Job,
    learner: Learner,
    template_id: str,
    template_name: str,
    held_index: HeldBadges,
    why: str,
    *,
    kept_by: str = "",
    rule: str = "F4",
) -> None:
    """Revoke the learner's badge of a template when decisions.decide_revoke says so (O1, O4)."""
    obj = _object(learner, template_id)
    entry = ledger.live_entry(job.store, "badge", learner.email, template_id)
    held = held_index.get(learner.email, template_id, prefer_id=entry.object_id if entry else "", user_id=learner.user_id)
    decision = decisions.decide_revoke(
        decisions.HeldBadge.from_record(held) if held is not None else None,
        learner.user_id,
        issued_before(entry),
        sync_revocation=bool(job.settings.sync_revocation),
        why=why,
        kept_by=kept_by,
        rule=rule,
    )
    if decision.action != "revoke" or held is None:
        job.skip(obj, f"{learner.email}, {template_name!r}: {decision.reason} ({decision.rule})")
        return
    message = f"revoke badge {held.get('id')} ({template_name!r}) of {learner.label}: {why} ({decision.rule})"
    if job.dry_run:
        job.rec.count("revoked")
        job.action("revoke_badge", obj, message)
        return
    await job.credly.revoke_badge(str(held.get("id")), f"credly-console: {why}")
    if entry is not None and entry.object_id == str(held.get("id")):
        ledger.mark(job.store, entry.id, "revoked")
    job.rec.count("revoked")
    job.action("revoke_badge", obj, message)
