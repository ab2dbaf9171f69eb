"""F7/F3/F4 planning: Docebo objects (completions, plan completions, awards) read into Candidates, the
mappings they go through, and F7's removal pass (SPEC F3, F4, F7, E1, O2, O4, O5).
"""

from __future__ import annotations

from typing import Any

from services.core.errors import ApiError
from services.flows import decisions, rules
from services.flows.badge_apply import Candidate, _object, ensure_badge, issue_many, revoke_badge
from services.flows.base import Job
from services.flows.dropdown import FIELD_ID_META, find_course_field
from services.flows.lookups import (
    HeldBadges,
    Learner,
    active_mappings,
    certifications_by_code,
    template_rows,
    template_usable,
)
from services.store import ledger

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
    rows = job.template_rows_cache
    if rows is None:
        rows = job.template_rows_cache = template_rows(job)
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


def _made_from_badge(job: Job, user_id: str, code: str, award_id: str) -> str | None:
    """O2: the Credly badge id an award of this learner and certification was made from by F5/F6."""
    entry = ledger.live_entry(job.store, "certification_award", user_id, code)
    if entry is None or (award_id and entry.object_id and entry.object_id != award_id):
        return None
    return entry.origin_id


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
        award_date = rules.parse_datetime(issued_on)
        if not rules.on_or_after(award_date, start):
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
                    award_date or job.ctx.now(),
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
    last_badges = ledger.LastBadges(job.store, sorted({c.template_id for c in cands}))
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
            await ensure_badge(job, learner, cand, held, entry, queue, last_badges)
        except ApiError as exc:
            job.item_failed(_object(learner, cand.template_id), exc, what=f"{cand.rule} {cand.template_name!r}")

    await job.for_each(cands, work, limit=job.concurrency(job.credly))
    queue.sort(key=lambda item: (item[1].template_id, item[0].email.lower()))
    job.rec.set_total(len(cands) + len(queue))
    await issue_many(job, queue)


def _num_key(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)
