"""The per-item baseline the batch benchmark compares the product with (issue 8). NOT product code.

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

from services.clients.docebo import DoceboClient
from services.flows import rules
from services.store.settings import read_settings

HELD = ["pending", "accepted"]


@dataclasses.dataclass
class Part:
    """One part of the baseline: wall seconds, calls (per service), units processed and, for a
    sampled part whose list the baseline read in full, the units in the whole data set."""

    seconds: float = 0.0
    calls: Counter = dataclasses.field(default_factory=Counter)
    units: int = 0
    population: int | None = None


class _Meter:
    def __init__(self, credly: Any, docebo: Any) -> None:
        self.credly, self.docebo = credly, docebo

    def _now(self) -> tuple[float, int, int]:
        return time.perf_counter(), self.credly.calls.total(), self.docebo.calls.total()

    def start(self) -> tuple[float, int, int]:
        return self._now()

    def stop(self, part: Part, mark: tuple[float, int, int], units: int = 0) -> None:
        t, c, d = self._now()
        part.seconds += t - mark[0]
        part.calls["credly"] += c - mark[1]
        part.calls["docebo"] += d - mark[2]
        part.units += units


def _learner(user: dict[str, Any]) -> dict[str, str]:
    data = user.get("user_data") if isinstance(user.get("user_data"), dict) else user
    return {"user_id": str(data.get("user_id", data.get("id"))), "email": str(data.get("email") or ""),
            "first_name": str(data.get("first_name") or ""), "last_name": str(data.get("last_name") or "")}


def _badge_body(
    settings: Any, learner: dict[str, str], template_id: str, issued: Any, expiry: Any, origin: str
) -> dict[str, Any]:
    when = rules.parse_datetime(issued)
    return rules.badge_fields(
        email=learner["email"],
        first_name=learner["first_name"],
        last_name=learner["last_name"],
        template_id=template_id,
        issued_at=when,
        docebo_user_id=learner["user_id"],
        expires_at=rules.badge_expires_at(expiry, when, settings.default_expiration_days),
        evidence_items=rules.evidence(settings.evidence_title, "baseline", origin),
    )


async def _held(credly: Any, email: str, template_id: str) -> list[dict[str, Any]]:
    return [b async for b in credly.iter_badges(recipient_email=email, badge_template_id=template_id, states=HELD)]


async def baseline_f7(store: Any, credly: Any, docebo: Any, *, sample_every: int = 1) -> dict[str, Part]:
    """Docebo → Credly per item (module docstring). Returns the parts: `course_list`,
    `course` (units: courses), `completion` (units: completions), `award_list`, `award`."""
    settings = read_settings(store)
    meter = _Meter(credly, docebo)
    parts = {k: Part() for k in ("course_list", "course", "completion", "award_list", "award")}
    field_id = store.get_meta("docebo.course_field_id")
    by_option = {
        str(r["dropdown_element_id"]): str(r["template_id"]).lower()
        for r in store.db.query("SELECT * FROM badge_templates WHERE is_active = 1 AND dropdown_element_id != ''")
    }
    lp_maps: dict[str, list[str]] = {}
    cert_maps: dict[str, list[str]] = {}
    for m in store.db.query("SELECT * FROM mappings WHERE is_active = 1 ORDER BY id"):
        if m["learning_plan_id"]:
            lp_maps.setdefault(str(m["learning_plan_id"]), []).append(str(m["template_id"]).lower())
        if m["certification_code"]:
            cert_maps.setdefault(str(m["certification_code"]), []).append(str(m["template_id"]).lower())

    mark = meter.start()
    courses = [c async for c in docebo.iter_courses()]
    meter.stop(parts["course_list"], mark)
    parts["course"].population = len(courses)

    for course in courses[::sample_every]:
        cid = course.get("id_course", course.get("id"))
        mark = meter.start()
        detail = await docebo.get_course(cid)
        option = DoceboClient.course_field_value(detail, field_id) if field_id else None
        course_tpl = by_option.get(str(option)) if option is not None else None
        lps = [str(lp.get("id")) for lp in detail.get("learningplans") or [] if str(lp.get("id")) in lp_maps]
        meter.stop(parts["course"], mark, 1)
        if not course_tpl and not lps:
            continue
        mark = meter.start()
        n = 0
        async for e in docebo.iter_enrollments(course_ids=[cid], statuses=["completed"]):
            if str(e.get("enrollment_status")) != "completed":
                continue
            n += 1
            learner = _learner(await docebo.get_user(e["user_id"]))
            wanted: list[tuple[str, Any, Any, str]] = []
            if course_tpl:
                wanted.append(
                    (course_tpl, e.get("enrollment_completion_date"), e.get("enrollment_date_end_validity"), f"course {cid}")
                )
            if lps:
                async for lpe in docebo.iter_learning_plan_enrollments(
                    lp_ids=lps, user_ids=[learner["user_id"]], statuses=["completed"]
                ):
                    lp = str(lpe.get("learning_plan_id"))
                    for t in lp_maps.get(lp, []):
                        wanted.append(
                            (
                                t,
                                lpe.get("enrollment_completion_date") or e.get("enrollment_completion_date"),
                                None,
                                f"learning plan {lp}",
                            )
                        )
            for template_id, issued, expiry, origin in wanted:
                if not learner["email"] or await _held(credly, learner["email"], template_id):
                    continue
                await credly.issue_badge(_badge_body(settings, learner, template_id, issued, expiry, origin))
        meter.stop(parts["completion"], mark, n)

    # Certifications: every award ("Retrieve Certification Awards"), then each award of a mapped one.
    mark = meter.start()
    certs = {str(c.get("id_cert")): str(c.get("code")) async for c in docebo.iter_certifications()}
    awards = [a async for a in docebo.iter_certification_awards()]
    meter.stop(parts["award_list"], mark)
    mapped = [a for a in awards if certs.get(str(a.get("id_cert"))) in cert_maps]
    parts["award"].population = len(mapped)
    for a in mapped[::sample_every]:
        mark = meter.start()
        learner = _learner(await docebo.get_user(a["user_id"]))
        for template_id in cert_maps[certs[str(a["id_cert"])]]:
            body = _badge_body(
                settings, learner, template_id, a.get("issued_on"), a.get("expire_on"), f"award {a.get('id_award')}"
            )
            held = await _held(credly, learner["email"], template_id) if learner["email"] else [None]
            if not held:
                await credly.issue_badge(body)
            elif (
                held[0] is not None
                and str(held[0].get("issuer_earner_id") or "") == learner["user_id"]
                and not rules.same_day(held[0].get("issued_at"), body["issued_at"])
            ):
                await credly.replace_badge(str(held[0]["id"]), {k: v for k, v in body.items() if k != "recipient_email"})
        meter.stop(parts["award"], mark, 1)
    return parts


async def baseline_f6(store: Any, credly: Any, docebo: Any, *, sample_every: int = 1) -> dict[str, Part]:
    """Credly → Docebo per item (module docstring). Parts: `badge_list` (units: mappings),
    `badge` (units: badges processed)."""
    settings = read_settings(store)
    meter = _Meter(credly, docebo)
    parts = {k: Part() for k in ("badge_list", "badge")}
    maps = [
        dict(m)
        for m in store.db.query(
            "SELECT * FROM mappings WHERE is_active = 1 AND (import_as_external_training = 1 "
            "OR certification_code != '') AND learning_plan_id = '' ORDER BY id"
        )
    ]
    names = {str(r["template_id"]).lower(): r["name"] for r in store.db.query("SELECT template_id, name FROM badge_templates")}
    mark = meter.start()
    certs = {str(c.get("code")): c.get("id_cert") async for c in docebo.iter_certifications()}
    meter.stop(parts["badge_list"], mark)
    for m in maps:
        tid = str(m["template_id"]).lower()
        mark = meter.start()
        badges = [b async for b in credly.iter_badges(badge_template_id=tid)]
        meter.stop(parts["badge_list"], mark, 1)
        held = [b for b in badges if b.get("state") in HELD]
        parts["badge"].population = (parts["badge"].population or 0) + len(held)
        for b in held[::sample_every]:
            mark = meter.start()
            user = await docebo.find_user_by_email(str(b.get("recipient_email") or ""))
            if user is not None:
                learner = _learner(user)
                issued = rules.docebo_time(rules.parse_datetime(b.get("issued_at")))
                expiry = rules.docebo_expiry_from_badge(b)
                if str(b.get("issuer_earner_id") or "") != learner["user_id"]:  # L1
                    if m["import_as_external_training"]:
                        name = names.get(tid, tid)
                        have = [
                            t
                            async for t in docebo.iter_external_trainings(user_ids=[learner["user_id"]])
                            if t.get("course_name") == name
                        ]
                        if not have:
                            await docebo.create_external_training(
                                {
                                    "user_id": int(learner["user_id"]),
                                    "course_name": name,
                                    "course_type": "Credly badge",
                                    "date_from": issued,
                                    "date_to": expiry,
                                    "training_institute": settings.external_training_institute_name,
                                }
                            )
                    code = str(m["certification_code"] or "")
                    if code and code in certs:
                        have = [
                            a
                            async for a in docebo.iter_certification_awards(
                                user_ids=[learner["user_id"]], certification_ids=[certs[code]]
                            )
                        ]
                        if not have:
                            await docebo.create_certification_award(
                                {
                                    "id_cert": certs[code],
                                    "user_id": int(learner["user_id"]),
                                    "issued_on": issued,
                                    "expire_on": expiry,
                                    "source": "Credly",
                                    "external_link": "",
                                }
                            )
            meter.stop(parts["badge"], mark, 1)
    return parts
