"""Docebo → Credly: F3 course completion, F4 certification events, F7 the batch over both (full run here,
incremental run in f7_incremental.py). Decisions: decisions.py; applying them: badge_apply.py.

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.core.errors import ApiError
from services.flows import decisions, incremental, rules
from services.flows.badge_apply import Candidate, _object, ensure_badge, revoke_badge
from services.flows.base import FlowFailed, Job, collect
from services.flows.docebo_sources import (
    _award_fields,
    _candidates,
    _cert_mappings,
    _completion_date,
    _course_field_id,
    _course_label,
    _decide_and_issue,
    _dedupe,
    _dropdown_templates,
    _enrollment_course,
    _enrollment_user,
    _field_value,
    _lp_id,
    _lp_mappings,
    _made_from_badge,
    _mapped_certifications,
    _num_key,
    _orphaned_award_badges,
    _plan,
    _plans_containing,
    _reconcile_revocations,
    _template_name,
    _validity_end,
)
from services.flows.dropdown import FIELD_ID_META
from services.flows.f7_incremental import _incremental_f7
from services.flows.lookups import (
    UserDirectory,
    certifications_by_code,
    held_badges_of_learner,
    held_badges_of_templates,
    template_badge_counts,
    users_by_id,
)
from services.store import ledger

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
