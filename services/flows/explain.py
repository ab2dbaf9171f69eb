"""`explain`: why did — or didn't — this learner get this badge (issue 13). Reads one learner's
records live (a handful of filtered calls) and the store, and asks the flows' own decisions
(explain_decisions.py) what they would do now per template, with the rule (F3c, O1, L1/O2, G1,
S3, F5) and what was done before (ledger, run log, inbox). Design notes: docs/explain.md
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from typing import Any

from services.core.errors import NotFoundError, UsageError
from services.flows import credly_to_docebo as c2d
from services.flows import docebo_to_credly as d2c
from services.flows import explain_decisions as seam
from services.flows import incremental, rules
from services.flows.base import FlowContext, collect
from services.flows.lookups import HELD_STATES, HeldBadges, Learner, badge_template_id, learner_from, template_rows
from services.store import settings as settings_store

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HISTORY_MAX = 20  # lines of history per template (newest first)


@dataclasses.dataclass
class TemplateTrace:
    template_id: str
    template_name: str
    sources: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    credly_badges: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    docebo_objects: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    decision: str = "nothing"
    reason: str = ""
    rule: str = ""
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Explanation:
    """The trace of one learner; `to_json()` is the `explain --json` object."""

    docebo_user_id: str | None
    email: str
    found_in_docebo: bool
    templates: list[TemplateTrace]
    blocked: str | None
    found_in_credly: bool = False
    inbox_events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.found_in_docebo or self.found_in_credly

    def to_json(self) -> dict[str, Any]:
        return {
            "learner": {"docebo_user_id": self.docebo_user_id, "email": self.email, "found_in_docebo": self.found_in_docebo},
            "templates": [dataclasses.asdict(t) for t in self.templates],
            "blocked": self.blocked,
        }


def parse_learner(text: str) -> tuple[str, str]:
    """LEARNER as ('id', '12') or ('email', 'a@b.c'); anything else is bad input (exit 2)."""
    value = (text or "").strip()
    if value.isdigit() and int(value) > 0:
        return "id", value
    if _EMAIL.match(value):
        return "email", value
    raise UsageError(f"LEARNER {text!r} is neither a Docebo user id (a positive number) nor an e-mail address; "
                     "give one of them, e.g. 12 or alice@example.com")


# -- reading --------------------------------------------------------------------------------------


async def _find_learner(ctx: FlowContext, kind: str, value: str) -> Learner | None:
    if ctx.docebo is None:
        return None
    if kind == "email":
        return learner_from(await ctx.docebo.find_user_by_email(value))
    try:
        return learner_from(await ctx.docebo.get_user(value))
    except NotFoundError:
        return None


def _blocked(store: Any, settings: settings_store.SettingsSnapshot) -> tuple[str | None, dict[str, str]]:
    """Per direction, why no run would decide now (G1, S3); and the top-level `blocked` when
    neither direction would run."""
    why: dict[str, str] = {}
    for flow in ("docebo_to_credly", "credly_to_docebo"):
        gate = rules.gate_reason(flow, settings.integration_master)
        problems = settings_store.configuration_problems(store, list(rules.required_settings(flow)))
        if problems:
            why[flow] = "blocked by the configuration (S3): " + "; ".join(p.message for p in problems)
        elif gate:
            why[flow] = gate
    if len(why) == 2:
        return " / ".join(dict.fromkeys(why.values())), why
    return None, why


async def _course_templates(job: Any, completions: list[dict[str, Any]], dropdown: dict[str, dict[str, Any]]) -> tuple[
        dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """F3a: the template each completed course names, from the last full F7 run's plan (the
    courses' dropdown values), else by reading each completed course."""
    plan = (incremental.read_state(job.store, "docebo_to_credly") or {}).get("plan") or {}
    known = plan.get("courses") or {}
    course_by_id: dict[str, dict[str, Any]] = {}
    course_template: dict[str, dict[str, Any]] = {}
    ids = sorted({d2c._enrollment_course(e) for e in completions})
    # The plan lists every course naming a template at the last full run: a course it leaves
    # out named none then. Without a plan (no full run yet) each completed course is read.
    missing = [] if "courses" in plan else ids
    for cid in ids:
        if cid in known:
            option, name = known[cid]
            course_by_id[cid] = {"id_course": cid, "name": name}
            if option in dropdown:
                course_template[cid] = dropdown[option]
    if missing and dropdown:
        field_id = await d2c._course_field_id(job)
        courses = await asyncio.gather(*(job.docebo.get_course(cid) for cid in missing)) if field_id else []
        for cid, course in zip(missing, courses, strict=False):
            course_by_id[cid] = course
            option = d2c._field_value(job, course, field_id)
            if option in dropdown:
                course_template[cid] = dropdown[option]
    return course_by_id, course_template


