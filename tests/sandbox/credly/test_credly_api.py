"""Contract tests of the Credly sandbox's API routes (credly.md §1–§4), in-process."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.sandbox.credly.app import create_credly_app
from tests.support.credly_sandbox import (
    BASE,
    ORG,
    T_ACTIVE,
    T_ARCHIVED,
    T_DRAFT,
    T_DUPES,
    T_EXPIRING,
    TOKEN,
    client_for,
    issue_fields,
    make_state,
    org,
)

LIST_METADATA = {"count", "current_page", "total_count", "total_pages", "per", "previous_page_url", "next_page_url"}


def error(message: str) -> dict:
    return {"data": {"message": message}, "metadata": None}


# -- envelope, paging ----------------------------------------------------------------------------


async def test_single_objects_come_in_the_data_envelope_with_empty_metadata(credly):
    r = await credly.get(org(f"/badge_templates/{T_ACTIVE}"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"data", "metadata"} and body["metadata"] == {}
    assert body["data"]["id"] == T_ACTIVE and body["data"]["name"] == "Cloud Security Foundations"
    assert body["data"]["badges_count"] == 2

    r = await credly.get(org())
    assert r.json()["data"]["id"] == ORG and r.json()["metadata"] == {}


async def test_lists_carry_exactly_the_documented_metadata(credly):
    r = await credly.get("/organizations")
    body = r.json()
    assert set(body["metadata"]) == LIST_METADATA
    assert body["metadata"] == {"count": 1, "current_page": 1, "total_count": 1, "total_pages": 1, "per": 50,
                                "previous_page_url": None, "next_page_url": None}
    assert [o["id"] for o in body["data"]] == [ORG]


async def test_paging_over_more_than_50_templates_by_following_next_page_url_verbatim():
    state = make_state(extra_templates=120)  # 125 templates
    async with client_for(create_credly_app(state)) as client:
        url, ids, pages = org("/badge_templates"), [], []
        params = {"filter": "state::active,archived,draft", "sort": "name"}
        while url:
            r = await client.get(url, params=params)
            params = None  # next_page_url already holds them
            assert r.status_code == 200
            meta = r.json()["metadata"]
            assert set(meta) == LIST_METADATA
            pages.append(meta)
            ids += [t["id"] for t in r.json()["data"]]
            url = meta["next_page_url"]
            if url:
                assert url.startswith(BASE + "/")  # absolute
                query = parse_qs(urlsplit(url).query)
                assert query["filter"] == ["state::active,archived,draft"] and query["sort"] == ["name"]
    assert [p["count"] for p in pages] == [50, 50, 25]
    assert [p["current_page"] for p in pages] == [1, 2, 3]
    assert {p["total_count"] for p in pages} == {125} and {p["total_pages"] for p in pages} == {3}
    assert pages[0]["previous_page_url"] is None
    assert parse_qs(urlsplit(pages[2]["previous_page_url"]).query)["page"] == ["2"]
    assert len(ids) == len(set(ids)) == 125
    assert ids == [t.id for t in sorted(state.templates.values(), key=lambda t: t.name.lower())]


async def test_page_beyond_the_end_is_empty_and_per_is_capped_at_50():
    state = make_state(extra_templates=120)
    async with client_for(create_credly_app(state)) as client:
        r = await client.get(org("/badge_templates"), params={"page": 9})
        assert r.json()["data"] == [] and r.json()["metadata"]["next_page_url"] is None
        assert r.json()["metadata"]["count"] == 0 and r.json()["metadata"]["current_page"] == 9
        r = await client.get(org("/badge_templates"), params={"per": 10})
        assert r.json()["metadata"]["per"] == 10 and r.json()["metadata"]["total_pages"] == 13
        assert "per=10" in r.json()["metadata"]["next_page_url"]
        r = await client.get(org("/badge_templates"), params={"per": 500})
        assert r.json()["metadata"]["per"] == 50


async def test_trailing_slashes_are_tolerated(credly):
    r = await credly.get(org("/badge_templates/"), params={"filter": "state::draft"})
    assert r.status_code == 200 and [t["id"] for t in r.json()["data"]] == [T_DRAFT]
    r = await credly.get(org(f"/badge_templates/{T_DRAFT}/"))
    assert r.status_code == 200


# -- auth and organisation -----------------------------------------------------------------------


async def test_missing_or_wrong_credentials_answer_401_with_the_error_body(credly_app):
    for auth in (None, ("wrong", ""), (TOKEN + "x", "")):
        async with client_for(credly_app, auth=auth) as client:
            r = await client.get(org("/badge_templates"))
            assert r.status_code == 401
            assert r.json() == error(r.json()["data"]["message"]) and r.json()["data"]["message"]
    async with client_for(credly_app, auth=None) as client:
        r = await client.get(org("/badges"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 401
        r = await client.get(org("/badges"), headers={"Authorization": "Basic !!!not-base64"})
        assert r.status_code == 401


async def test_the_token_without_a_colon_is_tolerated(credly_app):
    async with client_for(credly_app, auth=None) as client:
        header = "Basic " + base64.b64encode(TOKEN.encode()).decode()
        assert (await client.get(org("/badges"), headers={"Authorization": header})).status_code == 200


async def test_another_organisation_is_not_found(credly):
    r = await credly.get("/organizations/5f0e6d6c-0000-4000-8000-000000000000/badges")
    assert r.status_code == 404 and r.json() == error("Organization not found")


async def test_an_expired_or_rotated_token_stops_working(credly, credly_state):
    credly_state.token_expired = True
    assert (await credly.get(org("/badges"))).status_code == 401
    credly_state.token_expired = False
    credly_state.token = "rotated"
    assert (await credly.get(org("/badges"))).status_code == 401


async def test_unknown_routes_and_methods_use_the_error_body(credly):
    r = await credly.get("/nowhere")
    assert r.status_code == 404 and r.json() == error("Not found")
    r = await credly.patch(org("/badges"))
    assert r.status_code == 405 and r.json() == error("Method not allowed")


# -- templates -----------------------------------------------------------------------------------


async def ids(client, path, **params) -> list[str]:
    r = await client.get(org(path), params=params)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["data"]]


async def test_template_filters(credly):
    assert await ids(credly, "/badge_templates", filter="state::archived") == [T_ARCHIVED]
    assert set(await ids(credly, "/badge_templates", filter="state::active,draft")) == {
        T_ACTIVE, T_DUPES, T_DRAFT, T_EXPIRING}
    assert await ids(credly, "/badge_templates", filter="name::first aid") == [T_DUPES]
    assert await ids(credly, "/badge_templates", filter='name::"Legacy Archery"') == [T_ARCHIVED]
    assert await ids(credly, "/badge_templates", filter='name::"Legacy"') == []
    assert await ids(credly, "/badge_templates", filter="query::every year") == [T_DUPES]  # description
    assert await ids(credly, "/badge_templates", filter="state::active|query::cloud") == [T_ACTIVE]
    assert await ids(credly, "/badge_templates", filter="state::archived|query::cloud") == []
    assert len(await ids(credly, "/badge_templates", filter="no_such_key::x")) == 5  # ignored


async def test_filters_arrive_url_encoded_or_raw(credly):
    raw = await credly.get(org("/badge_templates") + "?filter=state::active|query::cloud")
    encoded = await credly.get(org("/badge_templates") + "?filter=state%3A%3Aactive%7Cquery%3A%3Acloud")
    assert [t["id"] for t in raw.json()["data"]] == [t["id"] for t in encoded.json()["data"]] == [T_ACTIVE]


async def test_template_sorts(credly):
    by_name = await ids(credly, "/badge_templates", sort="name")
    assert by_name == [T_ACTIVE, T_DRAFT, T_DUPES, T_EXPIRING, T_ARCHIVED]
    assert await ids(credly, "/badge_templates", sort="-name") == by_name[::-1]
    by_count = await ids(credly, "/badge_templates", sort="-badges_count|name")
    assert by_count[:2] == [T_ACTIVE, T_EXPIRING] and by_count[-1] == T_DRAFT


async def test_unknown_template_is_404(credly):
    r = await credly.get(org("/badge_templates/no-such-template"))
    assert r.status_code == 404 and r.json() == error("Resource not found")


# -- badges: list --------------------------------------------------------------------------------


def bid(n: int) -> str:
    return f"bbbbbbbb-0000-4000-8000-{n:012d}"


async def test_badge_filters(credly):
    assert await ids(credly, "/badges", filter="recipient_email::ADA@example.COM") == [bid(1), bid(3)]
    assert await ids(credly, "/badges", filter="recipient_email_all::ada@example.com") == [bid(1), bid(3)]
    assert await ids(credly, "/badges", filter="state::pending,accepted") == [bid(1), bid(2), bid(4), bid(6)]
    assert await ids(credly, "/badges", filter=f"badge_template_id::{T_EXPIRING}") == [bid(3), bid(6)]
    assert await ids(credly, "/badges", filter="issuer_earner_id::101,103") == [bid(1), bid(6)]
    assert await ids(credly, "/badges", filter="query::hopper") == [bid(2), bid(5)]
    assert await ids(credly, "/badges", filter="query::example.org") == [bid(6)]
    combined = f"recipient_email::grace@example.com|badge_template_id::{T_DUPES}|state::rejected"
    assert await ids(credly, "/badges", filter=combined) == [bid(5)]
    assert await ids(credly, "/badges", filter="recipient_email::nobody@example.com") == []


async def test_badge_sorts(credly):
    assert await ids(credly, "/badges", sort="-issued_at") == [bid(6), bid(2), bid(5), bid(1), bid(3), bid(4)]
    assert await ids(credly, "/badges", sort="issued_at") == [bid(4), bid(3), bid(1), bid(5), bid(2), bid(6)]
    assert await ids(credly, "/badges", sort="state|-issued_at") == [bid(1), bid(4), bid(6), bid(2), bid(5), bid(3)]
    # expires_at: badges without an expiry come last ascending
    assert (await ids(credly, "/badges", sort="expires_at"))[:2] == [bid(3), bid(6)]


async def test_badge_objects_read_like_credly(credly):
    r = await credly.get(org("/badges"), params={"filter": "recipient_email::ada@example.com|state::accepted"})
    [badge] = r.json()["data"]
    assert badge["state"] == "accepted" and badge["badge_url"].endswith(bid(1))
    assert "accept_badge_url" not in badge
    assert badge["user"]["email"] == "ada@example.com" and badge["issued_to"] == "Ada Lovelace"
    assert badge["issued_at"] == "2025-01-10T09:00:00.000Z" and badge["issued_at_date"] == "2025-01-10"
    assert badge["badge_template"]["id"] == T_ACTIVE and badge["issuer_earner_id"] == "101"
    [pending] = (await credly.get(org("/badges"), params={"filter": "issuer_earner_id::102"})).json()["data"]
    assert pending["user"] == {} and pending["accept_badge_url"].endswith(f"{bid(2)}/accept")
    assert "badge_url" not in pending


# -- badges: issue -------------------------------------------------------------------------------


async def test_issue_returns_201_with_a_pending_badge_and_records_an_event(credly, credly_state):
    evidence = [{"type": "UrlEvidence", "name": "Course", "value": "https://lms.example.com/c/1",
                 "description": "Completed the course"}]
    r = await credly.post(org("/badges"), json=issue_fields(issuer_earner_id="555", evidence=evidence))
    assert r.status_code == 201
    body = r.json()
    assert body["metadata"] == {}
    badge = body["data"]
    assert badge["state"] == "pending" and badge["user"] == {}
    assert badge["issued_at"] == "2026-04-01T14:41:00.000Z"
    assert badge["expires_at"] is None
    assert badge["issuer_earner_id"] == "555" and badge["recipient_email"] == "new.person@example.com"
    assert badge["evidence"][0]["value"] == "https://lms.example.com/c/1" and badge["evidence"][0]["id"]
    assert {k: v for k, v in badge["evidence"][0].items() if k != "id"} == evidence[0]
    assert badge["accept_badge_url"].endswith(badge["id"] + "/accept")
    [event] = list(credly_state.events.values())
    assert (event.event_type, event.badge.id) == ("badge.created", badge["id"])


async def test_issue_expiry_false_null_and_date(credly):
    never = await credly.post(org("/badges"), json=issue_fields(badge_template_id=T_EXPIRING, expires_at=False))
    assert never.status_code == 201 and never.json()["data"]["expires_at"] is None
    default = await credly.post(org("/badges"), json=issue_fields(
        badge_template_id=T_EXPIRING, recipient_email="b@example.com", expires_at=None))
    assert default.json()["data"]["expires_at"] == "2027-04-01T14:41:00.000Z"  # template: 365 days
    dated = await credly.post(org("/badges"), json=issue_fields(
        badge_template_id=T_EXPIRING, recipient_email="c@example.com", expires_at="2030-01-31"))
    assert dated.json()["data"]["expires_at"] == "2030-01-31T00:00:00.000Z"
    assert dated.json()["data"]["expires_at_date"] == "2030-01-31"
    bad = await credly.post(org("/badges"), json=issue_fields(
        badge_template_id=T_EXPIRING, recipient_email="d@example.com", expires_at="2020-01-01"))
    assert bad.status_code == 422


@pytest.mark.parametrize("template", [T_ARCHIVED, T_DRAFT, "7a7a7a7a-0000-4000-8000-000000000000", "", ...])
async def test_unknown_archived_draft_or_missing_template_is_422(credly, credly_state, template):
    r = await credly.post(org("/badges"), json=issue_fields(badge_template_id=template))
    assert r.status_code == 422
    assert r.json() == error("Invalid or missing Badge Template ID: ")
    assert len(credly_state.badges) == 6


@pytest.mark.parametrize(
    "missing", ["recipient_email", "issued_to_first_name", "issued_to_last_name", "issued_at"]
)
async def test_each_required_field_is_checked(credly, credly_state, missing):
    r = await credly.post(org("/badges"), json=issue_fields(**{missing: ...}))
    assert r.status_code == 422 and "can't be blank" in r.json()["data"]["message"]
    assert r.json()["metadata"] is None
    assert len(credly_state.badges) == 6


async def test_bad_email_and_bad_date_are_422(credly):
    assert (await credly.post(org("/badges"), json=issue_fields(recipient_email="not-an-email"))).status_code == 422
    assert (await credly.post(org("/badges"), json=issue_fields(issued_at="yesterday-ish"))).status_code == 422


async def test_duplicates_are_refused_by_email_any_case_and_by_issuer_earner_id(credly, credly_state):
    r = await credly.post(org("/badges"), json=issue_fields(recipient_email="GRACE@example.com"))
    assert r.status_code == 422 and "already has this badge" in r.json()["data"]["message"]
    r = await credly.post(org("/badges"), json=issue_fields(recipient_email="other@example.com", issuer_earner_id="101"))
    assert r.status_code == 422 and "already has this badge" in r.json()["data"]["message"]
    assert len(credly_state.badges) == 6


async def test_revoked_or_rejected_badges_do_not_block_and_templates_may_allow_duplicates(credly):
    # ada's T_EXPIRING badge is revoked; grace's T_DUPES badge is rejected (and T_DUPES allows duplicates)
    assert (await credly.post(org("/badges"), json=issue_fields(
        badge_template_id=T_EXPIRING, recipient_email="ada@example.com"))).status_code == 201
    for _ in range(2):
        assert (await credly.post(org("/badges"), json=issue_fields(
            badge_template_id=T_DUPES, recipient_email="grace@example.com"))).status_code == 201


async def test_duplicate_behavior_allow_and_replace(credly, credly_state):
    allowed = await credly.post(org("/badges"), json=issue_fields(recipient_email="ada@example.com",
                                                               duplicate_behavior="allow"))
    assert allowed.status_code == 201
    replaced = await credly.post(org("/badges"), json=issue_fields(recipient_email="grace@example.com",
                                                                duplicate_behavior="replace"))
    assert replaced.status_code == 201
    assert replaced.json()["data"]["replaces_badge_id"] == bid(2)
    assert credly_state.badges[bid(2)].state == "replaced"


async def test_form_encoded_bodies_work_like_json(credly):
    fields = issue_fields(badge_template_id=T_EXPIRING, expires_at="false")
    r = await credly.post(org("/badges"), data=fields)
    assert r.status_code == 201 and r.json()["data"]["expires_at"] is None
    r = await credly.post(org("/badges"), data=fields)
    assert r.status_code == 422


async def test_a_body_that_is_not_json_is_400(credly):
    r = await credly.post(org("/badges"), content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["metadata"] is None and r.json()["data"]["message"]


# -- batch ---------------------------------------------------------------------------------------


async def test_batch_issues_every_item(credly, credly_state):
    items = [issue_fields(recipient_email=f"p{i}@example.com") for i in range(3)]
    r = await credly.post(org("/badges/batch"), json={"badges": items})
    assert r.status_code == 201
    assert [b["recipient_email"] for b in r.json()["data"]] == [f"p{i}@example.com" for i in range(3)]
    assert len(credly_state.badges) == 9


async def test_a_bad_batch_item_is_422_with_error_index_and_nothing_is_issued(credly, credly_state):
    items = [issue_fields(recipient_email="ok@example.com"), issue_fields(badge_template_id=T_ARCHIVED),
             issue_fields(recipient_email="ok2@example.com")]
    r = await credly.post(org("/badges/batch"), json={"badges": items})
    assert r.status_code == 422
    assert r.json() == {"data": {"message": "Invalid or missing Badge Template ID: ", "error_index": 1}, "metadata": None}
    # the same person twice in one batch is a duplicate too
    r = await credly.post(org("/badges/batch"), json={"badges": [issue_fields(), issue_fields()]})
    assert r.status_code == 422 and r.json()["data"]["error_index"] == 1
    assert "already has this badge" in r.json()["data"]["message"]
    assert len(credly_state.badges) == 6 and not credly_state.events
    # Totara's recovery: drop the bad item, send the rest
    del items[1]
    assert (await credly.post(org("/badges/batch"), json={"badges": items})).status_code == 201


async def test_batch_limits(credly):
    r = await credly.post(org("/badges/batch"), json={"badges": [issue_fields(recipient_email=f"x{i}@example.com")
                                                                  for i in range(51)]})
    assert r.status_code == 422 and "50" in r.json()["data"]["message"]
    assert (await credly.post(org("/badges/batch"), json={"badges": []})).status_code == 422
    assert (await credly.post(org("/badges/batch"), json={})).status_code == 422


# -- revoke, replace, delete ---------------------------------------------------------------------


async def test_revoke(credly, credly_state, clock):
    clock.advance(days=1)
    r = await credly.put(org(f"/badges/{bid(1)}/revoke"), json={"reason": "Check bounced",
                                                                "suppress_revoke_notification_email": True})
    assert r.status_code == 200
    badge = r.json()["data"]
    assert (badge["state"], badge["revocation_reason"]) == ("revoked", "Check bounced")
    assert badge["state_updated_at"] == "2026-05-02T12:00:00.000Z"
    [event] = credly_state.events.values()
    assert event.event_type == "badge.state.changed" and event.badge.state == "revoked"
    again = await credly.put(org(f"/badges/{bid(1)}/revoke"), json={"reason": "again"})
    assert again.status_code == 422


async def test_revoke_needs_a_reason_which_may_come_as_a_query_parameter(credly, credly_state):
    r = await credly.put(org(f"/badges/{bid(2)}/revoke"), json={})
    assert r.status_code == 422 and r.json() == error("Reason can't be blank")
    assert credly_state.badges[bid(2)].state == "pending"
    r = await credly.put(org(f"/badges/{bid(2)}/revoke"), params={"reason": "Left the company"})
    assert r.status_code == 200 and r.json()["data"]["revocation_reason"] == "Left the company"


async def test_replace(credly, credly_state):
    r = await credly.post(org(f"/badges/{bid(1)}/replace"), json={
        "badge_template_id": T_ACTIVE, "issued_at": "2026-01-01 10:00:00 +0000", "expires_at": "2028-01-01"})
    assert r.status_code == 201
    new = r.json()["data"]
    assert new["replaces_badge_id"] == bid(1) and new["id"] != bid(1)
    assert new["state"] == "accepted"  # carried over from the old badge
    assert new["recipient_email"] == "ada@example.com" and new["expires_at"] == "2028-01-01T00:00:00.000Z"
    [old] = (await credly.get(org("/badges"), params={"filter": "issuer_earner_id::101|state::replaced"})).json()["data"]
    assert old["id"] == bid(1) and old["replacement_badge_id"] == new["id"]
    assert [e.event_type for e in credly_state.events.values()] == ["badge.created", "badge.state.changed"]
    again = await credly.post(org(f"/badges/{bid(1)}/replace"), json={"badge_template_id": T_ACTIVE,
                                                                    "issued_at": "2026-01-01"})
    assert again.status_code == 422
    assert (await credly.put(org(f"/badges/{bid(1)}/revoke"), json={"reason": "x"})).status_code == 422


async def test_replace_to_a_new_email_starts_pending_and_checks_the_template(credly):
    r = await credly.post(org(f"/badges/{bid(1)}/replace"), json={
        "badge_template_id": T_ACTIVE, "issued_at": "2026-01-01", "recipient_email": "ada.new@example.com"})
    assert r.status_code == 201 and r.json()["data"]["state"] == "pending"
    r = await credly.post(org(f"/badges/{bid(2)}/replace"), json={"issued_at": "2026-01-01"})
    assert r.status_code == 422 and r.json() == error("Invalid or missing Badge Template ID: ")
    r = await credly.post(org(f"/badges/{bid(2)}/replace"), json={"badge_template_id": T_ARCHIVED,
                                                                 "issued_at": "2026-01-01"})
    assert r.status_code == 422


async def test_delete(credly, credly_state):
    r = await credly.delete(org(f"/badges/{bid(2)}"))
    assert r.status_code == 204 and r.content == b""
    assert bid(2) not in await ids(credly, "/badges")
    assert await ids(credly, "/badges", filter="recipient_email::grace@example.com") == [bid(5)]
    [event] = credly_state.events.values()
    detail = (await credly.get(org(f"/events/{event.id}"))).json()["data"]
    assert detail["event_type"] == "badge.deleted" and detail["badge"]["id"] == bid(2)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PUT", "/badges/{}/revoke", {"reason": "x"}),
        ("POST", "/badges/{}/replace", {"badge_template_id": T_ACTIVE, "issued_at": "2026-01-01"}),
        ("DELETE", "/badges/{}", None),
    ],
)
async def test_unknown_badges_are_404(credly, method, path, body):
    r = await credly.request(method, org(path.format("no-such-badge")), json=body)
    assert r.status_code == 404 and r.json() == error("Resource not found")


# -- events --------------------------------------------------------------------------------------


async def test_events_list_oldest_first_and_get_nests_the_object(credly, credly_state):
    await credly.post(org("/badges"), json=issue_fields())
    await credly.put(org(f"/badges/{bid(2)}/revoke"), json={"reason": "x"})
    credly_state.update_template(T_DUPES, name="First Aid Practitioner 2026")
    r = await credly.get(org("/events"))
    assert set(r.json()["metadata"]) == LIST_METADATA
    events = r.json()["data"]
    assert [e["event_type"] for e in events] == ["badge.created", "badge.state.changed", "badge_template.changed"]
    for e in events:
        assert e["organization_id"] == ORG and e["occurred_at"].endswith("Z")
    detail = await credly.get(org(f"/events/{events[1]['id']}"))
    assert detail.json()["metadata"] == {}
    assert detail.json()["data"]["badge"]["state"] == "revoked" and "badge_template" not in detail.json()["data"]
    detail = await credly.get(org(f"/events/{events[2]['id']}/"))
    assert detail.json()["data"]["badge_template"]["name"] == "First Aid Practitioner 2026"
    missing = await credly.get(org("/events/no-such-event"))
    assert missing.status_code == 404 and missing.json() == error("Resource not found")


async def test_events_keep_the_badge_as_it_was(credly, credly_state):
    await credly.put(org(f"/badges/{bid(2)}/revoke"), json={"reason": "x"})
    first = next(iter(credly_state.events))
    await credly.delete(org(f"/badges/{bid(2)}"))
    detail = (await credly.get(org(f"/events/{first}"))).json()["data"]
    assert detail["badge"]["state"] == "revoked"


async def test_organisation_webhook_url_can_be_set_through_the_api(credly, credly_app):
    r = await credly.put(org(), json={"webhook_url": "https://hooks.example.com/credly?secret=s"})
    assert r.status_code == 200 and r.json()["data"]["webhook_url"] == "https://hooks.example.com/credly?secret=s"
    assert credly_app.state.sandbox.webhooks.url == "https://hooks.example.com/credly?secret=s"
    await credly.put(org(), json={"webhook_url": None})
    assert credly_app.state.sandbox.webhooks.url is None


async def test_call_counters_use_route_templates(credly, credly_app):
    await credly.get(org("/badges"))
    await credly.get(org("/badges/"), params={"page": 2})
    await credly.put(org(f"/badges/{bid(1)}/revoke"), json={"reason": "x"})
    calls = credly_app.state.sandbox.calls
    assert calls.get("GET /v1/organizations/{org}/badges") == 2
    assert calls.get("PUT /v1/organizations/{org}/badges/{badge_id}/revoke") == 1
    assert calls.total() == 3


def test_httpx_is_what_clients_use():
    assert httpx.__version__.startswith("0.28")
