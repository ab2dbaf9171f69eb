"""F7 incremental run: only what changed in Docebo since the watermark (incremental.py), through the same
decisions as a full run (SPEC F7, F3c, O1-O5).
"""

from __future__ import annotations

from typing import Any

from services.flows import incremental, rules
from services.flows.base import Job
from services.flows.docebo_sources import (
    _award_fields,
    _candidates,
    _completion_date,
    _course_label,
    _course_name,
    _decide_and_issue,
    _enrollment_course,
    _enrollment_user,
    _field_value,
    _lp_id,
    _mapped_certifications,
    _num_key,
)
from services.flows.lookups import (
    HELD_STATES,
    PER_LEARNER_MAX,
    HeldBadges,
    UserDirectory,
    badges_of_learners,
)


async def _incremental_f7(
    job: Job,
    inc: incremental.Incremental,
    dropdown: dict[str, dict[str, Any]],
    lp_maps: dict[str, list[dict[str, Any]]],
    cert_maps: dict[str, list[dict[str, Any]]],
) -> bool:
    """F7 over what changed in Docebo since the watermark; False when the run should go on as a full
    run (too many learners touched). 1. Changed since the bound, concurrently: courses (one that now
    names a template has ALL its completions read), completions, plan completions, awards. 2. The
    learners they touch: `_touched_learners`."""
    docebo = job.docebo
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

    await _touched_learners(
        job, sorted(touched, key=_num_key), dropdown, course_option, course_names, lp_courses, lp_maps, cert_maps, ids
    )
    return True


async def _touched_learners(
    job: Job,
    learner_ids: list[str],
    dropdown: dict[str, dict[str, Any]],
    course_option: dict[str, str],
    course_names: dict[str, str],
    lp_courses: dict[str, list[str]],
    lp_maps: dict[str, list[dict[str, Any]]],
    cert_maps: dict[str, list[dict[str, Any]]],
    ids: dict[str, str],
) -> None:
    """Step 2 of an incremental F7: the touched learners' completions, plan completions and awards
    (user filters), their Docebo records and held badges, then the same decisions as a full run."""
    docebo = job.docebo
    start = job.settings.batch_sync_start_date
    relevant = set(course_option) | set(lp_courses)
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
        return
    emails = [learners[c.user_id].email for c in cands if c.user_id in learners and learners[c.user_id].email]
    held = HeldBadges(await badges_of_learners(job, emails, {c.template_id for c in cands}, states=HELD_STATES))
    await _decide_and_issue(job, cands, learners, held)