async def _docebo_sources(job: Any, learner: Learner) -> tuple[seam.LearnerSources, list[dict[str, Any]]]:
    """The learner's completed courses and plans, awards of mapped certifications (every
    mapping, active or not, so an inactive one can be named), and external trainings."""
    docebo, uid = job.docebo, learner.user_id
    src = seam.LearnerSources(lp_maps=d2c._lp_mappings(job), cert_maps=d2c._cert_mappings(job))
    mappings = [dict(r) for r in job.store.db.query("SELECT * FROM mappings ORDER BY id")]
    lp_ids = sorted({str(m["learning_plan_id"]) for m in mappings if m["learning_plan_id"]})
    codes = sorted({str(m["certification_code"]).strip() for m in mappings if str(m["certification_code"] or "").strip()})

    async def plans() -> list[dict[str, Any]]:
        if not lp_ids:
            return []
        return await collect(docebo.iter_learning_plan_enrollments(lp_ids=lp_ids, user_ids=[uid], statuses=["completed"]))

    async def awards() -> list[tuple[dict[str, Any], str]]:
        if not codes:
            return []
        certs = await d2c.certifications_by_code(job)
        src.certs = certs
        ids = {str(certs[c].get("id_cert")): c for c in codes if c in certs}
        if not ids:
            return []
        found = await collect(docebo.iter_certification_awards(user_ids=[uid], certification_ids=sorted(ids)))
        return [(a, ids[str(a.get("id_cert"))]) for a in found if str(a.get("id_cert")) in ids]

    async def trainings() -> list[dict[str, Any]]:
        if not any(m["import_as_external_training"] for m in mappings):
            return []
        return await collect(docebo.iter_external_trainings(user_ids=[uid]))

    src_awards: list[tuple[dict[str, Any], str]]
    completions, lp_rows, src_awards, held_trainings = await asyncio.gather(
        collect(docebo.iter_enrollments(user_ids=[uid], statuses=["completed"])), plans(), awards(), trainings()
    )
    src.awards = src_awards
    src.completions = [e for e in completions if d2c._enrollment_user(e) == uid]
    src.lp_done = {(d2c._lp_id(e), uid): e for e in lp_rows if d2c._enrollment_user(e) == uid}
    src.course_by_id, src.course_template = await _course_templates(job, src.completions, d2c._dropdown_templates(job))
    src.lp_courses = await _plan_courses(job, src)
    return src, held_trainings


async def _plan_courses(job: Any, src: seam.LearnerSources) -> dict[str, list[str]]:
    """F3b: which completed course belongs to which completed mapped plan (the last full F7 run's
    plan; a plan it does not know — mapped since — is read: one call each)."""
    plan = (incremental.read_state(job.store, "docebo_to_credly") or {}).get("plan") or {}
    done_lps = sorted({lp for lp, _ in src.lp_done if lp in src.lp_maps})
    out: dict[str, list[str]] = {}
    for cid, lps in (plan.get("lp_courses") or {}).items():
        out[cid] = [lp for lp in lps if lp in done_lps]
    planned = {lp for lps in (plan.get("lp_courses") or {}).values() for lp in lps}
    unread = [lp for lp in done_lps if lp not in planned]  # mapped since the last full run
    for lp, rows in zip(unread, await asyncio.gather(*(collect(job.docebo.iter_learning_plan_courses(lp)) for lp in unread)),
                        strict=True):
        for c in rows:
            out.setdefault(str(c.get("id_course", c.get("course_id", c.get("id")))), []).append(lp)
    return out


