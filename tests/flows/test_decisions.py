"""Issue 12: the sync decisions at the edges (SPEC E1, F3c, O1, O3, O5, I1), through the flows and as
pure functions (services/flows/decisions.py). Each flow test failed on the code before issue 12."""

from __future__ import annotations

import datetime as dt

from services.flows import decisions, handle_certification_event
from services.store import ledger, runs
from tests.flows.world import NOW, T_CERT, T_SAFETY, base_data
from tests.support.world import completed


def _hand_issued(w, email: str, template_id: str, issued_at: str, **extra):
    fields = {
        "badge_template_id": template_id,
        "recipient_email": email,
        "issued_to_first_name": "X",
        "issued_to_last_name": "Y",
        "issued_at": issued_at,
        **extra,
    }
    return w.credly_state.issue(fields)


def _log(w, run_id: int) -> list[str]:
    return [ln["message"] for ln in runs.query_run_log(w.store, run_id)]


async def test_E1_default_days_count_from_the_day_of_issue_not_from_an_old_completion(make_world):
    # a 2023 completion with N = 30 used to get a badge expiring 2023-01-31: expired on issue
    w = make_world(base_data(enrollments=[completed(101, 1, "2023-01-01 10:00:00")]))
    w.configure(CREDLY_DEFAULT_EXPIRATION_DAYS="30")
    await w.prepare_dropdown({101: "Safety Basics"})
    s = await w.run("docebo-to-credly")
    assert s.counts["issued"] == 1
    (b,) = w.badges()
    assert b.issued_at.date() == dt.date(2023, 1, 1)
    assert b.expires_at == NOW + dt.timedelta(days=30)


