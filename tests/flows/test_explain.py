"""`explain` (issue 13): each decision kind with its reason, from the flows' own decision code,
on the sandboxes; at most 10 API calls for one learner."""

from __future__ import annotations

import pytest

from services.core.errors import UsageError
from services.flows.explain import explain_learner, parse_learner, render_text
from tests.flows.world import T_CERT, T_FIRE, T_IMPORT, T_SAFETY, base_data
from tests.support.world import completed

AWARD = {"id_award": 7, "id_cert": 1, "user_id": 1, "issued_on": "2025-05-01 00:00:00", "expire_on": None}


def _one(ex, template_id):
    (t,) = [t for t in ex.templates if t.template_id == template_id]
    return t


def _calls(w) -> int:
    return w.credly.calls.total() + w.docebo.calls.total()


async def _dropdown_world(make_world, **data):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")], **data))
    await w.prepare_dropdown({101: "Safety Basics"})
    return w


async def test_would_issue_now_when_nothing_was_done_yet(make_world):
    w = await _dropdown_world(make_world)
    ex = await explain_learner(w.ctx, "alice@example.com")
    t = _one(ex, T_SAFETY)
    assert (t.decision, t.rule) == ("issue", "F3a")
    assert "would issue 'Safety Basics' to alice@example.com" in t.reason and "course 101" in t.reason
    assert t.sources == [{"type": "course", "id": "101", "date": "2025-03-01 10:00:00"}]
    assert ex.to_json()["learner"] == {"docebo_user_id": "1", "email": "alice@example.com", "found_in_docebo": True}
    assert ex.blocked is None and w.writes() == {k: v for k, v in w.writes().items()}
    assert not w.badges()  # explain never writes


async def test_issued_earlier_names_the_run_and_is_already_held_F3c(make_world):
    w = await _dropdown_world(make_world)
    s = await w.run("docebo-to-credly")
    assert s.counts["issued"] == 1
    ex = await explain_learner(w.ctx, "1")
    t = _one(ex, T_SAFETY)
    assert (t.decision, t.rule) == ("nothing", "F3c")
    assert "already holds badge" in t.reason and "(F3c)" in t.reason and f"issued it in run {s.run_id}" in t.reason
    (badge,) = t.credly_badges
    assert badge["issued_by_product"] is True and badge["state"] == "pending"
    assert any(h["run_id"] == s.run_id and "issue 'Safety Basics'" in h["message"] for h in t.history)
    assert any(h["message"].startswith("ledger: badge") for h in t.history)


async def test_badge_issued_by_hand_is_left_as_is_O1(make_world):
    w = await _dropdown_world(make_world)
    w.credly_state.issue({"badge_template_id": T_SAFETY, "recipient_email": "alice@example.com", "issued_to_first_name": "A",
                          "issued_to_last_name": "A", "issued_at": "2025-01-01 09:00:00"})
    t = _one(await explain_learner(w.ctx, "alice@example.com"), T_SAFETY)
    assert (t.decision, t.rule) == ("nothing", "O1")
    assert "issued outside credly-console (by hand)" in t.reason
    assert t.credly_badges[0]["issued_by_product"] is False


async def test_no_mapping_and_inactive_mapping_M1(make_world):
    w = make_world(base_data(enrollments=[completed(102, 1), completed(103, 1)],
                             lp_enrollments=[{"learning_plan_id": 501, "user_id": 1, "enrolled_at": "2025-01-01 09:00:00"}]))
    await w.run("templates")
    w.credly_state.issue({"badge_template_id": T_IMPORT, "recipient_email": "alice@example.com", "issued_to_first_name": "A",
                          "issued_to_last_name": "A", "issued_at": "2025-01-01 09:00:00"})
    w.add_mapping(T_FIRE, lp="501", active=False)
    ex = await explain_learner(w.ctx, "alice@example.com")
    fire, partner = _one(ex, T_FIRE), _one(ex, T_IMPORT)
    assert (fire.decision, fire.rule) == ("nothing", "M1") and "is inactive" in fire.reason
    assert fire.sources[0]["type"] == "learning_plan" and fire.sources[0]["id"] == "501"
    assert (partner.decision, partner.rule) == ("nothing", "M1") and "no mapping names this template" in partner.reason