# -- deciding -------------------------------------------------------------------------------------


class _Traces:
    """The templates touched by this learner, by lower-case id."""

    def __init__(self, rows: dict[str, dict[str, Any]], only: str | None) -> None:
        self.rows = rows
        self.only = only
        self.by_id: dict[str, TemplateTrace] = {}

    def get(self, template_id: str, fallback_name: str = "") -> TemplateTrace | None:
        tid = str(template_id).lower()
        if self.only and tid != self.only:
            return None
        if tid not in self.by_id:
            row = self.rows.get(tid)
            self.by_id[tid] = TemplateTrace(tid, row["name"] if row else (fallback_name or tid))
        return self.by_id[tid]


def _settle(trace: TemplateTrace, verdict: seam.Verdict, *, prefer: bool = False) -> None:
    """Keep the first verdict of a template, unless a later one would write (or `prefer`)."""
    if not trace.reason or prefer or (trace.decision == "nothing" and verdict.decision != "nothing"):
        trace.decision, trace.reason, trace.rule = verdict.decision, verdict.reason, verdict.rule


def _mapping_verdict(m: dict[str, Any], rows: dict[str, dict[str, Any]], what: str) -> seam.Verdict | None:
    """A mapping the flows pass over: inactive (M1) or its template switched off in T (T2)."""
    if not m["is_active"]:
        return seam.Verdict("nothing", f"mapping {m['id']} ({what}) is inactive: the flows do not use it", "M1")
    row = rows.get(str(m["template_id"]).lower())
    if row is not None and not row["is_active"]:
        return seam.Verdict("nothing", f"template {row['name']!r} is switched off in the template table: no flow uses it", "T2")
    return None


def _docebo_side(job: Any, learner: Learner, trainings: list[dict[str, Any]], src: seam.LearnerSources) -> c2d.DoceboSide:
    side = c2d.DoceboSide(certs=dict(src.certs))
    for t in trainings:
        side.add_training(t)
    for a, _ in src.awards:
        side.add_award(a)
    return side


