"""G1 gate, S3 blocking, dry run = real run, faults, `all`, cancellation, W4 lock, M3 check."""

from __future__ import annotations

import pytest

from services.flows import Callbacks, check_mappings, handle_badge_event, handle_course_completion
from services.sandbox.faults import FaultConfig
from services.store import notifications, runs
from services.store.locks import acquire_lock, release_lock
from services.store.runs import RunRecorder
from tests.flows.world import T_CERT, T_FIRE, T_IMPORT, T_SAFETY, base_data, tid
from tests.support.world import completed


def rich_data():
    """Completions for F3a and F3b, awards for F4 and Credly badges for F5."""
    enr = [completed(101, u) for u in (1, 2, 3)] + [completed(102, u) for u in (1, 2)] + [completed(103, 1)]
    lpe = [{"learning_plan_id": 501, "user_id": u, "enrolled_at": "2025-01-01 09:00:00"} for u in (1, 2)]
    awards = [{"id_award": 9, "id_cert": 1, "user_id": 2, "issued_on": "2025-02-02 00:00:00", "expire_on": "2027-02-02 00:00:00"}]
    return base_data(enrollments=enr, lp_enrollments=lpe, awards=awards)


async def _prepare(w):
    await w.prepare_dropdown({101: "Safety Basics"})
    w.add_mapping(T_FIRE, lp="501")
    w.add_mapping(T_CERT, cert="CERT-OP")
    w.add_mapping(T_IMPORT, et=True, cert="CERT-PARTNER")
    for email in ("alice@example.com", "bob@example.com"):
        w.credly_state.issue(
            {
                "badge_template_id": T_IMPORT,
                "recipient_email": email,
                "issued_to_first_name": "X",
                "issued_to_last_name": "Y",
                "issued_at": "2025-01-20 10:00:00",
            }
        )


def _state(w):
    badges = sorted(
        (b.recipient_email.lower(), b.template_id, b.state, b.issued_at, b.expires_at) for b in w.credly_state.badges.values()
    )
    trainings = sorted((t["user_id"], t["course_name"], t["date_from"], t["date_to"]) for t in w.trainings())
    awards = sorted((a["user_id"], a["id_cert"], a["issued_on"], a["expire_on"]) for a in w.awards())
    return badges, trainings, awards


@pytest.mark.parametrize(
    "master,d2c,c2d", [("", "succeeded", "succeeded"), ("DOCEBO", "succeeded", "skipped"), ("CREDLY", "skipped", "succeeded")]
)
async def test_G1_each_master_value(make_world, master, d2c, c2d):
    w = make_world(rich_data())
    w.configure(CREDLY_INTEGRATION_MASTER=master)
    await _prepare(w)
    s1 = await w.run("docebo-to-credly")
    s2 = await w.run("credly-to-docebo")
    assert (s1.status, s2.status) == (d2c, c2d)
    for s in (s1, s2):
        if s.status == "skipped":
            assert "G1" in s.reason and s.counts == {k: 0 for k in s.counts}
    assert bool(w.trainings()) == (c2d == "succeeded")
    assert any(b.issuer_earner_id for b in w.credly_state.badges.values()) == (d2c == "succeeded")
    # the real-time handlers obey the same gate
    if master == "CREDLY":
        s = await handle_course_completion(w.ctx, w.docebo_state.completion_payload(w.docebo_state.get_enrollment(101, 1)))
        assert s.status == "skipped"
    if master == "DOCEBO":
        s = await handle_badge_event(w.ctx, w.credly_state.notice(w.credly_state.list_events()[-1]))
        assert s.status == "skipped"


async def test_S3_missing_required_key_blocks_the_flow_with_reason_and_notification(make_world):
    w = make_world(rich_data())
    await _prepare(w)
    w.store.db.execute("UPDATE settings SET value = '' WHERE key = 'EVIDENCE_TITLE'")
    s = await w.run("docebo-to-credly")
    assert s.status == "failed" and "EVIDENCE_TITLE" in s.reason
    assert any("EVIDENCE_TITLE" in ln["message"] for ln in runs.query_run_log(w.store, s.run_id, failures_only=True))
    assert [n["kind"] for n in notifications.list_notifications(w.store)] == ["config"]
    assert w.issue_calls() == 0
    # F6 does not need EVIDENCE_TITLE: it still runs
    assert (await w.run("credly-to-docebo")).status == "succeeded"


async def test_dry_run_lists_exactly_what_the_real_run_then_does(make_world):
    w = make_world(rich_data())
    await _prepare(w)
    writes = w.writes()
    ledger_rows = w.store.db.execute("SELECT count(*) FROM ledger").fetchone()[0]
    plan = await w.run("all", dry_run=True)
    assert plan.status == "succeeded", plan.reason
    assert w.writes() == writes  # a dry run writes nothing to either service
    assert w.store.db.execute("SELECT count(*) FROM ledger").fetchone()[0] == ledger_rows
    assert all(a["message"].startswith("would ") for a in plan.actions)
    real = await w.run("all")
    assert real.status == "succeeded", real.reason
    def key(acts):
        return sorted((a["action"], a["object"]) for a in acts)

    assert key(plan.actions) == key(real.actions)
    assert {a["action"] for a in real.actions} >= {"issue_badge", "create_external_training", "create_certification_award"}
    assert key(runs.run_actions(w.store, plan.run_id)) == key(plan.actions)
    # and once done, the plan is empty
    again = await w.run("all", dry_run=True)
    assert again.actions == []


