"""Ledger intent → active protocol and notifications (N1 digest, deletion notice)."""

from __future__ import annotations

import pytest

from services.core import errors
from services.store import ledger, notifications
from services.store.runs import RunRecorder


def _intent(store, run_id=None, subject="A@X.com", target="T1"):
    return ledger.record_intent(
        store, object_type="badge", subject=subject, target=target, origin_type="course", origin_id=77, run_id=run_id
    )


def test_intent_then_confirm_then_replace_and_revoke(store):
    e = _intent(store)
    assert e.status == "intent" and e.subject == "a@x.com" and e.system == "credly"
    with pytest.raises(ledger.IntentConflict) as exc:
        _intent(store, subject="a@X.COM")
    assert exc.value.entry.id == e.id
    ledger.confirm(store, e.id, "badge-1", details={"issued_at": "2024-01-01"})
    live = ledger.live_entry(store, "badge", "a@x.com", "T1")
    assert live.status == "active" and live.object_id == "badge-1" and live.details == {"issued_at": "2024-01-01"}
    new = ledger.replace(store, e.id, "badge-2", details={"issued_at": "2024-02-01"})
    assert ledger.get(store, e.id).status == "replaced"
    assert ledger.live_entry(store, "badge", "a@x.com", "T1").object_id == "badge-2"
    ledger.mark(store, new.id, "revoked")
    assert ledger.live_entry(store, "badge", "a@x.com", "T1") is None
    # After a revoke the key is free again.
    assert _intent(store).status == "intent"
    assert ledger.find_by_object(store, "credly", "badge-2").status == "revoked"


def test_abandon_removes_only_intents(store):
    e = _intent(store)
    ledger.abandon(store, e.id)
    assert ledger.get(store, e.id) is None
    e2 = _intent(store)
    ledger.confirm(store, e2.id, "b")
    ledger.abandon(store, e2.id)
    assert ledger.get(store, e2.id).status == "active"


def test_orphaned_intent_detection(store):
    rec = RunRecorder.start(store, "docebo_to_credly", trigger="test")
    e = _intent(store, run_id=rec.id)
    assert not ledger.intent_is_orphaned(store, e, current_run_id=999)
    assert ledger.intent_is_orphaned(store, e, current_run_id=rec.id)
    rec.finish("failed")
    assert ledger.intent_is_orphaned(store, e, current_run_id=999)
    ledger.take_over(store, e.id, 999)
    assert ledger.get(store, e.id).run_id == 999


INTENT = ledger.Intent("external_training", 42, "T1", "credly_badge", "b1")


async def _create_once(store, create, object_id=str, **kw):
    return await ledger.create_once(store, INTENT, {"issued_at": "2024-01-01"}, create, object_id, run_id=None, **kw)


async def test_create_once_confirms_with_the_new_id(store):
    calls = []

    async def create():
        calls.append(ledger.live_entry(store, "external_training", 42, "T1").status)  # the intent is committed first
        return {"id": 7}

    created = await _create_once(store, create, lambda r: str(r["id"]))
    assert calls == ["intent"] and created.object_id == "7" and created.conflict is None
    live = ledger.live_entry(store, "external_training", "42", "T1")
    assert (live.status, live.object_id, live.origin_id, live.details) == ("active", "7", "b1", {"issued_at": "2024-01-01"})


async def test_create_once_conflict_makes_no_call(store):
    other = ledger.record_intent(store, object_type="external_training", subject=42, target="T1",
                                 origin_type="credly_badge", origin_id="b0", run_id=5)

    async def create():  # pragma: no cover - must not be called
        raise AssertionError("called despite a live row")

    created = await _create_once(store, create)
    assert created.object_id is None and created.conflict.entry.id == other.id


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (errors.ValidationError("Docebo", "POST /x", 400, "bad"), False),
        (errors.ConflictError("Docebo", "POST /x", 409, "dup"), False),
        (errors.RateLimitedError("Docebo", "POST /x", 429, "slow down"), True),
        (errors.ServerError("Docebo", "POST /x", 503, "down"), True),
        (errors.NetworkError("Docebo", "POST /x", None, "timed out"), True),
    ],
)
async def test_create_once_failure_abandons_only_on_a_definite_refusal(store, error, kept):
    async def create():
        raise error

    with pytest.raises(type(error)):
        await _create_once(store, create)
    live = ledger.live_entry(store, "external_training", 42, "T1")
    assert (live is not None and live.status == "intent") == kept


