"""Docebo → Credly: F3 course completion, F4 certification events, F7 the batch over both.

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from services.core.errors import ApiError
from services.flows import decisions, incremental, rules
from services.flows.base import FlowFailed, Job, collect
from services.flows.dropdown import FIELD_ID_META, find_course_field
from services.flows.lookups import (
    HELD_STATES,
    PER_LEARNER_MAX,
    HeldBadges,
    Learner,
    UserDirectory,
    active_mappings,
    badges_of_learners,
    certifications_by_code,
    held_badges_of_learner,
    held_badges_of_templates,
    template_badge_counts,
    template_rows,
    template_usable,
    users_by_id,
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
    before = ledger.last_badge(store, learner.user_id, learner.email, cand.template_id)
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


# -- helpers -------------------------------------------------------------------------------------


def _field_value(job: Job, course: dict[str, Any], field_id: str) -> str:
    getter = getattr(type(job.docebo), "course_field_value", None)
    value = getter(course, field_id) if getter else course.get(f"field_{field_id}")
    if value is None or value == "" or value == 0 or value == "0":
        return ""
    return str(value)


async def _course_field_id(job: Job) -> str:
    """The course dropdown field's id: remembered by F2, else looked up by name (one call)."""
    fid = job.store.get_meta(FIELD_ID_META, "") or ""
    if fid:
        return fid
    field = await find_course_field(job, job.settings.course_additional_field)
    if field is None:
        job.rec.warning(
            f"the course field {job.settings.course_additional_field!r} does not exist in Docebo yet "
            "(run the dropdown sync): no course names a badge template (F3a)"
        )
        return ""
    return str(field.get("id"))


def _dropdown_templates(job: Job) -> dict[str, dict[str, Any]]:
    """F3a: option id → active template row."""
    return {
        str(r["dropdown_element_id"]): dict(r)
        for r in job.store.db.query("SELECT * FROM badge_templates WHERE is_active = 1 AND dropdown_element_id != ''")
    }


def _lp_mappings(job: Job) -> dict[str, list[dict[str, Any]]]:
    """F3b: learning plan id → active mappings (whose template is not switched off in T)."""
    rows = template_rows(job)
    out: dict[str, list[dict[str, Any]]] = {}
    for m in active_mappings(job):
        if m["learning_plan_id"] and template_usable(rows, m["template_id"]):
            out.setdefault(str(m["learning_plan_id"]), []).append(m)
    return out