async def _decide_docebo(job: Any, rec: seam.CapturedRun, learner: Learner, src: seam.LearnerSources,
                         held: HeldBadges, traces: _Traces, blocked: str) -> None:
    """F3a/F3b/F4 sources → the verdict of F7's own decision code per template."""
    start = job.settings.batch_sync_start_date
    mappings = [dict(r) for r in job.store.db.query("SELECT * FROM mappings ORDER BY id")]
    early: dict[str, seam.Verdict] = {}
    uid = learner.user_id

    def source(tid: str, name: str, kind: str, sid: str, date: Any) -> TemplateTrace | None:
        trace = traces.get(tid, name)
        if trace is not None:
            trace.sources.append({"type": kind, "id": sid, "date": rules.docebo_time(rules.parse_datetime(date))})
            if not rules.on_or_after(date, start):
                early.setdefault(trace.template_id, seam.Verdict(
                    "nothing", f"{kind.replace('_', ' ')} {sid} dates from {rules.parse_datetime(date):%Y-%m-%d}, before "
                    f"BATCH_SYNC_START_DATE {start}: the batch does not consider it", "F7"))
        return trace

    for e in src.completions:
        cid = d2c._enrollment_course(e)
        tpl = src.course_template.get(cid)
        if tpl is not None:
            source(str(tpl["template_id"]), tpl["name"], "course", cid, d2c._completion_date(e))
    for m in mappings:
        lp, code = str(m["learning_plan_id"] or ""), str(m["certification_code"] or "").strip()
        hits: list[tuple[str, str, Any]] = []
        if lp and (lp, uid) in src.lp_done:
            hits.append(("learning_plan", lp, d2c._completion_date(src.lp_done[(lp, uid)])))
        hits += [("certification_award", d2c._award_fields(a)[0], a.get("issued_on")) for a, c in src.awards if c == code]
        for kind, sid, date in hits:
            trace = source(str(m["template_id"]), m["template_name"], kind, sid, date)
            verdict = _mapping_verdict(m, traces.rows, f"{kind.replace('_', ' ')} {sid}")
            if trace is not None and verdict is not None:
                _settle(trace, verdict)
    src.completions = [e for e in src.completions if rules.on_or_after(d2c._completion_date(e), start)]
    if blocked:
        for trace in traces.by_id.values():
            if trace.sources:
                _settle(trace, seam.Verdict("nothing", blocked, "G1" if "(G1)" in blocked else "S3"), prefer=True)
        return
    for cand in seam.candidates(job, src):
        trace = traces.get(cand.template_id, cand.template_name)
        if trace is not None:
            verdict = await seam.badge_verdict(job, rec, learner, cand, held)
            _settle(trace, _with_history_reason(job, learner, cand.template_id, held, verdict), prefer=True)
    for tid, verdict in early.items():
        trace = traces.by_id[tid]
        if not trace.reason:
            _settle(trace, verdict)
    for trace in traces.by_id.values():
        if trace.sources and not trace.reason:
            lines = [ln.message for ln in rec.lines if ln.object.endswith(f"/ template {trace.template_id}")]
            _settle(trace, seam.Verdict("nothing", lines[-1] if lines else "no current source calls for this badge", "E1"))


def _with_history_reason(job: Any, learner: Learner, tid: str, held: HeldBadges, verdict: seam.Verdict) -> seam.Verdict:
    """F3c says "already holds"; say also who issued the held badge (the run, or by hand: O1)."""
    if verdict.decision != "nothing" or verdict.rule != "F3c":
        return verdict
    badge = held.get(learner.email, tid, user_id=learner.user_id)
    if badge is None:
        return verdict
    entry = c2d.ledger.find_by_object(job.store, "credly", str(badge.get("id")))
    if entry is not None and entry.object_type == "badge":
        return seam.Verdict("nothing", f"{verdict.reason}; credly-console issued it in run {entry.run_id} "
                                       f"({entry.created_at[:10]}) for {entry.origin_type.replace('_', ' ')} {entry.origin_id}",
                            "F3c")
    if str(badge.get("issuer_earner_id") or "") != learner.user_id:
        return seam.Verdict("nothing", f"{verdict.reason}; that badge was issued outside credly-console (by hand): "
                                       "the product leaves it as is", "O1")
    return verdict


async def _decide_credly(job: Any, rec: seam.CapturedRun, learner: Learner | None, badges: list[dict[str, Any]],
                         side: c2d.DoceboSide, traces: _Traces, blocked: str) -> None:
    """The learner's Credly badges → F5's own decision per badge (import, update, remove, skip)."""
    maps = c2d.mappings_by_template(job)
    all_maps = [dict(r) for r in job.store.db.query("SELECT * FROM mappings ORDER BY id")]
    for b in sorted(badges, key=lambda b: (b.get("state") not in HELD_STATES, str(b.get("issued_at") or ""))):
        tid = badge_template_id(b)
        trace = traces.get(tid, str((b.get("badge_template") or {}).get("name") or ""))
        if trace is None:
            continue
        entry = c2d.ledger.find_by_object(job.store, "credly", str(b.get("id")))
        ours = (entry is not None and entry.object_type == "badge") or (
            learner is not None and str(b.get("issuer_earner_id") or "") == learner.user_id)
        trace.credly_badges.append({"id": str(b.get("id")), "state": str(b.get("state") or ""), "issued_by_product": ours})
        if blocked:
            _settle(trace, seam.Verdict("nothing", blocked, "G1" if "(G1)" in blocked else "S3"))
            continue
        if ours and learner is not None and str(b.get("issuer_earner_id") or "") != learner.user_id:
            verdict = seam.Verdict("nothing", f"badge {b.get('id')} was issued by credly-console: not imported back", "O2")
        else:
            verdict = await seam.import_verdict(job, rec, b, learner, maps.get(tid, []), side)
        if verdict.decision == "nothing" and not maps.get(tid):
            verdict = _unmapped(tid, all_maps, traces.rows, b, verdict)
        if verdict.rule == "L1":
            verdict = dataclasses.replace(verdict, rule="L1/O2")
        _settle(trace, verdict)