async def test_F3c_an_expired_badge_of_ours_does_not_block_a_newer_completion(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-09-01 10:00:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    old = _hand_issued(w, "alice@example.com", T_SAFETY, "2024-01-01", expires_at="2025-01-01", issuer_earner_id="1")
    s = await w.run("docebo-to-credly", full=True)
    assert s.status == "succeeded", s.reason
    assert s.counts["replaced"] == 1, _log(w, s.run_id)
    (b,) = w.badges()
    assert b.replaces_badge_id == old.id and b.issued_at.date() == dt.date(2025, 9, 1)
    assert any("expired on 2025-01-01" in m and "(F3c)" in m for m in _log(w, s.run_id))


async def test_O1_a_certification_update_never_replaces_a_badge_issued_by_hand(make_world):
    w = make_world()
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    hand = _hand_issued(w, "alice@example.com", T_CERT, "2024-02-02", expires_at="2027-02-02")
    award = w.docebo_state.create_award(
        {"id_cert": 1, "user_id": 1, "issued_on": "2025-05-01 00:00:00", "expire_on": "2027-05-01 00:00:00"}
    )
    s = await handle_certification_event(w.ctx, "certification.updated", w.docebo_state.award_payload(award))
    assert s.status == "succeeded", s.reason
    assert s.counts["replaced"] == 0 and s.counts["issued"] == 0
    (b,) = w.badges()
    assert b.id == hand.id and b.issuer_earner_id in (None, "")
    assert any("not issued by credly-console: left as is (O1)" in m for m in _log(w, s.run_id))


async def test_O5_a_renewal_sent_as_awarded_replaces_our_badge_with_the_new_dates(make_world):
    w = make_world()
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    first = w.docebo_state.create_award(
        {"id_cert": 1, "user_id": 1, "issued_on": "2024-05-01 00:00:00", "expire_on": "2026-05-01 00:00:00"}
    )
    await handle_certification_event(w.ctx, "certification.awarded", w.docebo_state.award_payload(first))
    (b,) = w.badges()
    renewal = dict(w.docebo_state.award_payload(first))
    w.docebo_state.update_award(first["id_award"], {"issued_on": "2025-11-01 00:00:00", "expire_on": "2027-11-01 00:00:00"})
    renewal = w.docebo_state.award_payload(w.docebo_state.get_award(first["id_award"]))
    s = await handle_certification_event(w.ctx, "certification.awarded", renewal)
    assert s.counts["replaced"] == 1, _log(w, s.run_id)
    (b2,) = w.badges()
    assert b2.replaces_badge_id == b.id
    assert (b2.issued_at.date(), b2.expires_at.date()) == (dt.date(2025, 11, 1), dt.date(2027, 11, 1))
    assert any("(O5)" in m for m in _log(w, s.run_id))


async def test_O3_a_revoked_badge_is_not_reissued_for_the_same_completion_but_is_for_a_recompletion(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly")
    (b,) = w.badges()
    w.credly_state.revoke(b.id, "revoked by an admin in Credly")
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 0 and w.badges() == []
    assert any("same source" in m and "(O3)" in m for m in _log(w, s.run_id))
    # the learner completes the course again, later: a newer source issues again
    w.docebo_state.set_enrollment(101, 1, status="completed", date_complete="2025-10-01 09:00:00")
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 1, _log(w, s.run_id)
    (b2,) = w.badges()
    assert b2.issued_at.date() == dt.date(2025, 10, 1)
    entry = ledger.live_entry(w.store, "badge", "alice@example.com", T_SAFETY)
    assert entry.object_id == b2.id and entry.user_id == "1" and entry.origin_date.startswith("2025-10-01")


async def test_dry_run_shows_the_decisions_like_any_other(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly")
    (b,) = w.badges()
    w.credly_state.revoke(b.id, "admin")
    s = await w.run("docebo-to-credly", full=True, dry_run=True)
    assert any("(O3)" in m for m in _log(w, s.run_id))


# -- the pure functions, for one learner and one template (what `explain` calls) ------------------

_T = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def _source(**kw) -> decisions.Source:
    base = {"user_id": "1", "template_id": "t", "rule": "F4", "origin_type": "certification_award", "origin_id": "7",
            "issued_at": _T}
    return decisions.Source(**{**base, **kw})


def test_decide_badge_cases():
    now = NOW
    held_ours = decisions.HeldBadge("b1", _T, None, "1")
    held_hand = decisions.HeldBadge("b2", _T - dt.timedelta(days=9), None, "")
    assert decisions.decide_badge(_source(), None, None, now=now, default_days=None).action == "issue"
    assert decisions.decide_badge(_source(), held_ours, None, now=now, default_days=None) == decisions.Decision(
        "nothing", "already holds badge b1: not issued again", "F3c"
    )
    assert decisions.decide_badge(_source(), held_hand, None, now=now, default_days=None).rule == "O1"
    renewal = _source(issued_at=_T + dt.timedelta(days=300))
    assert decisions.decide_badge(renewal, held_ours, None, now=now, default_days=None).action == "replace"
    expired_src = _source(expires_at=now - dt.timedelta(days=1))
    d = decisions.decide_badge(expired_src, None, None, now=now, default_days=None)
    assert (d.action, d.rule) == ("nothing", "E1") and "expired in Docebo on 2025-12-31" in d.reason
    revoked = decisions.IssuedBefore("b1", "revoked", "certification_award", "7", _T)
    assert decisions.decide_badge(_source(), None, revoked, now=now, default_days=None).rule == "O3"
    assert decisions.decide_badge(renewal, None, revoked, now=now, default_days=None).action == "issue"


def test_badge_expiry_E1():
    today = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)
    assert decisions.badge_expiry(None, today, None) is False
    assert decisions.badge_expiry(None, today, 0) is None
    assert decisions.badge_expiry(None, today, 30) == "2026-01-31 08:00:00 +0000"
    assert decisions.badge_expiry("2027-01-01 00:00:00", today, 30) == "2027-01-01 00:00:00 +0000"


async def test_batch_start_date_with_a_time_and_offset_uses_the_date_typed(make_world):
    # typed in UTC+2: its UTC date would be 2024-12-31 and let the 2024-12-31 completion in
    w = make_world(base_data(enrollments=[completed(101, 1, "2024-12-31 23:00:00"), completed(101, 2, "2025-01-01 00:30:00")]))
    w.configure(BATCH_SYNC_START_DATE="2025-01-01T00:30:00+02:00")
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly")
    assert w.badge_keys() == [("bob@example.com", T_SAFETY)]


async def test_O2_no_echo_an_award_F5_made_from_a_badge_never_makes_F4_or_F7_touch_badges(make_world):
    from services.flows import handle_badge_event

    w = make_world()
    w.configure(CREDLY_DEFAULT_EXPIRATION_DAYS="30")
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    hand = _hand_issued(w, "alice@example.com", T_CERT, "2025-06-01")  # issued by hand, no expiry
    s = await handle_badge_event(w.ctx, w.credly_state.notice(w.credly_state.list_events()[-1]))
    assert s.status == "succeeded" and s.counts["created"] == 1, _log(w, s.run_id)
    (award,) = w.awards()
    for event in ("certification.awarded", "certification.updated"):
        s = await handle_certification_event(w.ctx, event, w.docebo_state.award_payload(award))
        assert s.counts["replaced"] == 0 and s.counts["issued"] == 0
        assert any("(O2)" in m for m in _log(w, s.run_id))
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["replaced"] == 0 and s.counts["issued"] == 0
    (b,) = w.badges()
    assert b.id == hand.id and b.expires_at == hand.expires_at and b.replaces_badge_id is None


async def test_O1_a_certification_revoke_never_revokes_a_badge_issued_by_hand(make_world):
    w = make_world()
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    hand = _hand_issued(w, "bob@example.com", T_CERT, "2024-02-02")
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 2, "issued_on": "2025-05-01 00:00:00"})
    payload = w.docebo_state.award_payload(award)
    w.docebo_state.revoke_award(award["id_award"])
    s = await handle_certification_event(w.ctx, "certification.revoked", payload)
    assert s.counts["revoked"] == 0
    assert [b.id for b in w.badges()] == [hand.id]
    assert any("left as is (O1)" in m for m in _log(w, s.run_id))