async def test_create_once_nothing_created_abandons(store):
    async def create():
        return "already holds"

    created = await _create_once(store, create, lambda r: None)
    assert created.object_id is None and created.conflict is None and created.result == "already holds"
    assert ledger.live_entry(store, "external_training", 42, "T1") is None


async def test_create_once_takes_over_an_orphaned_intent(store):
    orphan = ledger.record_intent(store, object_type="external_training", subject=42, target="T1",
                                  origin_type="credly_badge", origin_id="b1", run_id=3)

    async def create():
        return 9

    created = await _create_once(store, create, entry=orphan)
    row = ledger.get(store, orphan.id)
    assert created.object_id == "9" and (row.status, row.object_id, row.details) == ("active", "9", {"issued_at": "2024-01-01"})
    assert ledger.count_by_status(store, "external_training") == {"active": 1}


def test_recover_confirms_a_found_object(store):
    orphan = _intent(store, run_id=3)
    row = ledger.recover(store, orphan, "badge-9", details={"rule": "F3a"})
    assert (row.id, row.status, row.object_id, row.details) == (orphan.id, "active", "badge-9", {"rule": "F3a"})


def test_live_entries_bulk(store):
    for i in range(3):
        e = ledger.record_intent(
            store, object_type="external_training", subject=i, target=f"T{i % 2}", origin_type="credly_badge", origin_id=f"b{i}"
        )
        ledger.confirm(store, e.id, 100 + i)
    all_ = ledger.live_entries(store, "external_training")
    assert set(all_) == {("0", "T0"), ("1", "T1"), ("2", "T0")}
    assert set(ledger.live_entries(store, "external_training", targets=["T1"])) == {("1", "T1")}
    assert ledger.count_by_status(store) == {"active": 3}


def test_digest_collects_batch_errors_into_one_mail(store):
    rec = RunRecorder.start(store, "docebo_to_credly", trigger="test")
    for i in range(3):
        notifications.notify_error(store, f"issue failed {i}", object=f"user {i}", run_id=rec.id, in_digest=True)
    rec.finish("succeeded")
    digest_id = notifications.close_digest(store, rec.id)
    assert notifications.close_digest(store, rec.id) is None
    rows = notifications.list_notifications(store)
    digest = [r for r in rows if r["kind"] == "digest"]
    assert len(digest) == 1 and digest[0]["id"] == digest_id and digest[0]["mail_status"] == "pending"
    assert "3 errors" in digest[0]["title"] and "user 2" in digest[0]["body"]
    errors = [r for r in rows if r["kind"] == "error"]
    assert all(r["mail_status"] == "in_digest" and r["digest_id"] == digest_id for r in errors)
    assert notifications.count_notifications(store, include_digests=False) == 3


def test_deletion_notice_lists_templates_and_mappings(store):
    nid = notifications.deletion_notice(
        store,
        [{"template_id": "T1", "name": "Safety"}, {"template_id": "T2", "name": "Fire"}],
        [
            {
                "id": 4,
                "template_id": "T1",
                "template_name": "Safety",
                "learning_plan_id": "12",
                "certification_code": "",
                "import_as_external_training": 0,
            }
        ],
        run_id=None,
    )
    n = notifications.get_notification(store, nid)
    assert n["kind"] == "deletion_notice" and "2 badge templates" in n["title"] and "1 mapping" in n["title"]
    assert (
        "Safety (T1)" in n["body"] and "Fire (T2)" in n["body"] and "mapping 4" in n["body"] and "learning plan 12" in n["body"]
    )


def test_read_unread_and_config_dedup(store):
    a = notifications.notify_config_problem(store, "Flow blocked", "SYNC_REVOCATION is missing")
    b = notifications.notify_config_problem(store, "Flow blocked", "SYNC_REVOCATION is missing")
    assert a == b
    c = notifications.notify_error(store, "x")
    assert notifications.unread_count(store) == 2
    assert notifications.mark_read(store, [a]) == 1
    assert notifications.unread_count(store) == 1
    assert [r["id"] for r in notifications.list_notifications(store, unread_only=True)] == [c]
    # Once read, the same problem is stored again.
    assert notifications.notify_config_problem(store, "Flow blocked", "SYNC_REVOCATION is missing") != a
    assert notifications.mark_read(store) == 2
    assert notifications.mark_unread(store, [c]) == 1
    with pytest.raises(ValueError):
        notifications.create_notification(store, "bogus", "t")
