"""The call counts of the README's "Incremental runs" table, on the medium demo world (issue 8:
"Incremental run with nothing changed: the number of calls — a handful, not a re-scan").
`pytest -s` prints them. The world: the demo's mappings (4 learning plans, 3 certifications,
3 external-training imports) and 30 courses whose dropdown names one of 10 more templates."""

from __future__ import annotations

import re

from services.sandbox.demo_data import generate
from services.store import runs
from services.store.mappings import MappingInput, add_mapping
from tests.flows.world import World, calls, delta, travel

F7, F6 = "docebo-to-credly", "credly-to-docebo"


async def test_medium_world_full_versus_incremental_call_counts(store):
    data = generate("medium", 0)
    w = World(store, data)
    try:
        w.configure()
        names, active = set(), []
        for t in data.templates:  # F1 keeps the first template of a name
            if t["state"] == "active" and t["name"] not in names:
                active.append(t)
            names.add(t["name"])
        pool = iter(active)
        for lp in data.learning_plans[:4]:
            t = next(pool)
            add_mapping(
                store, MappingInput(template_id=t["id"], template_name=t["name"], learning_plan_id=str(lp["learning_plan_id"]))
            )
        for cert in data.certifications[:3]:
            t = next(pool)
            add_mapping(store, MappingInput(template_id=t["id"], template_name=t["name"], certification_code=str(cert["code"])))
        imports = []
        for _ in range(3):
            t = next(pool)
            imports.append(t["id"])
            add_mapping(store, MappingInput(template_id=t["id"], template_name=t["name"], import_as_external_training=True))
        dropdown = [next(pool) for _ in range(10)]
        course_template = {c["id_course"]: dropdown[i % 10]["name"] for i, c in enumerate(data.courses[:30])}
        await w.prepare_dropdown(course_template)
        counted: dict[str, int] = {}

        async def run(name: str, flow: str, **kw):
            before = calls(w)
            s = await w.run(flow, **kw)
            assert s.status == "succeeded" and s.counts["failed"] == 0, s.reason
            d = delta(before, calls(w))
            counted[name] = sum(d.values())
            return s, d

        # first runs (they issue and create), then each flow once more on the other's writes
        for flow in (F7, F6):
            await run(f"{flow} first", flow)
        travel(w)
        assert (await run(f"{F7} settle", F7))[0].mode == "incremental"
        # F7 just issued more badges than F6's full read has pages: F6 sees it on the first page
        # of the changes (Credly's total_count) and reads everything at once instead of them all
        s6, d6 = await run(f"{F6} settle", F6)
        why = [
            ln["message"]
            for ln in runs.query_run_log(store, s6.run_id, limit=5)
            if ln["message"].startswith("full run from here")
        ]
        assert s6.mode == "full" and len(why) == 1, why
        chain, full = (int(n.replace(",", "")) for n in re.findall(r"([\d,]+) pages", why[0]))
        assert chain > full and d6["credly GET /v1/organizations/{org}/badges"] == 1 + full
        travel(w)
        full7, _ = await run("F7 full, nothing to do", F7, full=True)
        full6, _ = await run("F6 full, nothing to do", F6, full=True)
        assert full7.counts["issued"] == full6.counts["created"] == 0
        travel(w)
        s7, d7 = await run("F7 incremental, nothing changed", F7)
        s6, d6 = await run("F6 incremental, nothing changed", F6)
        assert s7.mode == s6.mode == "incremental"
        assert d7 == {
            "docebo GET /learn/v1/courses": 1,
            "docebo GET /course/v1/courses/enrollments": 1,
            "docebo GET /learningplan/v1/learningplans/enrollments": 1,
            "docebo GET /certification/v1/awards": 1,
        }
        assert d6 == {"credly GET /v1/organizations/{org}/badges": 1}
        # one change each
        course = data.courses[0]["id_course"]
        template = next(t["id"] for t in active if t["name"] == course_template[course])
        holders = {b.recipient_email.lower() for b in w.credly_state.badges.values() if b.template_id == template}
        enrolled = set(w.docebo_state.enr_by_course.get(course, {}))
        uid = next(
            u
            for u in sorted(w.docebo_state.users)
            if u not in enrolled and w.docebo_state.users[u]["email"].lower() not in holders
        )
        w.docebo_state.enroll(course, uid)
        w.docebo_state.set_enrollment(course, uid, status="completed")
        s, d = await run("F7 incremental, one new completion", F7)
        assert s.counts["issued"] == 1 and d["credly POST /v1/organizations/{org}/badges/batch"] == 1
        travel(w)
        user = w.docebo_state.users[uid]
        w.credly_state.issue(
            {
                "recipient_email": user["email"],
                "issued_to_first_name": "A",
                "issued_to_last_name": "B",
                "badge_template_id": imports[0],
                "issued_at": "2026-10-01T10:00:00Z",
            }
        )
        s, d = await run("F6 incremental, one new badge", F6)
        assert s.counts["created"] == 1 and d["docebo POST /learn/v1/external_training"] == 1
        assert counted["F7 full, nothing to do"] > 10 * counted["F7 incremental, nothing changed"]
        assert counted["F6 full, nothing to do"] > 10 * counted["F6 incremental, nothing changed"]
        assert counted["F7 incremental, one new completion"] <= 12 and counted["F6 incremental, one new badge"] <= 8
        print("\ncalls on the medium world:")
        for name, n in counted.items():
            print(f"  {name:<42} {n}")
    finally:
        await w.aclose()