async def test_O5_in_the_batch_a_renewed_award_beats_the_older_one_still_in_force(make_world):
    awards = [
        {"id_award": 1, "id_cert": 1, "user_id": 1, "issued_on": "2024-01-01 00:00:00", "expire_on": "2026-06-01 00:00:00"},
        {"id_award": 2, "id_cert": 1, "user_id": 1, "issued_on": "2025-06-01 00:00:00", "expire_on": "2027-06-01 00:00:00"},
    ]
    w = make_world(base_data(awards=awards))
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 1
    (b,) = w.badges()
    assert (b.issued_at.date(), b.expires_at.date()) == (dt.date(2025, 6, 1), dt.date(2027, 6, 1))


async def test_O4_F7_revokes_a_badge_whose_award_was_revoked_without_a_webhook(make_world):
    w = make_world()
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 2, "issued_on": "2025-05-01 00:00:00"})
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 1
    (b,) = w.badges()
    w.docebo_state.revoke_award(award["id_award"])  # no webhook reaches the product
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["revoked"] == 1, _log(w, s.run_id)
    assert w.badges() == [] and w.credly_state.badges[b.id].state == "revoked"
    assert any("no longer exists (O4)" in m for m in _log(w, s.run_id))
    s = await w.run("docebo-to-credly", full=True)  # idempotent
    assert s.counts["revoked"] == 0 and s.counts["issued"] == 0


async def test_O4_with_sync_revocation_false_the_orphaned_badge_is_logged_and_kept(make_world):
    w = make_world()
    w.configure(SYNC_REVOCATION="false")
    await w.run("templates")
    w.add_mapping(T_CERT, cert="CERT-OP")
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 2, "issued_on": "2025-05-01 00:00:00"})
    await w.run("docebo-to-credly", full=True)
    w.docebo_state.revoke_award(award["id_award"])
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["revoked"] == 0 and len(w.badges()) == 1
    assert any("SYNC_REVOCATION is false" in m and "(O4)" in m for m in _log(w, s.run_id))


async def test_O4_a_badge_a_course_completion_still_calls_for_is_kept(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")]))
    await w.prepare_dropdown({101: "Certified Operator"})  # the course names the certification's template
    w.add_mapping(T_CERT, cert="CERT-OP")
    award = w.docebo_state.create_award({"id_cert": 1, "user_id": 1, "issued_on": "2025-05-01 00:00:00"})
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 1
    w.docebo_state.revoke_award(award["id_award"])
    s = await w.run("docebo-to-credly", full=True)
    assert s.counts["revoked"] == 0 and s.counts["issued"] == 0 and len(w.badges()) == 1
    assert any("kept: course 101" in m and "(O4)" in m for m in _log(w, s.run_id))


async def test_I1_an_email_change_in_Docebo_issues_nothing_to_the_new_address(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1, "2025-03-01 10:00:00")]))
    await w.prepare_dropdown({101: "Safety Basics"})
    await w.run("docebo-to-credly")
    (b,) = w.badges()
    w.docebo_state.update_user(1, {"email": "alice.archer@example.org"})  # as PUT /manage/v1/user/1 does
    before = w.issue_calls()
    s = await w.run("docebo-to-credly", full=True)
    assert s.status == "succeeded", s.reason
    assert s.counts["issued"] == 0 and w.issue_calls() == before  # no duplicate refused by Credly either
    assert [x.id for x in w.badges()] == [b.id]
    lines = [m for m in _log(w, s.run_id) if "(I1)" in m]
    assert len(lines) == 1 and "alice@example.com" in lines[0] and "alice.archer@example.org" in lines[0]
