"""F6 incremental (issue 8): after a full run, a run reads the badges Credly changed since the
watermark and sends the learners they touch through the same decisions (F5, L1, E1, the
ledger)."""

from __future__ import annotations

import json

from services.flows import incremental
from services.flows.incremental import read_state
from services.store import runs
from tests.flows.world import T_FIRE, T_IMPORT, T_SAFETY, base_data, calls, delta, first_line, travel

FLOW = "credly-to-docebo"


def issue(w, template: str, email: str, *, issued: str = "2025-05-01T10:00:00Z", accept: bool = False):
    b = w.credly_state.issue({"recipient_email": email, "issued_to_first_name": "F", "issued_to_last_name": "L",
                              "badge_template_id": template, "issued_at": issued})
    return w.credly_state.earner_decides(b.id, True) if accept else b


def badge(n: int, template: str, email: str, state: str) -> dict:
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "badge_template_id": template, "recipient_email": email,
            "issued_to_first_name": "F", "issued_to_last_name": "L", "issued_at": "2025-05-01T10:00:00.000Z",
            "expires_at": None, "state": state, "issuer_earner_id": None}


async def full_world(make_world):
    """Alice and Bob hold Partner Skills (mapped: external training + CERT-PARTNER award), Carol
    holds Fire Warden (not mapped), all issued in 2025. One full run."""
    w = make_world(base_data(badges=[badge(1, T_IMPORT, "alice@example.com", "accepted"),
                                     badge(2, T_IMPORT, "bob@example.com", "pending"),
                                     badge(3, T_FIRE, "carol@example.com", "accepted")]))
    assert (await w.run("templates")).status == "succeeded"
    w.add_mapping(T_IMPORT, et=True, cert="CERT-PARTNER")
    s = await w.run(FLOW)
    assert (s.status, s.mode, s.counts["created"], s.counts["failed"]) == ("succeeded", "full", 4, 0), s.reason
    travel(w)
    return w


async def test_F6_incremental_nothing_changed_is_one_call(make_world):
    w = await full_world(make_world)
    before = calls(w)
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "incremental"
    assert delta(before, calls(w)) == {"credly GET /v1/organizations/{org}/badges": 1}
    assert first_line(w, s).startswith("incremental run: only changes (Credly since ")


async def test_F6_one_new_badge_gives_exactly_its_training_and_award_with_proportional_calls(make_world):
    w = await full_world(make_world)
    issue(w, T_IMPORT, "Carol@Example.com")
    travel(w, 60)  # the run starts a minute later
    before, trainings = calls(w), len(w.trainings())
    s = await w.run(FLOW)
    assert s.mode == "incremental" and (s.counts["created"], s.counts["failed"]) == (2, 0)
    assert len(w.trainings()) == trainings + 1 and w.trainings()[-1]["user_id"] == 3
    assert sorted(a["user_id"] for a in w.awards()) == [1, 2, 3]
    assert delta(before, calls(w)) == {
        "credly GET /v1/organizations/{org}/badges": 2,  # what changed, then Carol's badges
        "docebo GET /manage/v1/user": 1,  # Carol by e-mail
        "docebo GET /learn/v1/external_training": 1,  # her trainings
        "docebo GET /learn/v1/certification": 1,
        "docebo GET /certification/v1/awards": 1,  # her awards of the mapped certification
        "docebo POST /learn/v1/external_training": 1,
        "docebo POST /certification/v1/awards": 1,
    }
    # the badge is in the next run's overlap: not processed again
    travel(w)
    before = calls(w)
    assert (await w.run(FLOW)).counts["examined"] == 0
    assert delta(before, calls(w)) == {"credly GET /v1/organizations/{org}/badges": 1}


async def test_F6_revoked_and_replaced_badges_since_follow_F5(make_world):
    w = await full_world(make_world)
    alice = next(b for b in w.credly_state.badges.values() if b.recipient_email == "alice@example.com")
    bob = next(b for b in w.credly_state.badges.values() if b.recipient_email == "bob@example.com")
    w.credly_state.revoke(alice.id, "left the company")
    w.credly_state.replace(bob.id, {"badge_template_id": T_IMPORT, "issued_at": "2025-07-01T00:00:00Z",
                                    "expires_at": "2027-07-01T00:00:00Z"})
    s = await w.run(FLOW)
    assert s.mode == "incremental" and s.counts["failed"] == 0
    assert [t["user_id"] for t in w.trainings()] == [2] and w.trainings()[0]["date_to"].startswith("2027-07-01")
    assert [a["user_id"] for a in w.awards()] == [2] and w.awards()[0]["issued_on"].startswith("2025-07-01")
    assert (s.counts["deleted"], s.counts["revoked"], s.counts["updated"]) == (1, 1, 2)


async def test_F6_badge_issued_by_the_product_is_not_imported_back_L1(make_world):
    w = await full_world(make_world)
    w.credly_state.issue({"recipient_email": "carol@example.com", "issued_to_first_name": "C", "issued_to_last_name": "C",
                          "badge_template_id": T_IMPORT, "issued_at": "2025-08-01T00:00:00Z", "issuer_earner_id": "3"})
    s = await w.run(FLOW)
    assert s.mode == "incremental" and s.counts["created"] == 0 and s.counts["skipped"] == 1
    assert any("(L1)" in ln["message"] for ln in runs.query_run_log(w.store, s.run_id, limit=100))


async def test_F6_a_new_mapping_or_renamed_template_makes_the_next_run_full(make_world):
    w = await full_world(make_world)
    w.add_mapping(T_SAFETY, et=True)
    s = await w.run(FLOW)
    assert s.mode == "full" and "active mappings" in first_line(w, s)
    assert (await w.run(FLOW)).mode == "incremental"
    w.store.db.execute("UPDATE badge_templates SET name = 'Partner Skills II' WHERE template_id = ?", (T_IMPORT,))
    w.store.db.conn.commit()
    s = await w.run(FLOW)
    assert s.mode == "full" and "mapped template names" in first_line(w, s)
    assert s.counts["updated"] == 2  # both trainings carry the new name