@pytest.mark.parametrize("fault", ["fail_rate", "drop_rate"])
async def test_ten_percent_5xx_or_dropped_connections_end_in_the_same_state_as_no_faults(make_world, store, tmp_path, fault):
    clean = make_world(rich_data())
    await _prepare(clean)
    s = await clean.run("all")
    assert s.status == "succeeded" and s.counts["failed"] == 0
    expected = _state(clean)

    from services.store.db import Store

    other = Store(tmp_path / "faulty.db")
    from tests.flows.world import World

    faulty = World(
        other, rich_data(), credly_faults=FaultConfig(seed=7, **{fault: 0.1}), docebo_faults=FaultConfig(seed=8, **{fault: 0.1})
    )
    try:
        faulty.configure()
        await _prepare(faulty)
        s = await faulty.run("all")
        assert s.status == "succeeded", s.reason
        if fault == "fail_rate":
            statuses = faulty.credly_app.state.sandbox.calls.statuses()
            assert any(500 <= code for per in statuses.values() for code in per)  # faults really happened
        else:
            retried = sum(faulty.credly.calls.retries().values()) + sum(faulty.docebo.calls.retries().values())
            assert retried > 0  # connections really dropped
        assert _state(faulty) == expected
    finally:
        await faulty.aclose()
        other.close()


async def test_all_runs_each_flow_as_a_child_and_sums_counts(make_world):
    w = make_world(rich_data())
    await _prepare(w)
    s = await w.run("all")
    assert s.status == "succeeded", s.reason
    assert [c.flow for c in s.children] == ["templates", "dropdown", "docebo_to_credly", "credly_to_docebo"]
    kids = runs.query_runs(w.store, parent_run_id=s.run_id)
    assert len(kids) == 4
    assert s.counts["issued"] == sum(c.counts["issued"] for c in s.children) > 0


async def test_cancel_between_items(make_world):
    enr = [completed(101, u) for u in (1, 2, 3)]
    w = make_world(base_data(enrollments=enr))
    await w.prepare_dropdown({101: "Safety Basics"})
    s = await w.run("docebo-to-credly", callbacks=Callbacks(should_cancel=lambda: True))
    assert s.status == "cancelled" and w.badges() == []
    s = await w.run("docebo-to-credly")
    assert s.counts["issued"] == 3


async def test_W4_one_flow_never_runs_twice_at_once(make_world):
    w = make_world(rich_data())
    holder = RunRecorder.start(w.store, "docebo_to_credly", trigger="test")
    acquire_lock(w.store, "docebo_to_credly", holder.id)
    try:
        s = await w.run("docebo-to-credly")
        assert s.status == "skipped" and "already running" in s.reason
    finally:
        release_lock(w.store, "docebo_to_credly", holder.id)
        holder.finish("succeeded")
    assert (await w.run("docebo-to-credly")).status == "succeeded"


async def test_M3_check_flags_unknown_template_plan_and_code(make_world):
    w = make_world(rich_data())
    await w.run("templates")
    good = w.add_mapping(T_FIRE, lp="501", cert="CERT-PARTNER")
    bad_tpl = w.add_mapping(tid(999), et=True)
    bad_lp = w.add_mapping(T_SAFETY, lp="777")
    bad_code = w.add_mapping(T_SAFETY, cert="NOPE")
    results = {r["id"]: r for r in await check_mappings(w.ctx)}
    assert results[good]["status"] == "ok"
    assert results[bad_tpl]["status"] == "broken" and tid(999) in results[bad_tpl]["message"]
    assert results[bad_lp]["status"] == "broken" and "777" in results[bad_lp]["message"]
    assert results[bad_code]["status"] == "broken" and "NOPE" in results[bad_code]["message"]
    rows = {r["id"]: r for r in w.store.db.query("SELECT * FROM mappings")}
    assert rows[bad_lp]["check_status"] == "broken" and rows[bad_lp]["is_active"] == 1  # nothing changed silently


async def test_item_failure_is_recorded_and_the_run_goes_on(make_world):
    w = make_world(base_data(enrollments=[completed(101, u) for u in (1, 2)]))
    await w.prepare_dropdown({101: "Safety Basics"})
    w.credly_faults.force("fail", route="POST /v1/organizations/{org}/badges/batch", times=50, status=500)
    s = await w.run("docebo-to-credly")
    assert s.status == "succeeded" and s.counts["failed"] == 2
    assert len(runs.query_run_log(w.store, s.run_id, failures_only=True)) == 2
    digest = notifications.list_notifications(w.store, kind="digest")
    assert len(digest) == 1 and notifications.count_notifications(w.store, kind="error") == 2
    w.credly_faults.reset()
    s = await w.run("docebo-to-credly")
    assert s.counts["issued"] == 2 and len(w.badges()) == 2
