"""F3 (course completion), F4 (certification events), F7 (batch), E1, L1 marker, evidence."""

from __future__ import annotations

import datetime as dt

from services.flows import handle_certification_event, handle_course_completion
from services.store import ledger, runs
from tests.flows.world import T_CERT, T_FIRE, T_SAFETY, base_data
from tests.support.world import completed


def _data(**kw):
    return base_data(**kw)


async def test_F3a_course_dropdown_names_a_template_one_badge_then_nothing_new(make_world):
    w = make_world(_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    s = await w.run("docebo-to-credly")
    assert s.status == "succeeded", s.reason
    assert s.counts["issued"] == 1
    badges = w.badges()
    assert [(b.recipient_email, b.template_id) for b in badges] == [("alice@example.com", T_SAFETY)]
    b = badges[0]
    # what an issued badge carries (SPEC §2)
    assert (b.first_name, b.last_name, b.issuer_earner_id) == ("Alice", "Archer", "1")
    assert b.issued_at == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
    assert b.expires_at is None  # E1: blank default → no expiry
    ev = b.evidence[0]
    assert ev["title"] == "Docebo achievement" and "F3a" in ev["description"] and "course 101" in ev["description"]
    assert ledger.live_entry(w.store, "badge", "alice@example.com", T_SAFETY).object_id == b.id
    # second run: nothing new (incremental: nothing changed), nor when it re-reads everything (F3c)
    before = w.writes()
    s2 = await w.run("docebo-to-credly")
    assert s2.mode == "incremental" and s2.counts["issued"] == 0 and len(w.badges()) == 1
    s3 = await w.run("docebo-to-credly", full=True)
    assert s3.mode == "full" and s3.counts["issued"] == 0 and s3.counts["skipped"] == 1 and len(w.badges()) == 1
    assert w.writes() == before


async def test_F3a_realtime_completion_issues_once(make_world):
    w = make_world(_data(enrollments=[completed(101, 2, "2025-04-02 08:30:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    payload = w.docebo_state.completion_payload(w.docebo_state.get_enrollment(101, 2))
    s = await handle_course_completion(w.ctx, payload)
    assert s.status == "succeeded", s.reason
    assert w.badge_keys() == [("bob@example.com", T_SAFETY)]
    s2 = await handle_course_completion(w.ctx, payload)
    assert s2.counts["issued"] == 0 and len(w.badges()) == 1
    assert runs.get_run(w.store, s.run_id)["trigger"] == "webhook"


async def test_F3b_learning_plan_completed_issues_its_mapped_badge(make_world):
    enr = [completed(102, 1), completed(103, 1, "2025-03-05 12:00:00"), completed(102, 2)]  # bob: only half the plan
    lpe = [{"learning_plan_id": 501, "user_id": u, "enrolled_at": "2025-01-01 09:00:00"} for u in (1, 2)]
    w = make_world(_data(enrollments=enr, lp_enrollments=lpe))
    await w.run("templates")
    w.add_mapping(T_FIRE, lp="501")
    s = await w.run("docebo-to-credly")
    assert s.status == "succeeded", s.reason
    assert w.badge_keys() == [("alice@example.com", T_FIRE)]
    (b,) = w.badges()
    assert b.issued_at.date() == dt.date(2025, 3, 5)  # the plan's completion date
    assert "F3b" in b.evidence[0]["description"] and "learning plan 501" in b.evidence[0]["description"]
    # real time: bob completes the plan's second course → his badge
    w.docebo_state.enroll(103, 2)
    w.docebo_state.set_enrollment(103, 2, status="completed", date_complete="2025-06-01 10:00:00")
    payload = w.docebo_state.completion_payload(w.docebo_state.get_enrollment(103, 2))
    s = await handle_course_completion(w.ctx, payload)
    assert s.status == "succeeded", s.reason
    assert w.badge_keys() == [("alice@example.com", T_FIRE), ("bob@example.com", T_FIRE)]


async def test_F3c_never_issues_what_the_learner_holds_pending_or_accepted(make_world):
    w = make_world(_data(enrollments=[completed(101, 1), completed(101, 2), completed(101, 3)]))
    await w.prepare_dropdown({101: "Safety Basics"})
    w.credly_state.issue(
        {
            "badge_template_id": T_SAFETY,
            "recipient_email": "ALICE@example.com",
            "issued_to_first_name": "A",
            "issued_to_last_name": "A",
            "issued_at": "2024-01-01",
        }
    )
    acc = w.credly_state.issue(
        {
            "badge_template_id": T_SAFETY,
            "recipient_email": "bob@example.com",
            "issued_to_first_name": "B",
            "issued_to_last_name": "B",
            "issued_at": "2024-01-01",
        }
    )
    w.credly_state.earner_decides(acc.id, True)
    rej = w.credly_state.issue(
        {
            "badge_template_id": T_SAFETY,
            "recipient_email": "carol@example.com",
            "issued_to_first_name": "C",
            "issued_to_last_name": "C",
            "issued_at": "2024-01-01",
        }
    )
    w.credly_state.earner_decides(rej.id, False)
    s = await w.run("docebo-to-credly")
    assert s.status == "succeeded", s.reason
    # alice (pending) and bob (accepted) hold it; carol rejected hers, so she gets one
    assert s.counts["issued"] == 1 and s.counts["skipped"] == 2
    assert sorted(b.recipient_email.lower() for b in w.badges()) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    # decided from the bulk read, not by letting Credly refuse duplicates: one issue call only
    assert w.issue_calls() == 1


async def test_F7_batch_start_date_filters_completions(make_world):
    w = make_world(_data(enrollments=[completed(101, 1, "2024-12-31 23:00:00"), completed(101, 2, "2025-01-01 00:30:00")]))
    w.configure(BATCH_SYNC_START_DATE="2025-01-01")
    await w.prepare_dropdown({101: "Safety Basics"})
    s = await w.run("docebo-to-credly")
    assert w.badge_keys() == [("bob@example.com", T_SAFETY)]
    assert s.counts["examined"] == 1


async def test_E1_expiry_cases(make_world):
    enr = [completed(101, 1, "2025-03-01 10:00:00", validity_end="2026-03-01 10:00:00"), completed(101, 2, "2025-03-01 10:00:00")]
    # Docebo object's own expiry wins
    w = make_world(_data(enrollments=enr))
    w.configure(CREDLY_DEFAULT_EXPIRATION_DAYS="30")
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly")
    exp = {b.recipient_email: b.expires_at for b in w.badges()}
    assert exp["alice@example.com"] == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    # E1 (issue 12): N > 0 → the day the badge is issued in Credly (NOW = 2026-01-01) + N days, never the
    # completion date + N (a 2025 completion would get a badge expired on issue)
    assert exp["bob@example.com"] == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)


async def test_E1_zero_means_template_default_and_blank_means_never(make_world):
    w = make_world(_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00"), completed(102, 1, "2025-03-01 10:00:00")]))
    w.configure(CREDLY_DEFAULT_EXPIRATION_DAYS="0")
    await w.prepare_dropdown({101: "Certified Operator", 102: "Safety Basics"})  # T_CERT: template default 365 days
    await w.run("docebo-to-credly")
    exp = {b.template_id: b.expires_at for b in w.badges()}
    assert exp[T_CERT] == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)  # expires_at null → template default
    assert exp[T_SAFETY] is None  # template without a default: no expiry


async def test_F4_certification_awarded_updated_revoked_with_sync_revocation_true(make_world):
    w = make_world()
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    award = w.docebo_state.create_award(
        {"id_cert": 1, "user_id": 1, "issued_on": "2025-05-01 00:00:00", "expire_on": "2027-05-01 00:00:00"}
    )
    s = await handle_certification_event(w.ctx, "certification.awarded", w.docebo_state.award_payload(award))
    assert s.status == "succeeded", s.reason
    assert s.counts["issued"] == 1
    (b,) = w.badges()
    assert b.template_id == T_CERT and b.expires_at.date() == dt.date(2027, 5, 1) and b.issuer_earner_id == "1"
    # updated → replaced with the new dates
    w.docebo_state.update_award(award["id_award"], {"expire_on": "2028-05-01 00:00:00"})
    s = await handle_certification_event(w.ctx, "certification.updated", w.docebo_state.award_payload(award))
    assert s.counts["replaced"] == 1, runs.query_run_log(w.store, s.run_id)
    (b2,) = w.badges()
    assert b2.replaces_badge_id == b.id and b2.expires_at.date() == dt.date(2028, 5, 1)
    assert ledger.live_entry(w.store, "badge", "alice@example.com", T_CERT).object_id == b2.id
    # the same update again changes nothing
    s = await handle_certification_event(w.ctx, "certification.updated", w.docebo_state.award_payload(award))
    assert s.counts["replaced"] == 0 and len(w.badges()) == 1
    # revoked → revoked in Credly
    payload = w.docebo_state.award_payload(award)
    w.docebo_state.revoke_award(award["id_award"])
    s = await handle_certification_event(w.ctx, "certification.revoked", payload)
    assert s.counts["revoked"] == 1 and w.badges() == []
    assert w.credly_state.badges[b2.id].state == "revoked"


async def test_F4_revoked_with_sync_revocation_false_is_skipped_with_a_log_line(make_world):
    w = make_world()
    w.configure(SYNC_REVOCATION="false")
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 2, "issued_on": "2025-05-01 00:00:00"})
    await handle_certification_event(w.ctx, "certification.awarded", w.docebo_state.award_payload(award))
    payload = w.docebo_state.award_payload(award)
    w.docebo_state.revoke_award(award["id_award"])
    s = await handle_certification_event(w.ctx, "certification.revoked", payload)
    assert s.status == "succeeded" and s.counts["revoked"] == 0 and s.counts["skipped"] == 1
    assert len(w.badges()) == 1
    assert any("SYNC_REVOCATION is false" in ln["message"] for ln in runs.query_run_log(w.store, s.run_id))


async def test_F4_updated_without_a_badge_issues_one_and_F7_covers_awards(make_world):
    w = make_world(
        _data(awards=[{"id_award": 7, "id_cert": 1, "user_id": 3, "issued_on": "2025-02-02 00:00:00", "expire_on": None}])
    )
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    s = await w.run("docebo-to-credly")
    assert s.status == "succeeded", s.reason
    assert w.badge_keys() == [("carol@example.com", T_CERT)]
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 2, "issued_on": "2025-05-01 00:00:00"})
    s = await handle_certification_event(w.ctx, "certification.updated", w.docebo_state.award_payload(award))
    assert s.counts["issued"] == 1 and ("bob@example.com", T_CERT) in w.badge_keys()


async def test_F7_batch_skips_objects_already_expired_and_logs_them(make_world):
    # NOW in the test world is 2026-01-01
    awards = [
        {"id_award": 1, "id_cert": 1, "user_id": 1, "issued_on": "2024-01-01 00:00:00", "expire_on": "2025-06-01 00:00:00"},
        {"id_award": 2, "id_cert": 1, "user_id": 2, "issued_on": "2025-01-01 00:00:00", "expire_on": "2027-06-01 00:00:00"},
    ]
    w = make_world(
        base_data(awards=awards, enrollments=[completed(101, 3, "2025-03-01 10:00:00", validity_end="2025-02-01 00:00:00")])
    )
    await w.prepare_dropdown({101: "Safety Basics"})
    w.add_mapping(T_CERT, cert="CERT-OP")
    s = await w.run("docebo-to-credly")
    assert w.badge_keys() == [("bob@example.com", T_CERT)]
    lines = runs.query_run_log(w.store, s.run_id)
    assert any("expired on 2025-06-01" in ln["message"] for ln in lines)
    assert any("not after its date" in ln["message"] and ln["level"] == "warning" for ln in lines)