async def test_template_switched_off_T2(make_world):
    w = make_world(base_data(awards=[AWARD]))
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    w.store.db.execute("UPDATE badge_templates SET is_active = 0 WHERE template_id = ?", [T_CERT])
    w.store.conn.commit()
    t = _one(await explain_learner(w.ctx, "alice@example.com"), T_CERT)
    assert (t.decision, t.rule) == ("nothing", "T2") and "switched off" in t.reason
    assert t.sources[0]["type"] == "certification_award"


async def test_before_batch_sync_start_date(make_world):
    w = await _dropdown_world(make_world)
    w.configure(BATCH_SYNC_START_DATE="2025-06-01")
    t = _one(await explain_learner(w.ctx, "alice@example.com"), T_SAFETY)
    assert t.decision == "nothing" and "before BATCH_SYNC_START_DATE 2025-06-01" in t.reason


async def test_gated_off_G1(make_world):
    w = await _dropdown_world(make_world)
    w.configure(CREDLY_INTEGRATION_MASTER="CREDLY")
    ex = await explain_learner(w.ctx, "alice@example.com")
    t = _one(ex, T_SAFETY)
    assert (t.decision, t.rule) == ("nothing", "G1") and "CREDLY_INTEGRATION_MASTER is CREDLY" in t.reason
    assert ex.blocked is None  # Credly → Docebo would still run


async def test_configuration_blocked_S3(make_world):
    w = await _dropdown_world(make_world)
    w.store.db.execute("UPDATE settings SET value = '' WHERE key = 'NOTIFICATION_MAIL_ID'")  # as if edited by hand
    w.store.conn.commit()
    ex = await explain_learner(w.ctx, "alice@example.com")
    t = _one(ex, T_SAFETY)
    assert (t.decision, t.rule) == ("nothing", "S3") and "NOTIFICATION_MAIL_ID" in t.reason
    assert ex.blocked is not None and "NOTIFICATION_MAIL_ID" in ex.blocked


async def test_learner_not_in_docebo_but_in_credly(make_world):
    w = make_world(base_data())
    await w.run("templates")
    w.add_mapping(T_IMPORT, et=True)
    w.credly_state.issue({"badge_template_id": T_IMPORT, "recipient_email": "zoe@example.com", "issued_to_first_name": "Z",
                          "issued_to_last_name": "Z", "issued_at": "2025-01-01 09:00:00"})
    ex = await explain_learner(w.ctx, "zoe@example.com")
    assert ex.found and not ex.found_in_docebo
    t = _one(ex, T_IMPORT)
    assert t.decision == "nothing" and "no Docebo user has the e-mail" in t.reason and t.rule == "F5"
    nobody = await explain_learner(w.ctx, "nobody@example.com")
    assert not nobody.found and nobody.templates == []


async def test_own_badge_not_imported_back_L1_O2(make_world):
    w = make_world(base_data(awards=[AWARD]))
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    w.add_mapping(T_CERT, et=True)
    assert (await w.run("docebo-to-credly")).counts["issued"] == 1
    t = _one(await explain_learner(w.ctx, "alice@example.com"), T_CERT)
    assert t.credly_badges[0]["issued_by_product"] is True
    assert t.decision == "nothing" and t.rule in ("F3c", "L1/O2")
    ex = await explain_learner(w.ctx, "alice@example.com")
    # the import side of the same badge: F5's own L1 skip
    from services.flows import explain_decisions as seam
    from services.flows.credly_to_docebo import DoceboSide, mappings_by_template
    from services.flows.lookups import Learner
    from services.store.settings import read_settings

    job, rec = seam.dry_job(w.ctx, read_settings(w.store))
    badge = next(iter(w.credly_state.badges.values()))
    raw = {"id": badge.id, "recipient_email": "alice@example.com", "issuer_earner_id": "1", "state": "pending",
           "badge_template": {"id": T_CERT}}
    v = await seam.import_verdict(job, rec, raw, Learner("1", "alice@example.com", "A", "A"),
                                  mappings_by_template(job).get(T_CERT, []), DoceboSide())
    assert (v.decision, v.rule) == ("nothing", "L1") and "not imported back" in v.reason
    assert ex.templates