def _unmapped(tid: str, all_maps: list[dict[str, Any]], rows: dict[str, dict[str, Any]], badge: dict[str, Any],
              verdict: seam.Verdict) -> seam.Verdict:
    mine = [m for m in all_maps if str(m["template_id"]).lower() == tid]
    for m in mine:
        why = _mapping_verdict(m, rows, f"badge {badge.get('id')}")
        if why is not None:
            return why
    if not mine and "no active mapping" in verdict.reason:
        return seam.Verdict("nothing", f"no mapping names this template: badge {badge.get('id')} is not imported into Docebo",
                            "M1")
    return verdict


# -- what was done before -------------------------------------------------------------------------


def _history(store: Any, learner: Learner | None, email: str, traces: _Traces) -> list[dict[str, Any]]:
    """Ledger entries, run-log lines and inbox events touching this learner, per template
    (newest first); returns the learner's inbox events."""
    uid = learner.user_id if learner else ""
    subjects = [s for s in (email.lower(), uid) if s]
    if not subjects:
        return []
    marks = ",".join("?" * len(subjects))
    for e in store.db.query(f"SELECT * FROM ledger WHERE subject IN ({marks}) ORDER BY id DESC", subjects):
        trace = traces.by_id.get(str(e["target"]).lower())
        if trace is not None:
            if e["object_type"] != "badge" and e["status"] == "active":
                trace.docebo_objects.append({"type": e["object_type"], "id": e["object_id"]})
            trace.history.append({"at": e["updated_at"], "run_id": e["run_id"], "message": (
                f"ledger: {e['object_type'].replace('_', ' ')} {e['object_id'] or '(intent)'} is {e['status']} "
                f"(for {e['origin_type'].replace('_', ' ')} {e['origin_id']})")})
    likes = [f"%{email.lower()}%"] if email else []
    if uid:
        likes += [f"user {uid} %", f"user {uid}"]
    where = " OR ".join("lower(object) LIKE ?" for _ in likes)
    lines = list(store.db.query(f"SELECT * FROM run_log WHERE {where} ORDER BY id DESC LIMIT 500", likes))
    runs_of: dict[str, set[int]] = {}
    for line in lines:
        for tid, trace in traces.by_id.items():
            if tid in line["object"].lower() or tid in line["message"].lower() or (
                    " / badge " in line["object"] and any(b["id"] in line["object"] for b in trace.credly_badges)):
                trace.history.append({"at": line["at"], "run_id": line["run_id"], "message": line["message"]})
                runs_of.setdefault(tid, set()).add(line["run_id"])
    events = list(store.db.query(
        "SELECT id, source, event_type, status, received_at, run_id FROM inbox WHERE learner_key = ? OR payload LIKE ? "
        "ORDER BY id DESC LIMIT 50", (f"docebo-user:{uid}" if uid else "-", f"%{email}%" if email else "-")))
    for ev in events:
        for tid, trace in traces.by_id.items():
            if ev["run_id"] is not None and ev["run_id"] in runs_of.get(tid, set()):
                trace.history.append({"at": ev["received_at"], "run_id": ev["run_id"], "message": (
                    f"inbox event {ev['id']}: {ev['source']} {ev['event_type']} ({ev['status']})")})
    for trace in traces.by_id.values():
        trace.history.sort(key=lambda h: str(h["at"] or ""), reverse=True)
        del trace.history[HISTORY_MAX:]
    return [dict(ev) for ev in events]


