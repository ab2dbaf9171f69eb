"""F7 incremental (issue 8): after a full run, a run reads only what changed in Docebo since the
watermark and sends the learners it touches through the same decisions (F3a, F3b, F3c, F4,
the ledger, L1, E1). Call counts come from the sandboxes' own counters."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from services.flows import incremental
from services.flows.incremental import read_state
from services.store import runs
from services.store.templates import set_template_active
from tests.flows.world import T_CERT, T_FIRE, T_SAFETY, base_data, calls, delta, first_line, travel
from tests.support.world import completed

FLOW = "docebo-to-credly"
LP_ENROLLED = [{"learning_plan_id": 501, "user_id": u, "enrolled_at": "2025-01-01 09:00:00"} for u in (1, 2)]
AWARD = {"id_award": 1, "id_cert": 1, "user_id": 3, "issued_on": "2025-05-01 00:00:00", "expire_on": "2099-01-01 00:00:00"}


async def full_world(make_world, **data):
    """Alice completed course 101 (dropdown: Safety Basics) and learning plan 501 (mapped to Fire
    Warden); Carol holds certification CERT-OP (mapped to Certified Operator). One full run."""
    data.setdefault("enrollments", [completed(101, 1), completed(102, 1), completed(103, 1)])
    w = make_world(base_data(lp_enrollments=LP_ENROLLED, awards=[AWARD], **data))
    await w.prepare_dropdown({101: "Safety Basics"})
    w.add_mapping(T_FIRE, lp="501")
    w.add_mapping(T_CERT, cert="CERT-OP")
    s = await w.run(FLOW)
    assert (s.status, s.mode, s.counts["failed"]) == ("succeeded", "full", 0), s.reason
    travel(w)
    return w, s


NOTHING = {
    "docebo GET /learn/v1/courses": 1,
    "docebo GET /course/v1/courses/enrollments": 1,
    "docebo GET /learningplan/v1/learningplans/enrollments": 1,
    "docebo GET /certification/v1/awards": 1,
}


async def test_F7_incremental_nothing_changed_reads_four_lists_once(make_world):
    w, full = await full_world(make_world)
    assert full.counts["issued"] == 3 and first_line(w, full).startswith("full run: no earlier full run")
    before = calls(w)
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "incremental"
    assert delta(before, calls(w)) == NOTHING  # a handful: one filtered read per list, nothing in Credly
    assert first_line(w, s).startswith("incremental run: only changes (Docebo since ")
    assert s.counts["examined"] == 0
    state = read_state(w.store, "docebo_to_credly")
    assert state["run_id"] == s.run_id and state["full_run_id"] == full.run_id and state["clock"] == {"docebo": "Date header"}


async def test_F7_one_new_completion_issues_exactly_its_badge_with_calls_proportional_to_it(make_world):
    w, _ = await full_world(make_world)
    w.docebo_state.enroll(101, 2)
    w.docebo_state.set_enrollment(101, 2, status="completed", date_complete="2026-11-01 08:00:00")
    travel(w, 60)  # the run starts a minute later
    before, keys = calls(w), set(w.badge_keys())
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "incremental" and s.counts["issued"] == 1
    assert set(w.badge_keys()) - keys == {("bob@example.com", T_SAFETY)}
    assert delta(before, calls(w)) == {
        # the four changed-since reads, then Bob's completions, plans and awards, his user record
        "docebo GET /learn/v1/courses": 1,
        "docebo GET /course/v1/courses/enrollments": 2,
        "docebo GET /learningplan/v1/learningplans/enrollments": 2,
        "docebo GET /certification/v1/awards": 2,
        "docebo GET /manage/v1/user/{user_id}": 1,
        # his held badges, then the one badge
        "credly GET /v1/organizations/{org}/badges": 1,
        "credly POST /v1/organizations/{org}/badges/batch": 1,
    }
    travel(w)  # Bob's completion lies in the next run's overlap: it is not processed twice
    before = calls(w)
    s2 = await w.run(FLOW)
    assert s2.counts["issued"] == 0 and delta(before, calls(w)) == NOTHING


async def test_F7_a_change_just_before_a_run_is_looked_at_again_by_the_next_run(make_world):
    """Changed within SKIP_MARGIN of the run's start: the next run cannot tell it from a second
    change in the same second, so it looks again (F3c: nothing issued twice)."""
    w, _ = await full_world(make_world)
    w.docebo_state.enroll(101, 2)
    w.docebo_state.set_enrollment(101, 2, status="completed")
    assert (await w.run(FLOW)).counts["issued"] == 1
    travel(w)
    before = calls(w)
    s = await w.run(FLOW)
    assert (s.counts["issued"], s.counts["skipped"]) == (0, 1)
    assert delta(before, calls(w))["docebo GET /manage/v1/user/{user_id}"] == 1


async def test_F3b_learning_plan_completed_since_and_F4_award_updated_since(make_world):
    w, _ = await full_world(make_world)
    for course in (102, 103):  # Bob completes the plan's courses: the plan enrollment changes
        w.docebo_state.enroll(course, 2)
        w.docebo_state.set_enrollment(course, 2, status="completed")
    w.docebo_state.update_award(1, {"expire_on": "2099-06-30 00:00:00"})  # Carol's award: new expiry
    s = await w.run(FLOW)
    assert s.mode == "incremental" and (s.counts["issued"], s.counts["replaced"], s.counts["failed"]) == (1, 1, 0)
    assert ("bob@example.com", T_FIRE) in w.badge_keys()
    carol = [b for b in w.badges() if b.template_id == T_CERT]
    assert len(carol) == 1 and carol[0].expires_at.date() == dt.date(2099, 6, 30)


async def test_F3a_course_dropdown_newly_set_gives_all_its_past_completions_their_badges(make_world):
    past = [completed(101, 1), completed(102, 1), completed(103, 1)] + [
        completed(103, u, f"2024-06-0{u} 10:00:00") for u in (2, 3)
    ]
    w, full = await full_world(make_world, enrollments=past)
    assert ("bob@example.com", T_FIRE) not in w.badge_keys()
    field = int(w.store.get_meta("docebo.course_field_id"))
    w.docebo_state.set_course_value(103, field, label="Fire Warden")  # an admin picks the option
    before = calls(w)
    s = await w.run(FLOW)
    assert s.mode == "incremental" and s.counts["failed"] == 0
    # Alice holds Fire Warden already (F3b); Bob and Carol get it for their 2024 completions (F3a)
    assert s.counts["issued"] == 2 and s.counts["skipped"] == 3  # and their own held badges: F3c
    fire = sorted((b.recipient_email.lower(), b.issued_at.date()) for b in w.badges() if b.template_id == T_FIRE)
    assert fire == [
        ("alice@example.com", dt.date(2025, 3, 1)),
        ("bob@example.com", dt.date(2024, 6, 2)),
        ("carol@example.com", dt.date(2024, 6, 3)),
    ]
    d = delta(before, calls(w))
    assert d["docebo GET /course/v1/courses/enrollments"] == 3  # changed, course 103 in full, the learners'
    assert d["docebo GET /learn/v1/courses"] == 1 and "docebo GET /manage/v1/user" not in d
    assert d["credly POST /v1/organizations/{org}/badges/batch"] == 1
    # the course stays known as Fire Warden's for the runs that follow
    assert read_state(w.store, "docebo_to_credly")["plan"]["courses"]["103"][1] == "Fire 2"


@pytest.mark.parametrize(
    "change, what",
    [
        ("mapping", "learning-plan mappings"),
        ("template", "course templates (dropdown)"),
        ("start_date", "BATCH_SYNC_START_DATE"),
        ("expiry", "CREDLY_DEFAULT_EXPIRATION_DAYS"),
        ("revocation", "SYNC_REVOCATION"),
    ],
)
async def test_F7_a_change_of_what_qualifies_makes_the_next_run_full(make_world, change, what):
    w, _ = await full_world(make_world)
    if change == "mapping":
        w.add_mapping(T_SAFETY, lp="501")
    elif change == "template":
        set_template_active(w.store, T_SAFETY, False)
    elif change == "start_date":
        w.configure(BATCH_SYNC_START_DATE="2020-01-01")
    elif change == "expiry":
        w.configure(CREDLY_DEFAULT_EXPIRATION_DAYS="365")
    else:
        w.configure(SYNC_REVOCATION="false")
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "full"
    assert first_line(w, s).startswith("full run: changed since the last full run: ") and what in first_line(w, s)
    s2 = await w.run(FLOW)
    assert s2.mode == "incremental"  # the full run recorded the new fingerprint


async def test_F7_full_on_request_for_all_and_incremental_for_the_scheduler(make_world):
    w, _ = await full_world(make_world)
    from services.flows import run_flow

    s = await run_flow(FLOW, w.ctx, trigger="schedule")
    assert s.mode == "incremental"
    s = await run_flow("all", w.ctx, trigger="test", full=True)
    modes = {c.flow: c.mode for c in s.children}
    assert modes == {"templates": "", "dropdown": "", "docebo_to_credly": "full", "credly_to_docebo": "full"}
    assert "asked for (--full)" in first_line(w, s.children[2])


async def test_F7_daily_full_reconciliation_after_two_in_los_angeles(make_world):
    w, _ = await full_world(make_world)  # the world's clock: 2026-01-01 00:00 UTC (16:00 in LA)
    assert (await w.run(FLOW)).mode == "incremental"
    w.ctx.now = lambda: dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC)  # 02:30 in LA
    s = await w.run(FLOW)
    assert s.mode == "full" and "daily full reconciliation" in first_line(w, s)
    assert (await w.run(FLOW)).mode == "incremental"  # once a day


async def test_F7_failed_item_keeps_the_watermark_and_the_next_run_retries_it(make_world):
    w, _ = await full_world(make_world)
    state = read_state(w.store, "docebo_to_credly")
    w.docebo_state.enroll(101, 2)
    w.docebo_state.set_enrollment(101, 2, status="completed")
    w.credly_faults.force("fail", route="POST /v1/organizations/{org}/badges/batch", times=50)
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.counts["failed"] == 1 and s.counts["issued"] == 0
    assert read_state(w.store, "docebo_to_credly") == state  # not advanced
    w.credly_faults.reset(settings=True)
    travel(w)
    s2 = await w.run(FLOW)
    assert s2.mode == "incremental" and s2.counts["issued"] == 1 and s2.counts["failed"] == 0
    assert w.badge_keys().count(("bob@example.com", T_SAFETY)) == 1
    assert read_state(w.store, "docebo_to_credly")["run_id"] == s2.run_id


async def test_F7_failed_full_run_makes_the_next_run_full(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1)]))
    await w.prepare_dropdown({101: "Safety Basics"})
    w.credly_faults.force("fail", route="POST /v1/organizations/{org}/badges/batch", times=50)
    s = await w.run(FLOW)
    assert s.mode == "full" and s.counts["failed"] == 1 and read_state(w.store, "docebo_to_credly") is None
    w.credly_faults.reset(settings=True)
    s2 = await w.run(FLOW)
    assert s2.mode == "full" and s2.counts["issued"] == 1


async def test_F7_tenant_ignoring_the_filter_gives_correct_results_and_one_logged_fallback(make_world):
    w, _ = await full_world(make_world)
    w.docebo_state.honour_updated_from = False  # a tenant without updated_from
    w.docebo_state.enroll(101, 2)
    w.docebo_state.set_enrollment(101, 2, status="completed")
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "full" and s.counts["issued"] == 1
    assert ("bob@example.com", T_SAFETY) in w.badge_keys() and len(w.badges()) == 4
    lines = [ln["message"] for ln in runs.query_run_log(w.store, s.run_id, limit=1000)]
    assert lines[0].startswith("incremental run")
    warned = [ln for ln in lines if "ignores the changed-since filter" in ln and "falls back to full reads" in ln]
    assert len(warned) == 1 and "Docebo" in warned[0]
    mark = json.loads(w.store.get_meta(incremental.IGNORED_KEY))["docebo"]
    assert mark["run_id"] == s.run_id
    s2 = await w.run(FLOW)
    assert s2.mode == "full" and "Docebo ignores the changed-since filter" in first_line(w, s2)
    lines2 = [ln["message"] for ln in runs.query_run_log(w.store, s2.run_id, limit=1000)]
    assert not any("falls back to full reads" in ln for ln in lines2)  # said once
    assert s2.counts["issued"] == 0


async def test_F7_too_many_learners_touched_turns_the_run_full(make_world, monkeypatch):
    w, _ = await full_world(make_world)
    monkeypatch.setattr(incremental, "MAX_TOUCHED", 1)
    for u in (2, 3):
        w.docebo_state.enroll(101, u)
        w.docebo_state.set_enrollment(101, u, status="completed")
    s = await w.run(FLOW)
    assert s.mode == "full" and s.counts["issued"] == 2
    assert read_state(w.store, "docebo_to_credly")["full_run_id"] == s.run_id


async def test_F7_incremental_dry_run_is_the_real_run_and_never_moves_the_watermark(make_world):
    w, _ = await full_world(make_world)
    field = int(w.store.get_meta("docebo.course_field_id"))
    w.docebo_state.set_course_value(103, field, label="Safety Basics")
    for course in (101, 102, 103):
        w.docebo_state.enroll(course, 2)
        w.docebo_state.set_enrollment(course, 2, status="completed")
    w.docebo_state.update_award(1, {"issued_on": "2025-05-02 00:00:00"})
    state, writes = read_state(w.store, "docebo_to_credly"), w.writes()
    dry = await w.run(FLOW, dry_run=True)
    assert dry.mode == "incremental" and read_state(w.store, "docebo_to_credly") == state and w.writes() == writes
    assert (await w.run(FLOW, dry_run=True)).actions == dry.actions  # the plan does not move either
    real = await w.run(FLOW)
    assert real.mode == "incremental"
    plan = [(a["action"], a["object"]) for a in dry.actions]
    done = [(a["action"], a["object"]) for a in real.actions]
    assert sorted(plan) == sorted(done) and len(done) == 3  # Bob: Safety Basics, Fire Warden; Carol replaced
    assert read_state(w.store, "docebo_to_credly")["run_id"] == real.run_id