def _cert_mappings(job: Job, code: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """F4: certification code → active mappings (whose template is not switched off in T)."""
    rows = template_rows(job)
    out: dict[str, list[dict[str, Any]]] = {}
    for m in active_mappings(job):
        c = str(m["certification_code"] or "").strip()
        if c and (code is None or c == code) and template_usable(rows, m["template_id"]):
            out.setdefault(c, []).append(m)
    return out


def _template_name(job: Job, template_id: str, fallback: str = "") -> str:
    # T does not change during a run: read it once per job, not once per candidate (a batch
    # has tens of thousands; issue 8 measured 11 s of a 17 s F7 run here).
    rows = getattr(job, "_template_rows", None)
    if rows is None:
        rows = job._template_rows = template_rows(job)
    row = rows.get(template_id.lower())
    return row["name"] if row else (fallback or template_id)


def _enrollment_user(e: dict[str, Any]) -> str:
    return str(e.get("user_id", e.get("id_user", "")))


def _enrollment_course(e: dict[str, Any]) -> str:
    return str(e.get("course_id", e.get("id_course", e.get("id", ""))))


def _completion_date(e: dict[str, Any]) -> Any:
    for k in ("enrollment_completion_date", "completion_date", "course_complete_date", "date_complete", "completed_at"):
        if e.get(k):
            return e[k]
    return None


def _validity_end(e: dict[str, Any]) -> Any:
    for k in ("enrollment_date_end_validity", "enrollment_validity_end", "date_expire_validity", "validity_end"):
        if e.get(k):
            return e[k]
    return None


def _lp_id(e: dict[str, Any]) -> str:
    return str(e.get("learning_plan_id", e.get("id_path", e.get("lp_id", ""))))


def _award_fields(a: dict[str, Any]) -> tuple[str, str, Any, Any]:
    return (
        str(a.get("id_award", a.get("id", ""))),
        str(a.get("user_id", a.get("id_user", ""))),
        a.get("issued_on"),
        a.get("expire_on"),
    )


def _course_label(course: dict[str, Any] | None, course_id: str) -> str:
    name = (course or {}).get("name") or (course or {}).get("course_name") or ""
    return f"course {course_id}" + (f" {name!r}" if name else "")


# -- F3 real-time ----------------------------------------------------------------------------------


async def course_completion(job: Job, payload: dict[str, Any]) -> None:
    """F3 for one `course.enrollment.completed` payload."""
    user_id = str(payload.get("user_id") or "")
    course_id = str(payload.get("course_id") or "")
    if not user_id or not course_id:
        raise FlowFailed("the completion payload has no user_id or course_id")
    status = str(payload.get("status") or "completed")
    if status != "completed":
        job.skip(f"user {user_id} / course {course_id}", f"enrollment status is {status!r}, not completed: nothing to do")
        return
    job.rec.count("examined")
    completed_at = (
        rules.parse_datetime(
            payload.get("completion_date") or payload.get("enrollment_completion_date") or payload.get("fired_at")
        )
        or job.ctx.now()
    )
    expiry = _validity_end(payload)
    docebo = job.docebo
    learners = await users_by_id(job, [user_id])
    learner = learners.get(user_id)
    if learner is None:
        job.skip(f"user {user_id}", f"Docebo user {user_id} was not found: no badge for course {course_id}", level="warning")
        return
    cands: list[Candidate] = []
    # F3a
    course = await docebo.get_course(course_id)
    label = _course_label(course, course_id)
    field_id = await _course_field_id(job)
    if field_id:
        option = _field_value(job, course, field_id)
        tpl = _dropdown_templates(job).get(option) if option else None
        if tpl is not None:
            cands.append(
                Candidate(
                    learner.user_id,
                    str(tpl["template_id"]).lower(),
                    tpl["name"],
                    "F3a",
                    "course",
                    course_id,
                    label,
                    completed_at,
                    expiry,
                )
            )
        elif option:
            job.rec.info(f"{label}: dropdown option {option} names no active template", object=label)
    # F3b
    lp_maps = _lp_mappings(job)
    if lp_maps:
        containing = await _plans_containing(job, course, course_id, list(lp_maps))
        if containing:
            done = {}
            async for e in docebo.iter_learning_plan_enrollments(lp_ids=containing, user_ids=[user_id], statuses=["completed"]):
                if (
                    _enrollment_user(e) == user_id
                    and str(e.get("enrollment_status", e.get("status", "completed"))) == "completed"
                ):
                    done[_lp_id(e)] = e
            for lp in containing:
                if lp not in done:
                    job.rec.info(f"{learner.label} has not completed learning plan {lp} yet", object=f"learning plan {lp}")
                    continue
                when = rules.parse_datetime(_completion_date(done[lp])) or completed_at
                for m in lp_maps[lp]:
                    tid = str(m["template_id"]).lower()
                    cands.append(
                        Candidate(
                            learner.user_id,
                            tid,
                            _template_name(job, tid, m["template_name"]),
                            "F3b",
                            "learning_plan",
                            lp,
                            f"learning plan {lp}",
                            when,
                            _validity_end(done[lp]),
                        )
                    )
    if not cands:
        job.rec.info(f"{label} completed by {learner.label}: no badge template applies", object=label)
        return
    held = await held_badges_of_learner(job, learner.email)
    for cand in _dedupe(cands):
        entry = ledger.live_entry(job.store, "badge", learner.email, cand.template_id)
        try:
            await ensure_badge(job, learner, cand, held, entry)
        except ApiError as exc:
            job.item_failed(_object(learner, cand.template_id), exc, what=f"issue {cand.template_name!r}")


async def _plans_containing(job: Job, course: dict[str, Any], course_id: str, lp_ids: list[str]) -> list[str]:
    """Mapped learning plans that contain the course: from the course detail when it lists its
    plans, else from each mapped plan's course list."""
    listed = course.get("learningplans") if isinstance(course, dict) else None
    if isinstance(listed, list):
        ids = {str(x.get("id", x.get("learning_plan_id")) if isinstance(x, dict) else x) for x in listed}
        return [lp for lp in lp_ids if lp in ids]
    out = []
    for lp in lp_ids:
        async for c in job.docebo.iter_learning_plan_courses(lp):
            if str(c.get("id_course", c.get("course_id", c.get("id")))) == course_id:
                out.append(lp)
                break
    return out


def _current(job: Job, cands: list[Candidate]) -> list[Candidate]:
    """Batch decision: a Docebo object whose own expiry has passed gives no badge (issuing an
    already expired credential would only mail the learner about it); one whose expiry is not
    after its issue date cannot be issued (Credly refuses it). Both are logged and skipped."""
    now = job.ctx.now()
    out = []
    for c in cands:
        expiry = rules.parse_datetime(c.docebo_expiry)
        obj = f"user {c.user_id} / template {c.template_id}"
        if expiry is not None and expiry <= c.issued_at:
            job.skip(
                obj,
                f"{c.origin_label}: its expiry {expiry.date()} is not after its date {c.issued_at.date()}: no badge",
                level="warning",
            )
        elif expiry is not None and expiry <= now:
            job.skip(obj, f"{c.origin_label} expired on {expiry.date()}: no badge for it")
        else:
            out.append(c)
    return out


def _dedupe(cands: list[Candidate]) -> list[Candidate]:
    """One candidate per template (per learner): Candidate.priority decides (O5)."""
    best: dict[tuple[str, str], Candidate] = {}
    for c in cands:
        key = (c.user_id, c.template_id)
        if key not in best or c.priority < best[key].priority:
            best[key] = c
    return sorted(best.values(), key=lambda c: (c.user_id, c.template_id))


# -- F4 real-time ----------------------------------------------------------------------------------


async def certification_event(job: Job, event: str, payload: dict[str, Any]) -> None:
    """F4 for one `certification.awarded|updated|revoked` payload."""
    kind = event.rsplit(".", 1)[-1]
    if kind not in ("awarded", "updated", "revoked"):
        raise FlowFailed(f"unknown certification event {event!r}")
    user_id = str(payload.get("user_id") or "")
    code = str(payload.get("certification_code") or "").strip()
    award_id = str(payload.get("award_id") or "")
    if not code and payload.get("certification_id") is not None:
        certs = await certifications_by_code(job)
        code = next((c for c, v in certs.items() if str(v.get("id_cert")) == str(payload["certification_id"])), "")
    if not user_id or not code:
        raise FlowFailed("the certification payload has no user_id or certification code")
    job.rec.count("examined")
    maps = _cert_mappings(job, code).get(code, [])
    obj = f"user {user_id} / certification {code}"
    if not maps:
        job.skip(obj, f"no active mapping names certification {code!r}: nothing to do")
        return
    echo = decisions.award_echo(award_id, _made_from_badge(job, user_id, code, award_id))
    if echo is not None:
        job.skip(obj, f"certification.{kind}: {echo.reason} ({echo.rule})")
        return
    if kind == "revoked" and not job.settings.sync_revocation:
        job.skip(obj, f"certification {code!r} revoked for user {user_id}; SYNC_REVOCATION is false: the badge is kept")
        return
    learner = (await users_by_id(job, [user_id])).get(user_id)
    if learner is None:
        job.skip(obj, f"Docebo user {user_id} was not found", level="warning")
        return
    held = await held_badges_of_learner(job, learner.email)
    issued = rules.parse_datetime(payload.get("issued_on")) or rules.parse_datetime(payload.get("fired_at")) or job.ctx.now()
    for m in maps:
        tid = str(m["template_id"]).lower()
        name = _template_name(job, tid, m["template_name"])
        try:
            if kind == "revoked":
                await revoke_badge(
                    job, learner, tid, name, held, f"Docebo certification {code} award {award_id} was revoked (F4)"
                )
                continue
            cand = Candidate(
                learner.user_id,
                tid,
                name,
                "F4",
                "certification_award",
                award_id or f"{user_id}:{code}",
                f"certification {code!r} award {award_id}",
                issued,
                payload.get("expire_on"),
                mode="update" if kind == "updated" else "award",
            )
            entry = ledger.live_entry(job.store, "badge", learner.email, tid)
            await ensure_badge(job, learner, cand, held, entry)
        except ApiError as exc:
            job.item_failed(_object(learner, tid), exc, what=f"{kind} certification → {name!r}")


def _made_from_badge(job: Job, user_id: str, code: str, award_id: str) -> str | None:
    """O2: the Credly badge id an award of this learner and certification was made from by F5/F6."""
    entry = ledger.live_entry(job.store, "certification_award", user_id, code)
    if entry is None or (award_id and entry.object_id and entry.object_id != award_id):
        return None
    return entry.origin_id


# -- F7 batch --------------------------------------------------------------------------------------


def _fingerprint(
    job: Job,
    dropdown: dict[str, dict[str, Any]],
    lp_maps: dict[str, list[dict[str, Any]]],
    cert_maps: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What decides which completions and awards qualify (incremental.py): a change here makes
    the next run full."""
    s = job.settings
    return {
        "course templates (dropdown)": sorted((opt, str(t["template_id"]).lower()) for opt, t in dropdown.items()),
        "learning-plan mappings": sorted((lp, str(m["template_id"]).lower()) for lp, ms in lp_maps.items() for m in ms),
        "certification mappings": sorted((c, str(m["template_id"]).lower()) for c, ms in cert_maps.items() for m in ms),
        "COURSE_ADDITIONAL_FIELD": [s.course_additional_field, job.store.get_meta(FIELD_ID_META, "") or ""],
        "BATCH_SYNC_START_DATE": str(s.batch_sync_start_date or ""),
        "CREDLY_DEFAULT_EXPIRATION_DAYS": str(s.default_expiration_days),
        "SYNC_REVOCATION": str(s.sync_revocation),
        "CREDLY_INTEGRATION_MASTER": s.integration_master,
    }


async def batch_docebo_to_credly(job: Job) -> None:
    """F7: every completion (F3) and every certification award (F4), in bulk (module doc) — or,
    incremental (services/flows/incremental.py), only those of the learners touched by what
    changed since the last good run, through the same decisions."""
    start = job.settings.batch_sync_start_date
    dropdown = _dropdown_templates(job)
    lp_maps = _lp_mappings(job)
    cert_maps = _cert_mappings(job)
    inc = incremental.begin(job, "docebo_to_credly", {"docebo": job.docebo}, _fingerprint(job, dropdown, lp_maps, cert_maps))
    job.rec.info(
        f"{len(dropdown)} templates in the course dropdown, {len(lp_maps)} mapped learning plans, "
        f"{len(cert_maps)} mapped certifications" + (f"; completions and awards on or after {start.isoformat()}" if start else "")
    )
    if not dropdown and not lp_maps and not cert_maps:
        job.rec.info("no course names a badge template and no mapping names a learning plan or certification: nothing to do")
        return
    if inc.incremental:
        try:
            if await _incremental_f7(job, inc, dropdown, lp_maps, cert_maps):
                return
        except incremental.FilterIgnored as exc:
            inc.fallback(exc)
    await _full_f7(job, inc, dropdown, lp_maps, cert_maps)


async def _full_f7(
    job: Job,
    inc: incremental.Incremental,
    dropdown: dict[str, dict[str, Any]],
    lp_maps: dict[str, list[dict[str, Any]]],
    cert_maps: dict[str, list[dict[str, Any]]],
) -> None:
    """F7 over everything."""
    docebo = job.docebo
    start = job.settings.batch_sync_start_date
    cert_ids: dict[str, str] = {}  # mapped code → id_cert (for the incremental runs that follow)

    # Phase 1 (concurrently): courses + field, learning plan courses and completions, awards,
    # and the templates' badge counts (to choose how to read the held badges).
    async def courses_phase() -> tuple[list[dict[str, Any]], str]:
        fid = await _course_field_id(job) if dropdown else ""
        courses = await collect(docebo.iter_courses(), job) if (fid or lp_maps) else []
        return courses, fid

    async def lp_courses_phase() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        sem = asyncio.Semaphore(job.concurrency(docebo))

        async def one(lp: str) -> None:
            async with sem:
                async for c in docebo.iter_learning_plan_courses(lp):
                    out.setdefault(str(c.get("id_course", c.get("course_id", c.get("id")))), []).append(lp)

        await asyncio.gather(*(one(lp) for lp in sorted(lp_maps)))
        return out

    async def lp_done_phase() -> dict[tuple[str, str], dict[str, Any]]:
        if not lp_maps:
            return {}
        out: dict[tuple[str, str], dict[str, Any]] = {}
        async for e in docebo.iter_learning_plan_enrollments(lp_ids=sorted(lp_maps, key=_num_key), statuses=["completed"]):
            if str(e.get("enrollment_status", e.get("status", "completed"))) == "completed":
                out[(_lp_id(e), _enrollment_user(e))] = e
        return out

    async def awards_phase() -> list[tuple[dict[str, Any], str]]:
        if not cert_maps:
            return []
        ids = await _mapped_certifications(job, cert_maps, cert_ids)
        if not ids:
            return []
        return [
            (a, ids[str(a.get("id_cert"))])
            async for a in docebo.iter_certification_awards(certification_ids=sorted(ids, key=_num_key))
            if str(a.get("id_cert")) in ids
        ]

    (courses, field_id), lp_courses, lp_done, awards, counts = await asyncio.gather(
        courses_phase(), lp_courses_phase(), lp_done_phase(), awards_phase(), template_badge_counts(job)
    )
    job.check_cancel()
    course_by_id = {str(c.get("id_course", c.get("id"))): c for c in courses}
    course_template: dict[str, dict[str, Any]] = {}
    course_option: dict[str, str] = {}
    if field_id:
        for cid, c in course_by_id.items():
            option = _field_value(job, c, field_id)
            if option and option in dropdown:
                course_template[cid] = dropdown[option]
                course_option[cid] = option
    relevant = set(course_template) | set(lp_courses)
    job.rec.info(
        f"read {len(courses)} courses: {len(course_template)} name a badge template, "
        f"{len(lp_courses)} belong to mapped learning plans; {len(awards)} awards of mapped certifications"
    )
    inc.plan = _plan(field_id, course_option, course_by_id, lp_courses, cert_ids)

    # Phase 2 (concurrently): completed enrollments of the relevant courses (course-id chunks read
    # in parallel), the badges already held of every template that may be issued, and — as soon
    # as more than a few learners are involved — the user list.
    users = UserDirectory(job)
    for a, _ in awards:
        users.want(_award_fields(a)[1])
    orphans = _orphaned_award_badges(job, awards, cert_maps, cert_ids)
    candidate_templates = (
        {str(t["template_id"]).lower() for t in course_template.values()}
        | {str(m["template_id"]).lower() for ms in lp_maps.values() for m in ms}
        | ({str(m["template_id"]).lower() for code in {c for _, c in awards} for m in cert_maps.get(code, [])})
        | {e.target for e in orphans}
    )
    completions: list[dict[str, Any]] = []

    async def enrollments_phase() -> None:
        chunk = max(1, int(getattr(docebo, "id_chunk", 50)))
        ids = sorted(relevant, key=_num_key)
        chunks = [ids[i : i + chunk] for i in range(0, len(ids), chunk)]
        sem = asyncio.Semaphore(job.concurrency(docebo))

        async def one(part: list[str]) -> None:
            async with sem:
                async for e in docebo.iter_enrollments(course_ids=part, statuses=["completed"]):
                    if str(e.get("enrollment_status", e.get("status", "completed"))) != "completed":
                        continue
                    if _enrollment_course(e) not in relevant:
                        continue
                    if not rules.on_or_after(_completion_date(e), start):
                        continue
                    completions.append(e)
                    users.want(_enrollment_user(e))

        await asyncio.gather(*(one(part) for part in chunks))

    try:
        _, held = await asyncio.gather(enrollments_phase(), held_badges_of_templates(job, candidate_templates, counts))
        job.check_cancel()
        cands = _candidates(job, completions, course_template, course_by_id, lp_courses, lp_done, lp_maps, awards, cert_maps)
        learners = await users.resolve() if cands else {}
    finally:
        users.cancel()
    if cands:
        await _decide_and_issue(job, cands, learners, held)
    await _reconcile_revocations(job, orphans, cands, held)


def _orphaned_award_badges(
    job: Job, awards: list[tuple[dict[str, Any], str]], cert_maps: dict[str, list[dict[str, Any]]], cert_ids: dict[str, str]
) -> list[ledger.LedgerEntry]:
    """O4: the product's live badges issued for a certification award that Docebo no longer reports
    (revoked or deleted), among the mapped certifications whose awards this run read."""
    if not cert_ids:
        return []
    current: set[str] = set()
    for a, code in awards:
        award_id, uid, _, _ = _award_fields(a)
        if str(a.get("status") or "").lower() not in ("revoked", "deleted"):
            current.update((award_id, f"{uid}:{code}"))
    templates = {str(m["template_id"]).lower() for code in cert_ids for m in cert_maps.get(code, [])}
    live = ledger.live_entries(job.store, "badge", targets=sorted(templates))
    return [
        e
        for e in live.values()
        if e.status == "active" and e.origin_type == "certification_award" and e.origin_id not in current
    ]


async def _reconcile_revocations(
    job: Job, orphans: list[ledger.LedgerEntry], cands: list[Candidate], held: HeldBadges
) -> None:
    """O4: revoke (SYNC_REVOCATION) each badge whose award is gone, unless another current source of
    the same learner (a course or plan completion, another award) still calls for that template."""
    keepers = {(c.user_id, c.template_id): c.origin_label for c in cands}
    for entry in orphans:
        job.check_cancel()
        user_id = entry.user_id or str(entry.details.get("user_id") or "")
        learner = Learner(user_id, entry.subject, "", "")
        try:
            await revoke_badge(
                job,
                learner,
                entry.target,
                _template_name(job, entry.target),
                held,
                f"Docebo certification award {entry.origin_id} no longer exists",
                kept_by=keepers.get((user_id, entry.target), ""),
                rule="O4",
            )
        except ApiError as exc:
            job.item_failed(_object(learner, entry.target), exc, what="O4 revoke")


def _plan(
    field_id: str,
    course_option: dict[str, str],
    course_by_id: dict[str, dict[str, Any]],
    lp_courses: dict[str, list[str]],
    cert_ids: dict[str, str],
) -> dict[str, Any]:
    """What an incremental run needs from the full run (kept with the watermark): the courses
    naming a template (option, name), the courses of the mapped learning plans, the mapped
    certifications' ids. Changes of course dropdown values are applied by incremental runs;
    the learning plans' course lists are read again by the next full run (daily)."""
    return {
        "field_id": field_id,
        "courses": {cid: [opt, _course_name(course_by_id.get(cid))] for cid, opt in sorted(course_option.items())},
        "lp_courses": {cid: sorted(lps) for cid, lps in sorted(lp_courses.items())},
        "certs": dict(sorted(cert_ids.items())),
    }


def _course_name(course: dict[str, Any] | None) -> str:
    return str((course or {}).get("name") or (course or {}).get("course_name") or "")


async def _mapped_certifications(job: Job, cert_maps: dict[str, list[dict[str, Any]]], found: dict[str, str]) -> dict[str, str]:
    """id_cert → code of the mapped certifications (one read of the certification list); the
    codes found are added to `found` (code → id_cert)."""
    certs = await certifications_by_code(job)
    ids: dict[str, str] = {}
    for code in cert_maps:
        if code in certs:
            ids[str(certs[code].get("id_cert"))] = code
            found[code] = str(certs[code].get("id_cert"))
        else:
            job.rec.warning(f"certification code {code!r} of a mapping does not exist in Docebo (check the mappings, M3)")
    return ids


def _candidates(
    job: Job,
    completions: list[dict[str, Any]],
    course_template: dict[str, dict[str, Any]],
    course_by_id: dict[str, dict[str, Any]],
    lp_courses: dict[str, list[str]],
    lp_done: dict[tuple[str, str], dict[str, Any]],
    lp_maps: dict[str, list[dict[str, Any]]],
    awards: list[tuple[dict[str, Any], str]],
    cert_maps: dict[str, list[dict[str, Any]]],
) -> list[Candidate]:
    """Every (learner, template) pair the completions (F3a, F3b) and awards (F4) call for, one
    per pair (F4 first, then the earliest), current ones only; the same for full and
    incremental runs."""
    start = job.settings.batch_sync_start_date
    cands: list[Candidate] = []
    for e in completions:
        job.rec.count("examined")
        uid, cid = _enrollment_user(e), _enrollment_course(e)
        when = rules.parse_datetime(_completion_date(e)) or job.ctx.now()
        label = _course_label(course_by_id.get(cid), cid)
        tpl = course_template.get(cid)
        if tpl is not None:
            cands.append(
                Candidate(uid, str(tpl["template_id"]).lower(), tpl["name"], "F3a", "course", cid, label, when, _validity_end(e))
            )
        for lp in lp_courses.get(cid, []):
            done = lp_done.get((lp, uid))
            if done is None:
                continue
            lp_when = rules.parse_datetime(_completion_date(done)) or when
            for m in lp_maps.get(lp, []):
                tid = str(m["template_id"]).lower()
                cands.append(
                    Candidate(
                        uid,
                        tid,
                        _template_name(job, tid, m["template_name"]),
                        "F3b",
                        "learning_plan",
                        lp,
                        f"learning plan {lp}",
                        lp_when,
                        _validity_end(done),
                    )
                )
    from_credly = ledger.live_entries(job.store, "certification_award") if awards else {}
    for a, code in awards:
        award_id, uid, issued_on, expire_on = _award_fields(a)
        if str(a.get("status") or "").lower() in ("revoked", "deleted"):
            continue
        made = from_credly.get((uid, code))
        echo = decisions.award_echo(award_id, made.origin_id if made and made.object_id in ("", award_id) else None)
        if echo is not None:
            job.skip(f"user {uid} / certification {code}", f"{echo.reason} ({echo.rule})")
            continue
        when = rules.parse_datetime(issued_on)
        if not rules.on_or_after(when, start):
            continue
        job.rec.count("examined")
        for m in cert_maps.get(code, []):
            tid = str(m["template_id"]).lower()
            cands.append(
                Candidate(
                    uid,
                    tid,
                    _template_name(job, tid, m["template_name"]),
                    "F4",
                    "certification_award",
                    award_id,
                    f"certification {code!r} award {award_id}",
                    when or job.ctx.now(),
                    expire_on,
                    mode="update",
                )
            )
    cands = _dedupe(_current(job, cands))
    job.rec.info(f"{len(cands)} (learner, template) pairs to check")
    job.rec.set_total(len(cands))
    return cands


async def _decide_and_issue(job: Job, cands: list[Candidate], learners: dict[str, Learner], held: HeldBadges) -> None:
    """Decide every pair (replacing where F4 asks for it), then issue what is missing in batches."""
    job.check_cancel()
    entries = ledger.live_entries(job.store, "badge", targets=sorted({c.template_id for c in cands}))
    queue: list[tuple[Learner, Candidate, ledger.LedgerEntry | None]] = []

    async def work(cand: Candidate) -> None:
        learner = learners.get(cand.user_id)
        if learner is None:
            job.skip(
                f"user {cand.user_id}",
                f"Docebo user {cand.user_id} was not found: no badge for {cand.origin_label}",
                level="warning",
            )
            return
        entry = entries.get((learner.email.lower(), cand.template_id))
        try:
            await ensure_badge(job, learner, cand, held, entry, queue)
        except ApiError as exc:
            job.item_failed(_object(learner, cand.template_id), exc, what=f"{cand.rule} {cand.template_name!r}")

    await job.for_each(cands, work, limit=job.concurrency(job.credly))
    queue.sort(key=lambda item: (item[1].template_id, item[0].email.lower()))
    job.rec.set_total(len(cands) + len(queue))
    await issue_many(job, queue)


async def _incremental_f7(
    job: Job,
    inc: incremental.Incremental,
    dropdown: dict[str, dict[str, Any]],
    lp_maps: dict[str, list[dict[str, Any]]],
    cert_maps: dict[str, list[dict[str, Any]]],
) -> bool:
    """F7 over what changed in Docebo since the watermark (incremental.py). Returns False when
    the run should go on as a full run (too many learners touched).

    1. Changed since the bound, concurrently: courses (their dropdown value: a course that now
       names a template has ALL its completions read), completed course enrollments, completed
       enrollments of the mapped learning plans, awards of the mapped certifications.
    2. The learners they touch: their completed enrollments, plan completions and awards (user
       filters, chunked), their Docebo records and their held badges (per e-mail, or per
       template when cheaper) — then `_candidates` and `_decide_and_issue` as in a full run."""
    docebo = job.docebo
    start = job.settings.batch_sync_start_date
    since = inc.since["docebo"]
    plan = inc.plan
    field_id = str(plan.get("field_id") or "")
    course_option = {cid: str(v[0]) for cid, v in (plan.get("courses") or {}).items()}
    course_names = {cid: str(v[1]) for cid, v in (plan.get("courses") or {}).items()}
    lp_courses = {cid: list(v) for cid, v in (plan.get("lp_courses") or {}).items()}
    cert_ids = {code: str(i) for code, i in (plan.get("certs") or {}).items()}
    if any(code not in cert_ids for code in cert_maps):  # a mapped code Docebo did not have then
        await _mapped_certifications(job, cert_maps, cert_ids)
    ids = {cert_ids[code]: code for code in cert_maps if code in cert_ids}
    touched: set[str] = set()
    retemplated: list[str] = []
    changed_completions: list[dict[str, Any]] = []

    async def courses() -> None:
        if not field_id or not dropdown:
            return
        async for c in inc.changed(
            docebo.iter_courses(updated_from=since),
            "docebo",
            "courses",
            "date_last_updated",
            key=lambda c: c.get("id_course", c.get("id")),
        ):
            cid = str(c.get("id_course", c.get("id")))
            option = _field_value(job, c, field_id)
            option = option if option in dropdown else ""
            old = course_option.get(cid, "")
            label = _course_label(c, cid)
            if option:
                course_option[cid], course_names[cid] = option, _course_name(c)
                if option != old:
                    retemplated.append(cid)
                    job.rec.info(
                        f"{label} now names {dropdown[option]['name']!r}: all its completions are read (F3a)", object=label
                    )
            elif old:
                del course_option[cid]
                course_names.pop(cid, None)
                job.rec.info(f"{label} no longer names a badge template (badges already issued stay)", object=label)

    async def completions() -> None:
        async for e in inc.changed(
            docebo.iter_enrollments(statuses=["completed"], updated_from=since),
            "docebo",
            "course enrollments",
            "enrollment_date_last_updated",
            key=lambda e: f"{_enrollment_course(e)}/{_enrollment_user(e)}",
        ):
            if str(e.get("enrollment_status", e.get("status", "completed"))) == "completed":
                changed_completions.append(e)

    async def plans() -> None:
        if not lp_maps:
            return
        async for e in inc.changed(
            docebo.iter_learning_plan_enrollments(
                lp_ids=sorted(lp_maps, key=_num_key), statuses=["completed"], updated_from=since
            ),
            "docebo",
            "learning-plan enrollments",
            "enrollment_date_last_updated",
            key=lambda e: f"{_lp_id(e)}/{_enrollment_user(e)}",
        ):
            if _lp_id(e) in lp_maps:
                touched.add(_enrollment_user(e))

    async def awards_changed() -> None:
        if not ids:
            return
        async for a in inc.changed(
            docebo.iter_certification_awards(certification_ids=sorted(ids, key=_num_key), updated_from=since),
            "docebo",
            "certification awards",
            "date_last_updated",
            key=lambda a: _award_fields(a)[0],
        ):
            if str(a.get("id_cert")) in ids:
                touched.add(_award_fields(a)[1])

    await incremental.gather(courses(), completions(), plans(), awards_changed())
    job.check_cancel()
    relevant = set(course_option) | set(lp_courses)
    touched.update(_enrollment_user(e) for e in changed_completions if _enrollment_course(e) in relevant)
    if retemplated:
        async for e in docebo.iter_enrollments(course_ids=sorted(retemplated, key=_num_key), statuses=["completed"]):
            if str(e.get("enrollment_status", e.get("status", "completed"))) == "completed":
                touched.add(_enrollment_user(e))
    touched.discard("")
    inc.plan = {
        **plan,
        "courses": {cid: [opt, course_names.get(cid, "")] for cid, opt in sorted(course_option.items())},
        "certs": dict(sorted(cert_ids.items())),
    }
    found = ", ".join(f"{n} {what}" for what, n in sorted(inc.changes.items())) or "nothing"
    if not touched:
        job.rec.info(f"changed since {since.isoformat()}: {found}; no learner to look at")
        return True
    if len(touched) > incremental.MAX_TOUCHED:
        inc.to_full(f"{len(touched)} learners are touched by the changes ({found}): reading everything costs less")
        return False
    job.rec.info(f"changed since {since.isoformat()}: {found}; {len(touched)} learners to look at")

    # 2. The touched learners, in bulk by user filters.
    learner_ids = sorted(touched, key=_num_key)
    users = UserDirectory(job, per_user_max=PER_LEARNER_MAX)
    for uid in learner_ids:
        users.want(uid)
    done: list[dict[str, Any]] = []
    lp_done: dict[tuple[str, str], dict[str, Any]] = {}
    awards: list[tuple[dict[str, Any], str]] = []

    async def their_completions() -> None:
        async for e in docebo.iter_enrollments(user_ids=learner_ids, statuses=["completed"]):
            if str(e.get("enrollment_status", e.get("status", "completed"))) != "completed":
                continue
            if _enrollment_course(e) in relevant and rules.on_or_after(_completion_date(e), start):
                done.append(e)

    async def their_plans() -> None:
        if not lp_maps:
            return
        async for e in docebo.iter_learning_plan_enrollments(
            lp_ids=sorted(lp_maps, key=_num_key), user_ids=learner_ids, statuses=["completed"]
        ):
            if str(e.get("enrollment_status", e.get("status", "completed"))) == "completed":
                lp_done[(_lp_id(e), _enrollment_user(e))] = e

    async def their_awards() -> None:
        if not ids:
            return
        async for a in docebo.iter_certification_awards(user_ids=learner_ids, certification_ids=sorted(ids, key=_num_key)):
            if str(a.get("id_cert")) in ids:
                awards.append((a, ids[str(a.get("id_cert"))]))

    try:
        _, _, _, learners = await incremental.gather(their_completions(), their_plans(), their_awards(), users.resolve())
    finally:
        users.cancel()
    job.check_cancel()
    course_template = {cid: dropdown[opt] for cid, opt in course_option.items() if opt in dropdown}
    course_by_id = {cid: {"name": name} for cid, name in course_names.items()}
    cands = _candidates(job, done, course_template, course_by_id, lp_courses, lp_done, lp_maps, awards, cert_maps)
    if not cands:
        return True
    emails = [learners[c.user_id].email for c in cands if c.user_id in learners and learners[c.user_id].email]
    held = HeldBadges(await badges_of_learners(job, emails, {c.template_id for c in cands}, states=HELD_STATES))
    await _decide_and_issue(job, cands, learners, held)
    return True


def _num_key(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)