async def test_F6_organisation_ignoring_the_filter_gives_correct_results_and_a_logged_fallback(make_world):
    w = await full_world(make_world)
    w.credly_state.honour_date_filters = False
    issue(w, T_IMPORT, "carol@example.com")
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "full" and s.counts["created"] == 2
    assert sorted(t["user_id"] for t in w.trainings()) == [1, 2, 3]
    lines = [ln["message"] for ln in runs.query_run_log(w.store, s.run_id, limit=1000)]
    assert (
        sum("Credly ignores the changed-since filter on badges" in ln and "falls back to full reads" in ln for ln in lines) == 1
    )
    assert "credly" in json.loads(w.store.get_meta(incremental.IGNORED_KEY))
    s2 = await w.run(FLOW)
    assert s2.mode == "full" and "Credly ignores the changed-since filter" in first_line(w, s2)
    assert s2.counts["created"] == 0
    # a dry run finds it out too (and plans the full run) but remembers nothing
    w.store.db.execute("DELETE FROM meta WHERE key = ?", (incremental.IGNORED_KEY,))
    w.store.db.conn.commit()
    dry = await w.run(FLOW, dry_run=True)
    assert dry.mode == "full" and dry.actions == [] and w.store.get_meta(incremental.IGNORED_KEY) is None
    assert first_line(w, dry).startswith("incremental run")


async def test_F6_incremental_dry_run_lists_what_the_real_run_does(make_world):
    w = await full_world(make_world)
    issue(w, T_IMPORT, "carol@example.com")
    bob = next(b for b in w.credly_state.badges.values() if b.recipient_email == "bob@example.com")
    w.credly_state.revoke(bob.id, "x")
    state = read_state(w.store, "credly_to_docebo")
    dry = await w.run(FLOW, dry_run=True)
    assert dry.mode == "incremental" and read_state(w.store, "credly_to_docebo") == state
    real = await w.run(FLOW)
    assert sorted((a["action"], a["object"]) for a in dry.actions) == sorted((a["action"], a["object"]) for a in real.actions)
    assert {a["action"] for a in real.actions} == {
        "create_external_training",
        "create_certification_award",
        "delete_external_training",
        "revoke_certification_award",
    }


async def test_F6_organisation_refusing_the_filter_falls_back_to_a_full_run(make_world, monkeypatch):
    from services.core.errors import ValidationError

    w = await full_world(make_world)
    issue(w, T_IMPORT, "carol@example.com")
    plain = w.credly.iter_badges

    async def iter_badges(**kw):  # as the client: the refusal comes with the first page
        if kw.get("updated_at_min") is not None:
            raise ValidationError("Credly", "GET /organizations/{org}/badges", 422, "Invalid filter")
        async for b in plain(**kw):
            yield b

    monkeypatch.setattr(w.credly, "iter_badges", iter_badges)
    s = await w.run(FLOW)
    assert s.status == "succeeded" and s.mode == "full" and s.counts["created"] == 2
    lines = [ln["message"] for ln in runs.query_run_log(w.store, s.run_id, limit=1000)]
    assert any("refused (422: Invalid filter)" in ln and "falls back to full reads" in ln for ln in lines)


async def test_F6_changes_outnumbering_a_full_read_go_full_on_their_first_page(make_world, monkeypatch):
    """Credly's total_count on the first page of the changed badges says they are more pages than
    a full run reads (the mapped template holds 3 badges: one page): the run goes full at once,
    says why, and reads the templates' counts once for both the decision and the full read."""
    w = await full_world(make_world)
    monkeypatch.setattr(incremental, "MAX_TOUCHED", 10)
    for n in range(60):  # a burst on a template with no mapping: two pages of changes
        issue(w, T_FIRE, f"walk-in{n}@example.com")
    issue(w, T_IMPORT, "carol@example.com")
    travel(w, 60)
    before = calls(w)
    s = await w.run(FLOW)
    assert (s.status, s.mode, s.counts["created"], s.counts["failed"]) == ("succeeded", "full", 2, 0)
    why = [
        ln["message"] for ln in runs.query_run_log(w.store, s.run_id, limit=10) if ln["message"].startswith("full run from here")
    ]
    assert why == [
        "full run from here: 61 badges changed (2 pages, read one after the other): more than "
        "the 1 pages of every badge of the 1 mapped templates that a full run reads"
    ]
    d = delta(before, calls(w))
    assert d["credly GET /v1/organizations/{org}/badges"] == 2  # the first page of the changes, then the full read
    assert d["credly GET /v1/organizations/{org}/badge_templates"] == 1
    assert read_state(w.store, "credly_to_docebo")["full_run_id"] == s.run_id


async def test_F6_changes_within_a_full_read_stay_incremental(make_world, monkeypatch):
    """More changed badges than MAX_TOUCHED, but no more pages than a full run reads: the run
    stays incremental (one listing of the templates to know it)."""
    w = await full_world(make_world)
    monkeypatch.setattr(incremental, "MAX_TOUCHED", 1)
    issue(w, T_IMPORT, "carol@example.com")
    issue(w, T_SAFETY, "carol@example.com")  # not mapped: two changed badges, one learner
    travel(w, 60)
    before = calls(w)
    s = await w.run(FLOW)
    assert (s.mode, s.counts["created"], s.counts["failed"]) == ("incremental", 2, 0)
    assert delta(before, calls(w))["credly GET /v1/organizations/{org}/badge_templates"] == 1
