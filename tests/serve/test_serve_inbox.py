"""The inbox store API: parsing (W1), insert-or-ignore (W2), leasing, order per learner,
retries (W3), crash recovery, admin retry and the console queries."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest

from services.store import inbox
from services.store.inbox import DeliveryError, NewItem, RetryPolicy

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
ORG = "11111111-2222-3333-4444-555555555555"


def completion(user: int, course: int = 7, **extra) -> dict:
    return {"user_id": user, "course_id": course, "status": "completed", **extra}


def docebo_body(message_id: str, *payloads: dict, grouped: bool = False) -> dict:
    body = {"message_id": message_id, "event": "course.enrollment.completed", "webhook_id": 1}
    if grouped or len(payloads) != 1:
        body["payloads"] = list(payloads)
    else:
        body["payload"] = payloads[0]
    return body


def notice(event_id: str, event_type: str = "badge.created", org: str = ORG) -> dict:
    return {"id": event_id, "organization_id": org, "event_type": event_type, "occurred_at": "2026-01-05T12:00:00Z"}


# -- parsing (W1) ---------------------------------------------------------------------------------


def test_single_docebo_payload_is_one_item_keyed_by_message_id():
    [item] = inbox.parse_docebo_delivery(docebo_body("wh-1", completion(12)))
    assert item.delivery_key == "docebo:wh-1:0"
    assert item.learner_key == "docebo-user:12"
    assert item.status == "queued"
    assert item.payload == completion(12)


def test_grouped_docebo_payloads_become_one_item_each():
    items = inbox.parse_docebo_delivery(docebo_body("wh-2", *[completion(u) for u in range(25)], grouped=True))
    assert [i.delivery_key for i in items] == [f"docebo:wh-2:{n}" for n in range(25)]
    assert {i.learner_key for i in items} == {f"docebo-user:{u}" for u in range(25)}


@pytest.mark.parametrize(
    "body, words",
    [
        ([1, 2], "not a JSON object"),
        ({"event": "course.enrollment.completed", "payload": {}}, "message_id"),
        ({"message_id": "", "event": "x", "payload": {}}, "message_id"),
        ({"message_id": "m", "payload": {}}, "event"),
        ({"message_id": "m", "event": "course.enrollment.completed"}, "neither payload nor payloads"),
        ({"message_id": "m", "event": "e", "payload": {}, "payloads": [{}]}, "both"),
        ({"message_id": "m", "event": "e", "payloads": []}, "non-empty list"),
        ({"message_id": "m", "event": "e", "payloads": [{}] * 26}, "at most 25"),
        ({"message_id": "m", "event": "e", "payloads": [{}, "x"]}, "payload 1"),
        ({"message_id": "m", "event": "e", "payload": "x"}, "payload 0"),
        ({"message_id": 5, "event": "e", "payload": {}}, "message_id"),
    ],
)
def test_malformed_docebo_bodies_are_refused_with_the_reason(body, words):
    with pytest.raises(DeliveryError) as info:
        inbox.parse_docebo_delivery(body)
    assert info.value.reason == "malformed"
    assert words in str(info.value)


def test_unhandled_docebo_event_is_stored_as_skipped():
    body = {"message_id": "m", "event": "course.updated", "payload": {"course_id": 3}}
    [item] = inbox.parse_docebo_delivery(body)
    assert item.status == "skipped" and "no handler" in item.last_error


def test_credly_notice_is_keyed_by_event_id_and_waits_for_resolution():
    item = inbox.parse_credly_notice(notice("ev-1"), ORG.upper())
    assert item.delivery_key == "credly:ev-1"
    assert item.learner_key == inbox.UNRESOLVED
    assert item.payload == notice("ev-1")


def test_credly_notice_for_another_organization_is_refused():
    with pytest.raises(DeliveryError) as info:
        inbox.parse_credly_notice(notice("ev-1", org="someone-else"), ORG)
    assert info.value.reason == "foreign_organization"


@pytest.mark.parametrize(
    "body",
    [
        "x",
        {"organization_id": ORG, "event_type": "badge.created"},
        {"id": "e", "organization_id": ORG},
        {"id": "e", "event_type": "badge.created"},
        {"id": "e", "organization_id": ORG, "event_type": "badge.created", "occurred_at": 5},
    ],
)
def test_malformed_credly_notices_are_refused(body):
    with pytest.raises(DeliveryError) as info:
        inbox.parse_credly_notice(body, ORG)
    assert info.value.reason == "malformed"


# -- insert or ignore (W2) ------------------------------------------------------------------------


def test_a_redelivery_is_a_duplicate_and_stores_nothing(store):
    items = inbox.parse_docebo_delivery(docebo_body("wh-1", completion(1), completion(2)))
    assert inbox.insert_items(store, items) == [True, True]
    for _ in range(4):
        assert inbox.insert_items(store, items) == [False, False]
    assert inbox.counts(store)["queued"] == 2


# -- claiming in order per learner ----------------------------------------------------------------


def put(store, *items: NewItem) -> None:
    inbox.insert_items(store, list(items), now=T0)


def item(key: str, learner: str, source: str = "docebo", event: str = "course.enrollment.completed") -> NewItem:
    return NewItem(source, key, event, learner, {"k": key})


def test_events_of_one_learner_are_claimed_one_after_the_other(store):
    put(store, item("a1", "u:a"), item("b1", "u:b"), item("a2", "u:a"), item("b2", "u:b"))
    first = inbox.claim(store, "w", limit=10, now=T0)
    assert [r["delivery_key"] for r in first] == ["a1", "b1"]  # a2, b2 wait for their learner
    assert all(r["status"] == "processing" and r["attempts"] == 1 for r in first)
    assert inbox.claim(store, "w", now=T0) == []
    inbox.complete(store, first[0]["id"], "w", now=T0)
    [nxt] = inbox.claim(store, "w", limit=10, now=T0)
    assert nxt["delivery_key"] == "a2"


def test_a_row_in_backoff_holds_back_its_learner_only(store):
    put(store, item("a1", "u:a"), item("a2", "u:a"), item("b1", "u:b"))
    [a1, b1] = inbox.claim(store, "w", limit=10, now=T0)
    inbox.record_failure(store, a1["id"], "w", "boom", retry_at=T0 + dt.timedelta(seconds=30), now=T0)
    inbox.complete(store, b1["id"], "w", now=T0)
    assert inbox.claim(store, "w", limit=10, now=T0 + dt.timedelta(seconds=10)) == []
    assert inbox.next_due(store) == T0 + dt.timedelta(seconds=30)
    [again] = inbox.claim(store, "w", limit=10, now=T0 + dt.timedelta(seconds=31))
    assert again["delivery_key"] == "a1" and again["attempts"] == 2 and again["last_error"] == "boom"


def test_a_failed_row_does_not_hold_back_its_learner(store):
    put(store, item("a1", "u:a"), item("a2", "u:a"))
    [a1] = inbox.claim(store, "w", limit=10, now=T0)
    inbox.record_failure(store, a1["id"], "w", "gave up", retry_at=None, now=T0)
    [a2] = inbox.claim(store, "w", limit=10, now=T0)
    assert a2["delivery_key"] == "a2"
    assert inbox.get_item(store, a1["id"])["status"] == "failed"


def test_unresolved_credly_rows_are_claimable_and_hold_back_later_credly_rows(store):
    put(
        store,
        item("c1", "?", "credly", "badge.created"),
        item("c2", "credly-email:x@example.com", "credly", "badge.created"),
        item("d1", "docebo-user:1"),
    )
    rows = inbox.claim(store, "w", limit=10, now=T0)
    assert [r["delivery_key"] for r in rows] == ["c1", "d1"]  # c2 waits for c1 to be resolved
    c1 = rows[0]
    inbox.set_learner_key(store, c1["id"], "w", "credly-email:x@example.com")
    back = inbox.get_item(store, c1["id"])
    assert back["status"] == "queued" and back["attempts"] == 0 and back["learner_key"] == "credly-email:x@example.com"
    # c1 is first for that learner now, c2 after it
    [again] = inbox.claim(store, "w", limit=10, now=T0)
    assert again["delivery_key"] == "c1"


def test_complete_needs_the_lease(store):
    put(store, item("a1", "u:a"))
    [a1] = inbox.claim(store, "w1", now=T0)
    assert not inbox.complete(store, a1["id"], "someone-else", now=T0)
    assert inbox.complete(store, a1["id"], "w1", run_id=9, now=T0)
    row = inbox.get_item(store, a1["id"])
    assert row["status"] == "done" and row["run_id"] == 9 and row["lease_owner"] == ""


def test_release_gives_the_row_back_without_counting_the_attempt(store):
    put(store, item("a1", "u:a"))
    [a1] = inbox.claim(store, "w", now=T0)
    assert inbox.release(store, a1["id"], "w")
    row = inbox.get_item(store, a1["id"])
    assert row["status"] == "queued" and row["attempts"] == 0


# -- crash safety ---------------------------------------------------------------------------------


def test_an_expired_lease_returns_the_row_to_the_queue(store):
    put(store, item("a1", "u:a"))
    [a1] = inbox.claim(store, "w", lease_s=60, now=T0)
    assert inbox.release_expired(store, max_attempts=5, now=T0 + dt.timedelta(seconds=59)) == []
    assert inbox.release_expired(store, max_attempts=5, now=T0 + dt.timedelta(seconds=61)) == [a1["id"]]
    [again] = inbox.claim(store, "w2", now=T0 + dt.timedelta(seconds=61))
    assert again["id"] == a1["id"] and again["attempts"] == 2


def test_extend_lease_keeps_a_long_event_in_hand(store):
    put(store, item("a1", "u:a"))
    [a1] = inbox.claim(store, "w", lease_s=60, now=T0)
    assert inbox.extend_lease(store, [a1["id"]], "w", lease_s=60, now=T0 + dt.timedelta(seconds=50)) == 1
    assert inbox.release_expired(store, max_attempts=5, now=T0 + dt.timedelta(seconds=100)) == []


def test_an_event_that_keeps_killing_the_worker_ends_failed(store):
    put(store, item("a1", "u:a"))
    moment = T0
    for _ in range(3):
        [row] = inbox.claim(store, "w", lease_s=10, now=moment)
        moment += dt.timedelta(seconds=11)
        inbox.release_expired(store, max_attempts=3, now=moment)
    row = inbox.get_item(store, row["id"])
    assert row["status"] == "failed" and "stopped while processing it" in row["last_error"]


def test_rows_of_a_dead_process_are_released_at_once(store):
    put(store, item("a1", "u:a"), item("b1", "u:b"), item("c1", "u:c"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    [a1] = inbox.claim(store, f"{host}:{dead_pid}:worker", now=T0)
    [b1] = inbox.claim(store, f"{host}:{os.getppid()}:worker", now=T0)  # alive: our parent
    [c1] = inbox.claim(store, f"other-host:{dead_pid}:worker", now=T0)  # another machine: not ours to judge
    assert inbox.release_dead_owners(store, max_attempts=5, now=T0) == [a1["id"]]
    assert inbox.get_item(store, a1["id"])["status"] == "queued"
    assert inbox.get_item(store, b1["id"])["status"] == "processing"
    assert inbox.get_item(store, c1["id"])["status"] == "processing"


# -- retries (W3) ---------------------------------------------------------------------------------


def test_retry_policy_backs_off_then_gives_up():
    policy = RetryPolicy(delays=(5, 30, 120), max_attempts=4, max_attempts_permanent=2)
    assert policy.next_attempt(1, retryable=True, now=T0) == T0 + dt.timedelta(seconds=5)
    assert policy.next_attempt(2, retryable=True, now=T0) == T0 + dt.timedelta(seconds=30)
    assert policy.next_attempt(3, retryable=True, now=T0) == T0 + dt.timedelta(seconds=120)
    assert policy.next_attempt(4, retryable=True, now=T0) is None
    assert policy.next_attempt(1, retryable=False, now=T0) == T0 + dt.timedelta(seconds=5)
    assert policy.next_attempt(2, retryable=False, now=T0) is None


def test_admin_retries_one_or_all_failed(store):
    put(store, item("a1", "u:a"), item("b1", "u:b"), item("c1", "u:c"))
    rows = inbox.claim(store, "w", limit=10, now=T0)
    for row in rows:
        inbox.record_failure(store, row["id"], "w", f"failed {row['delivery_key']}", retry_at=None, now=T0)
    assert inbox.counts(store)["failed"] == 3
    assert inbox.retry(store, rows[0]["id"])
    assert not inbox.retry(store, rows[0]["id"])  # already queued
    again = inbox.get_item(store, rows[0]["id"])
    assert again["status"] == "queued" and again["attempts"] == 0 and again["last_error"] == "failed a1"
    assert inbox.retry_all_failed(store) == 2
    assert inbox.counts(store) == {**{s: 0 for s in inbox.STATUSES}, "queued": 3, "backlog": 3, "total": 3}


# -- queries --------------------------------------------------------------------------------------


def test_console_queries_page_filter_and_count(store):
    put(store, *[item(f"k{n}", f"u:{n}") for n in range(30)])
    put(store, item("cr", "?", "credly", "badge.created"))
    assert inbox.count_items(store) == 31
    assert inbox.count_items(store, source="credly") == 1
    page = inbox.list_items(store, limit=10, offset=5)
    assert [r["delivery_key"] for r in page] == [f"k{n}" for n in range(25, 15, -1)]
    assert "payload" not in page[0]
    assert inbox.count_items(store, text="k2") == 11  # k2, k20..k29
    assert inbox.count_items(store, status="backlog") == 31
    with pytest.raises(ValueError):
        inbox.list_items(store, status="bogus")


def test_prune_deletes_old_processed_rows_only(store):
    put(store, item("a", "u:a"), item("b", "u:b"))
    a, b = inbox.claim(store, "w", limit=2, now=T0)
    inbox.complete(store, a["id"], "w", now=T0)
    inbox.record_failure(store, b["id"], "w", "x", retry_at=None, now=T0)
    assert inbox.prune(store, older_than_days=90, now=T0 + dt.timedelta(days=89)) == 0
    assert inbox.prune(store, older_than_days=90, now=T0 + dt.timedelta(days=91)) == 1
    assert inbox.count_items(store) == 1
