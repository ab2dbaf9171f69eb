"""F5 (badge events), F6 (batch), L1 loop prevention, SYNC_REVOCATION, missing users."""

from __future__ import annotations

from services.flows import handle_badge_event
from services.store import ledger, runs
from tests.flows.world import T_FIRE, T_IMPORT, T_SAFETY, base_data
from tests.support.world import completed


def _issue(w, template, email, issued="2025-02-01 09:00:00", expires=None, accept=False):
    fields = {
        "badge_template_id": template,
        "recipient_email": email,
        "issued_to_first_name": "X",
        "issued_to_last_name": "Y",
        "issued_at": issued,
    }
    if expires:
        fields["expires_at"] = expires
    b = w.credly_state.issue(fields)
    if accept:
        w.credly_state.earner_decides(b.id, True)
    return b


def _last_notice(w):
    return w.credly_state.notice(w.credly_state.list_events()[-1])


async def _setup(w, *, et=True, cert=""):
    await w.run("templates")
    w.add_mapping(T_IMPORT, et=et, cert=cert)


async def test_F5_badge_created_makes_external_training_and_certification(world):
    await _setup(world, et=True, cert="CERT-OP")
    b = _issue(world, T_IMPORT, "bob@example.com", expires="2027-02-01 09:00:00")
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert s.status == "succeeded", s.reason
    (t,) = world.trainings()
    assert (t["user_id"], t["course_name"], t["training_institute"]) == (2, "Partner Skills", "Credly")
    assert t["date_from"].startswith("2025-02-01") and t["date_to"].startswith("2027-02-01")
    (a,) = world.awards()
    assert (a["user_id"], a["id_cert"], a["source"]) == (2, 1, "Credly")
    assert a["issued_on"].startswith("2025-02-01") and a["expire_on"].startswith("2027-02-01")
    assert b.id in a["external_link"]
    assert s.counts["created"] == 2
    # the same event again: nothing new
    s = await handle_badge_event(world.ctx, world.credly_state.notice(world.credly_state.list_events()[0 - 1]))
    assert len(world.trainings()) == 1 and len(world.awards()) == 1


async def test_F5_revoked_badge_removes_objects_when_sync_revocation_true(world):
    await _setup(world, et=True, cert="CERT-OP")
    b = _issue(world, T_IMPORT, "bob@example.com")
    await handle_badge_event(world.ctx, _last_notice(world))
    world.credly_state.revoke(b.id, "mistake")
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert s.status == "succeeded", s.reason
    assert world.trainings() == [] and world.awards() == []
    assert (s.counts["deleted"], s.counts["revoked"]) == (1, 1)
    assert ledger.live_entry(world.store, "external_training", "2", T_IMPORT) is None


async def test_F5_revoked_badge_kept_when_sync_revocation_false(world):
    world.configure(SYNC_REVOCATION="false")
    await _setup(world, et=True, cert="CERT-OP")
    b = _issue(world, T_IMPORT, "bob@example.com")
    await handle_badge_event(world.ctx, _last_notice(world))
    world.credly_state.revoke(b.id, "mistake")
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert len(world.trainings()) == 1 and len(world.awards()) == 1
    assert any("SYNC_REVOCATION is false" in ln["message"] for ln in runs.query_run_log(world.store, s.run_id))


async def test_F5_deleted_badge_removes_external_training(world):
    await _setup(world, et=True)
    b = _issue(world, T_IMPORT, "carol@example.com")  # Docebo has Carol@Example.com: e-mail match ignores case
    await handle_badge_event(world.ctx, _last_notice(world))
    assert len(world.trainings()) == 1
    world.credly_state.delete_badge(b.id)
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert s.status == "succeeded", s.reason
    assert world.trainings() == []


async def test_F5_replacement_same_template_updates_other_template_deletes(world):
    await _setup(world, et=True)
    b = _issue(world, T_IMPORT, "bob@example.com", issued="2025-02-01 09:00:00")
    await handle_badge_event(world.ctx, _last_notice(world))
    new = world.credly_state.replace(b.id, {"badge_template_id": T_IMPORT, "issued_at": "2025-03-01 09:00:00"})
    created_event = [e for e in world.credly_state.list_events() if e.event_type == "badge.created"][-1]
    s = await handle_badge_event(world.ctx, world.credly_state.notice(created_event))
    assert s.counts["updated"] == 1, runs.query_run_log(world.store, s.run_id)
    (t,) = world.trainings()
    assert t["date_from"].startswith("2025-03-01")
    # the old badge's own "replaced" event changes nothing
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert s.counts["deleted"] == 0 and len(world.trainings()) == 1
    # replaced by a badge of another (unmapped) template: the training goes
    world.credly_state.replace(new.id, {"badge_template_id": T_SAFETY, "issued_at": "2025-04-01 09:00:00"})
    created_event = [e for e in world.credly_state.list_events() if e.event_type == "badge.created"][-1]
    s = await handle_badge_event(world.ctx, world.credly_state.notice(created_event))
    assert s.status == "succeeded", s.reason
    assert world.trainings() == []


