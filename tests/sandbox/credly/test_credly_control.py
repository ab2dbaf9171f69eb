"""The Credly sandbox's control endpoints (/_sandbox/) and its fault injection, in-process."""

from __future__ import annotations

import httpx
import pytest

from services.sandbox.credly.app import create_credly_app
from services.sandbox.faults import DroppedConnection, FaultConfig
from tests.support.credly_sandbox import T_ACTIVE, T_DRAFT, T_DUPES, T_EXPIRING, client_for, issue_fields, make_state, org

CTL = "http://credly.test/_sandbox"
ISSUE = "POST /v1/organizations/{org}/badges"
LIST_BADGES = "GET /v1/organizations/{org}/badges"


async def test_summary(credly, credly_state):
    r = await credly.get(CTL)
    assert r.status_code == 200
    body = r.json()
    assert body["organization_id"] == credly_state.organization_id and body["token"] == credly_state.token
    assert (body["templates"], body["badges"], body["events"]) == (5, 6, 0)


async def test_admin_creates_renames_archives_and_deletes_templates(credly, credly_state):
    r = await credly.post(f"{CTL}/templates", json={"name": "Kubernetes Operations Expert", "allow_duplicate_badges": True})
    assert r.status_code == 201
    tid = r.json()["data"]["id"]
    assert r.json()["data"]["state"] == "active" and r.json()["data"]["allow_duplicate_badges"] is True
    r = await credly.patch(f"{CTL}/templates/{tid}", json={"name": "Kubernetes Operations Champion"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Kubernetes Operations Champion"
    api = (await credly.get(org(f"/badge_templates/{tid}"))).json()["data"]
    assert api["name"] == "Kubernetes Operations Champion"
    r = await credly.post(f"{CTL}/templates/{tid}/archive")
    assert r.json()["data"]["state"] == "archived"
    assert (await credly.post(org("/badges"), json=issue_fields(badge_template_id=tid))).status_code == 422
    assert (await credly.delete(f"{CTL}/templates/{tid}")).status_code == 204
    assert (await credly.get(org(f"/badge_templates/{tid}"))).status_code == 404
    assert [e.event_type for e in credly_state.events.values()] == [
        "badge_template.created", "badge_template.changed", "badge_template.changed", "badge_template.deleted"]
    deleted = list(credly_state.events.values())[-1]
    detail = (await credly.get(org(f"/events/{deleted.id}"))).json()["data"]
    assert detail["badge_template"]["id"] == tid and detail["badge_template"]["state"] == "archived"


async def test_template_control_errors(credly):
    assert (await credly.post(f"{CTL}/templates", json={"name": ""})).status_code == 422
    assert (await credly.post(f"{CTL}/templates", json={"name": "X", "state": "weird"})).status_code == 422
    assert (await credly.patch(f"{CTL}/templates/nope", json={"name": "X"})).status_code == 404
    assert (await credly.patch(f"{CTL}/templates/{T_ACTIVE}", json={"colour": "red"})).status_code == 422
    r = await credly.delete(f"{CTL}/templates/{T_ACTIVE}")  # has badges
    assert r.status_code == 422 and "archive" in r.json()["data"]["message"]
    assert (await credly.delete(f"{CTL}/templates/{T_DRAFT}")).status_code == 204
    r = await credly.post(f"{CTL}/templates", json={"name": "Dup id", "id": T_ACTIVE})
    assert r.status_code == 422


async def test_badge_issued_by_hand_has_no_issuer_earner_id(credly, credly_state):
    r = await credly.post(f"{CTL}/badges", json={
        "badge_template_id": T_EXPIRING, "recipient_email": "hand@example.com", "issued_to_first_name": "Hand",
        "issued_to_last_name": "Made", "issuer_earner_id": "999", "state": "accepted"})
    assert r.status_code == 201
    badge = r.json()["data"]
    assert badge["issuer_earner_id"] is None and badge["state"] == "accepted"
    assert badge["issued_at"] == "2026-05-01T12:00:00.000Z"  # now, by the test clock
    assert badge["expires_at"] == "2027-05-01T12:00:00.000Z"  # the template's 365 days
    assert [e.event_type for e in credly_state.events.values()] == ["badge.created", "badge.state.changed"]
    dup = {"badge_template_id": T_EXPIRING, "recipient_email": "hand@example.com",
           "issued_to_first_name": "Hand", "issued_to_last_name": "Made"}
    assert (await credly.post(f"{CTL}/badges", json=dup)).status_code == 422
    assert (await credly.post(f"{CTL}/badges", json={**dup, "allow_duplicate": True})).status_code == 201
    assert (await credly.post(f"{CTL}/badges", json={**dup, "state": "revoked"})).status_code == 422


async def test_earner_accepts_or_rejects_pending_badges_only(credly, credly_state):
    pending = (await credly.post(org("/badges"), json=issue_fields())).json()["data"]["id"]
    r = await credly.post(f"{CTL}/badges/{pending}/accept")
    assert r.status_code == 200 and r.json()["data"]["state"] == "accepted"
    assert r.json()["data"]["user"]["email"] == "new.person@example.com"
    assert (await credly.post(f"{CTL}/badges/{pending}/reject")).status_code == 422
    other = (await credly.post(org("/badges"), json=issue_fields(badge_template_id=T_DUPES))).json()["data"]["id"]
    assert (await credly.post(f"{CTL}/badges/{other}/reject")).json()["data"]["state"] == "rejected"
    assert (await credly.post(f"{CTL}/badges/nope/accept")).status_code == 404
    kinds = [(e.event_type, e.badge.state) for e in credly_state.events.values()]
    assert kinds == [("badge.created", "pending"), ("badge.state.changed", "accepted"),
                     ("badge.created", "pending"), ("badge.state.changed", "rejected")]


async def test_webhook_settings(credly, credly_app):
    r = await credly.put(f"{CTL}/webhook", json={"url": "http://127.0.0.1:9/hook", "retry_delays": [0.5, 1],
                                                 "max_attempts": 4})
    assert r.status_code == 200 and r.json()["url"] == "http://127.0.0.1:9/hook"
    sender = credly_app.state.sandbox.webhooks
    assert (sender.retry_delays, sender.max_attempts) == ((0.5, 1.0), 4)
    assert (await credly.get(org())).json()["data"]["webhook_url"] == "http://127.0.0.1:9/hook"
    r = await credly.put(f"{CTL}/webhook", json={"url": None})
    assert r.json()["url"] is None and r.json()["deliveries"] == []


async def test_call_counters_read_and_reset(credly):
    await credly.get(org("/badges"))
    await credly.get(org("/badges"))
    await credly.get(f"{CTL}/calls")  # control calls are not counted
    r = await credly.get(f"{CTL}/calls")
    assert r.json()["calls"] == {LIST_BADGES: 2} and r.json()["total"] == 2
    assert r.json()["statuses"] == {LIST_BADGES: {"200": 2}}
    assert (await credly.delete(f"{CTL}/calls")).status_code == 204
    assert (await credly.get(f"{CTL}/calls")).json()["total"] == 0


async def test_token_control(credly):
    assert (await credly.put(f"{CTL}/token", json={"expired": True})).json()["expired"] is True
    assert (await credly.get(org("/badges"))).status_code == 401
    await credly.put(f"{CTL}/token", json={"expired": False})
    assert (await credly.get(org("/badges"))).status_code == 200
    await credly.put(f"{CTL}/token", json={"token": "new-token"})
    assert (await credly.get(org("/badges"))).status_code == 401


async def test_reset_restores_the_starting_world(credly, credly_state):
    await credly.post(org("/badges"), json=issue_fields())
    await credly.delete(org("/badges/bbbbbbbb-0000-4000-8000-000000000001"))
    await credly.post(f"{CTL}/templates", json={"name": "Temporary"})
    await credly.put(f"{CTL}/faults", json={"fail_rate": 1})
    r = await credly.post(f"{CTL}/reset")
    assert (r.json()["templates"], r.json()["badges"], r.json()["events"]) == (5, 6, 0)
    assert r.json()["faults"]["fail_rate"] == 0
    assert (await credly.get(f"{CTL}/calls")).json()["total"] == 0
    assert len((await credly.get(org("/badges"))).json()["data"]) == 6
    assert (await credly.post(org("/badges"), json=issue_fields())).status_code == 201


# -- faults --------------------------------------------------------------------------------------


async def statuses(client, n: int) -> list[int]:
    return [(await client.get(org("/badge_templates"))).status_code for _ in range(n)]


async def test_faults_set_through_control_are_deterministic_by_seed(credly):
    r = await credly.put(f"{CTL}/faults", json={"seed": 42, "fail_rate": 0.4, "fail_status": 502})
    assert r.status_code == 200 and r.json()["fail_rate"] == 0.4
    first = await statuses(credly, 30)
    assert set(first) == {200, 502}
    await credly.put(f"{CTL}/faults", json={"seed": 42})  # same seed: the sequence restarts
    assert await statuses(credly, 30) == first
    await credly.put(f"{CTL}/faults", json={"seed": 43})
    assert await statuses(credly, 30) != first
    failed = None
    while failed is None:
        r = await credly.get(org("/badge_templates"))
        failed = r if r.status_code == 502 else None
    assert failed.json() == {"data": {"message": failed.json()["data"]["message"]}, "metadata": None}


async def test_rate_limit_answers_429_with_retry_after(credly):
    await credly.put(f"{CTL}/faults", json={"rate_limit": 2, "rate_window_s": 60})
    assert await statuses(credly, 3) == [200, 200, 429]
    r = await credly.get(org("/badges"))
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["metadata"] is None and r.json()["data"]["message"]
    assert (await credly.get(CTL)).status_code == 200  # control is never limited
    bad = await credly.put(f"{CTL}/faults", json={"fail_rate": 3})
    assert bad.status_code == 400


async def test_forced_faults_through_control(credly):
    r = await credly.put(f"{CTL}/faults", json={"force": [{"kind": "fail", "route": LIST_BADGES, "times": 2}]})
    assert len(r.json()["forced"]) == 1
    assert (await credly.get(org("/badge_templates"))).status_code == 200
    assert [(await credly.get(org("/badges"))).status_code for _ in range(3)] == [503, 503, 200]


async def test_a_dropped_issue_call_leaves_exactly_one_badge_and_the_retry_says_already_holds():
    """What the clients engineer needs: the first POST is processed and then dropped; the client
    sees a transport error, retries, and gets the 422 duplicate answer, not a second badge."""
    state = make_state()
    faults = FaultConfig()
    app = create_credly_app(state, faults)
    faults.force("drop", route=ISSUE)
    async with client_for(app) as client:
        with pytest.raises(httpx.TransportError) as info:
            await client.post(org("/badges"), json=issue_fields())
        assert isinstance(info.value, DroppedConnection)
        retry = await client.post(org("/badges"), json=issue_fields())
        assert retry.status_code == 422 and "already has this badge" in retry.json()["data"]["message"]
        held = await client.get(org("/badges"), params={"filter": "recipient_email::new.person@example.com"})
        assert held.json()["metadata"]["total_count"] == 1
    assert app.state.sandbox.calls.statuses()[ISSUE] == {0: 1, 422: 1}


async def test_latency_is_applied(credly, credly_app):
    credly_app.state.sandbox.faults.update(latency_ms=30)
    import time

    started = time.perf_counter()
    await credly.get(org("/badges"))
    assert time.perf_counter() - started >= 0.03


async def test_fault_settings_read_back(credly):
    await credly.put(f"{CTL}/faults", json={"latency_ms": 0, "drop_rate": 0.25, "rate_limit": 10})
    r = await credly.get(f"{CTL}/faults")
    assert (r.json()["drop_rate"], r.json()["rate_limit"], r.json()["forced"]) == (0.25, 10, [])
    r = await credly.put(f"{CTL}/faults", json={"reset": True})
    assert (r.json()["drop_rate"], r.json()["rate_limit"]) == (0.0, None)


def test_a_query_is_computed_once_per_state_version_not_per_page():
    """Paging a large result reuses one list of references until something changes."""
    state = make_state(extra_templates=300)
    for n in range(3000):
        state.issue(issue_fields(recipient_email=f"p{n}@example.com",
                                 badge_template_id=f"99999999-0000-4000-8000-{n % 300:012d}"))
    filters, sort = {"state": ["pending"]}, [("issued_at", True)]
    first = state.query_badges(filters, sort)
    assert len(first) == 3002 and state.query_badges(filters, sort) is first
    one_template = state.query_badges({"badge_template_id": ["99999999-0000-4000-8000-000000000007"]}, [])
    assert len(one_template) == 10 and all(b.template_id.endswith("000000000007") for b in one_template)
    state.revoke(first[0].id, "test")
    again = state.query_badges(filters, sort)
    assert again is not first and len(again) == 3001