async def test_would_create_external_training_for_a_badge_F5(make_world):
    w = make_world(base_data())
    await w.run("templates")
    w.add_mapping(T_IMPORT, et=True)
    w.credly_state.issue({"badge_template_id": T_IMPORT, "recipient_email": "bob@example.com", "issued_to_first_name": "B",
                          "issued_to_last_name": "B", "issued_at": "2025-01-01 09:00:00"})
    t = _one(await explain_learner(w.ctx, "bob@example.com"), T_IMPORT)
    assert t.decision == "create" and "external training" in t.reason
    assert not w.trainings()


async def test_without_a_full_run_the_courses_are_read_one_by_one(make_world):
    w = await _dropdown_world(make_world)
    before = {**w.credly.calls.snapshot(), **w.docebo.calls.snapshot()}
    await explain_learner(w.ctx, "alice@example.com")
    after = {**w.credly.calls.snapshot(), **w.docebo.calls.snapshot()}
    assert after.get("GET /learn/v1/courses/{id}", 0) - before.get("GET /learn/v1/courses/{id}", 0) == 1
    assert sum(after.values()) - sum(before.values()) <= 10


async def test_at_most_10_calls_and_template_filter(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1), completed(102, 1), completed(103, 1)], awards=[AWARD],
                             lp_enrollments=[{"learning_plan_id": 501, "user_id": 1, "enrolled_at": "2025-01-01 09:00:00"}]))
    await w.prepare_dropdown({101: "Safety Basics", 102: "Fire Warden"})
    w.add_mapping(T_FIRE, lp="501")
    w.add_mapping(T_CERT, cert="CERT-OP")
    w.add_mapping(T_IMPORT, et=True)
    # the daily full F7 has run once: its plan knows the courses' templates (no course read per completion)
    assert (await w.run("docebo-to-credly", full=True)).counts["issued"] == 3
    before = {**w.credly.calls.snapshot(), **w.docebo.calls.snapshot()}
    ex = await explain_learner(w.ctx, "alice@example.com")
    after = {**w.credly.calls.snapshot(), **w.docebo.calls.snapshot()}
    made = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert sum(made.values()) <= 10, made
    assert {t.template_id for t in ex.templates} == {T_SAFETY, T_FIRE, T_CERT}
    only = await explain_learner(w.ctx, "alice@example.com", template_id=T_CERT.upper())
    assert [t.template_id for t in only.templates] == [T_CERT]
    text = render_text(ex)
    assert "Learner alice@example.com, Docebo user 1" in text and "decision: nothing [F3c]" in text


@pytest.mark.parametrize("bad", ["", "alice", "0", "-3", "a b@c.d"])
def test_bad_learner_is_usage_error(bad):
    with pytest.raises(UsageError):
        parse_learner(bad)


async def test_a_plan_mapped_after_the_last_full_run_is_still_seen(make_world):
    w = make_world(base_data(enrollments=[completed(102, 1), completed(103, 1)],
                             lp_enrollments=[{"learning_plan_id": 501, "user_id": 1, "enrolled_at": "2025-01-01 09:00:00"}]))
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly", full=True)
    w.add_mapping(T_FIRE, lp="501")
    t = _one(await explain_learner(w.ctx, "alice@example.com"), T_FIRE)
    assert (t.decision, t.rule) == ("issue", "F3b")