# -- the whole ------------------------------------------------------------------------------------


async def explain_learner(ctx: FlowContext, learner_text: str, *, template_id: str | None = None) -> Explanation:
    """The trace of one learner (e-mail or Docebo user id), per template; `template_id` narrows it."""
    kind, value = parse_learner(learner_text)
    settings = settings_store.read_settings(ctx.store)
    blocked, why = _blocked(ctx.store, settings)
    job, rec = seam.dry_job(ctx, settings)
    learner = await _find_learner(ctx, kind, value)
    email = learner.email if learner is not None else (value if kind == "email" else "")
    traces = _Traces(template_rows(job), (template_id or "").strip().lower() or None)

    async def badges() -> list[dict[str, Any]]:
        if not email or ctx.credly is None:
            return []
        return await collect(ctx.credly.iter_badges(recipient_email=email))

    async def docebo() -> tuple[seam.LearnerSources, list[dict[str, Any]]]:
        if learner is None:
            return seam.LearnerSources(), []
        return await _docebo_sources(job, learner)

    found_badges, (src, trainings) = await asyncio.gather(badges(), docebo())
    found_badges = [b for b in found_badges if str(b.get("recipient_email") or "").strip().lower() == email.lower()]
    held = HeldBadges(b for b in found_badges if b.get("state") in HELD_STATES)
    if learner is not None:
        await _decide_docebo(job, rec, learner, src, held, traces, why.get("docebo_to_credly", ""))
    await _decide_credly(job, rec, learner, found_badges, _docebo_side(job, learner, trainings, src) if learner else
                         c2d.DoceboSide(), traces, why.get("credly_to_docebo", ""))
    inbox_events = _history(ctx.store, learner, email, traces)
    return Explanation(
        docebo_user_id=learner.user_id if learner else (value if kind == "id" else None),
        email=email,
        found_in_docebo=learner is not None,
        templates=sorted(traces.by_id.values(), key=lambda t: t.template_name.lower()),
        blocked=blocked,
        found_in_credly=bool(found_badges),
        inbox_events=inbox_events,
    )


def render_text(ex: Explanation) -> str:
    """The plain text of `explain` (docs/explain.md shows an example)."""
    who = ex.email or "(no e-mail)"
    out = [f"Learner {who}, Docebo user {ex.docebo_user_id or '-'}"
           + ("" if ex.found_in_docebo else " — not found in Docebo")]
    if ex.blocked:
        out.append(f"Blocked: {ex.blocked}")
    if not ex.templates:
        out.append("No template has a source or a badge for this learner.")
    for t in ex.templates:
        out.append("")
        out.append(f"{t.template_name} ({t.template_id})")
        out.append(f"  decision: {t.decision} [{t.rule}] — {t.reason}")
        for s in t.sources:
            out.append(f"  source: {s['type'].replace('_', ' ')} {s['id']}" + (f" on {s['date']}" if s["date"] else ""))
        for b in t.credly_badges:
            by = ", issued by credly-console" if b["issued_by_product"] else ""
            out.append(f"  Credly badge {b['id']} ({b['state']}){by}")
        for o in t.docebo_objects:
            out.append(f"  Docebo {o['type'].replace('_', ' ')} {o['id']}")
        for h in t.history:
            run = f"run {h['run_id']}" if h["run_id"] is not None else "-"
            out.append(f"  {str(h['at'])[:16].replace('T', ' ')}  {run:>7}  {h['message']}")
    return "\n".join(out) + "\n"


def dumps(ex: Explanation) -> str:
    return json.dumps(ex.to_json(), indent=2, ensure_ascii=False, default=str)