async def test_L1_badge_issued_by_the_product_is_not_imported_back(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1)]))
    await w.prepare_dropdown({101: "Safety Basics"})
    w.add_mapping(T_SAFETY, et=True)
    await w.run("docebo-to-credly")
    (b,) = w.badges()
    assert b.issuer_earner_id == "1"
    created = [e for e in w.credly_state.list_events() if e.event_type == "badge.created"][-1]
    s = await handle_badge_event(w.ctx, w.credly_state.notice(created))
    assert s.status == "succeeded" and w.trainings() == []
    assert any("(L1)" in ln["message"] for ln in runs.query_run_log(w.store, s.run_id))
    s = await w.run("credly-to-docebo")
    assert w.trainings() == [] and s.counts["skipped"] >= 1


async def test_F5_user_missing_in_docebo_is_skipped_and_logged(world):
    await _setup(world, et=True)
    _issue(world, T_IMPORT, "stranger@example.org")
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert s.status == "succeeded" and world.trainings() == []
    lines = runs.query_run_log(world.store, s.run_id)
    assert any("stranger@example.org" in ln["message"] and "no Docebo user" in ln["message"] for ln in lines)
    assert s.counts["skipped"] == 1


async def test_F5_rejected_badge_is_ignored(world):
    await _setup(world, et=True)
    b = _issue(world, T_IMPORT, "bob@example.com")
    world.credly_state.earner_decides(b.id, False)
    s = await handle_badge_event(world.ctx, _last_notice(world))
    assert world.trainings() == [] and any("rejected" in ln["message"] for ln in runs.query_run_log(world.store, s.run_id))


async def test_F6_batch_imports_every_mapped_badge_and_follows_revocations(world):
    await _setup(world, et=True, cert="CERT-OP")
    b1 = _issue(world, T_IMPORT, "alice@example.com", accept=True)
    b2 = _issue(world, T_IMPORT, "bob@example.com")
    _issue(world, T_IMPORT, "nobody@example.org")
    _issue(world, T_FIRE, "carol@example.com")  # template without a mapping
    s = await world.run("credly-to-docebo")
    assert s.status == "succeeded", s.reason
    assert sorted(t["user_id"] for t in world.trainings()) == [1, 2]
    assert sorted(a["user_id"] for a in world.awards()) == [1, 2]
    assert (s.counts["created"], s.counts["skipped"]) == (4, 1)
    before = world.writes()
    s2 = await world.run("credly-to-docebo")
    assert world.writes() == before and s2.counts["created"] == 0
    world.credly_state.revoke(b2.id, "x")
    world.credly_state.delete_badge(b1.id)
    # incremental: the revoked badge changed; a deleted badge leaves nothing changed to find
    # (its badge.deleted webhook handles it at once, or the next full run)
    s3 = await world.run("credly-to-docebo")
    assert s3.status == "succeeded" and s3.mode == "incremental", s3.reason
    assert [t["user_id"] for t in world.trainings()] == [1] and [a["user_id"] for a in world.awards()] == [1]
    assert (s3.counts["deleted"], s3.counts["revoked"]) == (1, 1)
    s4 = await world.run("credly-to-docebo", full=True)
    assert s4.status == "succeeded", s4.reason
    assert world.trainings() == [] and world.awards() == []
    assert (s4.counts["deleted"], s4.counts["revoked"]) == (1, 1)


async def test_F6_batch_start_date(world):
    world.configure(BATCH_SYNC_START_DATE="2025-01-15")
    await _setup(world, et=True)
    _issue(world, T_IMPORT, "alice@example.com", issued="2025-01-14 23:00:00")
    _issue(world, T_IMPORT, "bob@example.com", issued="2025-01-15 00:10:00")
    await world.run("credly-to-docebo")
    assert [t["user_id"] for t in world.trainings()] == [2]
