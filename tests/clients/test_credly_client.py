"""CredlyClient against the Credly sandbox in-process (api/credly.md; F1, F3c, F4, F5)."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.clients.credly import (
    AlreadyHolds,
    CredlyClient,
    Issued,
    badge_template_of,
    credly_filter,
)
from services.clients.http import HttpPolicy
from services.core.errors import (
    AuthenticationError,
    NotFoundError,
    UnexpectedResponseError,
    ValidationError,
)

BADGES = "POST /v1/organizations/{org}/badges"
BATCH = "POST /v1/organizations/{org}/badges/batch"


def active_template(state, *, duplicates: bool = False):
    return next(t for t in state.templates.values()
                if t.state == "active" and t.allow_duplicate_badges == duplicates)


def issue_fields(template_id: str, email: str, **extra) -> dict:
    return {"recipient_email": email, "badge_template_id": template_id,
            "issued_to_first_name": "Ada", "issued_to_last_name": "Lovelace",
            "issued_at": "2026-03-13 14:58:26 +0000", "expires_at": False, **extra}


def badges_of(state, template_id: str, email: str) -> list:
    return [b for b in state.badges.values()
            if b.template_id == template_id and b.recipient_email.lower() == email.lower()]


# ------------------------------------------------------------------------------------------
# filters and reading


def test_filter_syntax():
    assert credly_filter(state=["pending", "accepted"], recipient_email="a@b.example") == \
        "state::pending,accepted|recipient_email::a@b.example"
    assert credly_filter(state=None, query="") is None
    assert credly_filter(public=True) == "public::true"
    with pytest.raises(ValueError):
        credly_filter(query="a|b")


async def test_every_template_page_is_read(credly, credly_world):
    state, _ = credly_world
    templates = [t async for t in credly.iter_templates()]
    assert len(templates) == len(state.templates) > 50  # more than one page of 50
    assert len({t["id"] for t in templates}) == len(templates)
    assert credly.calls.snapshot() == {"GET /organizations/{org}/badge_templates": 2}


async def test_templates_filtered_by_state(credly, credly_world):
    state, _ = credly_world
    active = [t async for t in credly.iter_templates(states=["active"])]
    assert {t["state"] for t in active} == {"active"}
    assert len(active) == sum(1 for t in state.templates.values() if t.state == "active")
    one = await credly.get_template(active[0]["id"])
    assert one["id"] == active[0]["id"] and one["name"] == active[0]["name"]


async def test_badges_filtered_by_template_email_and_state(credly, credly_world):
    state, _ = credly_world
    sample = next(b for b in state.badges.values() if b.state == "pending")
    found = [b async for b in credly.iter_badges(badge_template_id=sample.template_id,
                                                 recipient_email=sample.recipient_email,
                                                 states=["pending", "accepted"])]
    assert [b["id"] for b in found] == [sample.id]
    assert badge_template_of(found[0]) == sample.template_id
    everything = [b async for b in credly.iter_badges()]
    assert len(everything) == len(state.badges)


async def test_a_next_page_on_another_host_is_refused():
    hits = []

    async def page(request):
        hits.append(str(request.url))
        return JSONResponse({"data": [{"id": "t1"}], "metadata": {
            "next_page_url": "http://elsewhere.example/v1/organizations/o/badge_templates?page=2"}})

    app = Starlette(routes=[Route("/v1/organizations/o/badge_templates", page)])
    client = CredlyClient("http://credly.sandbox.test/v1", "o", "secret-token-xyz",
                          transport=httpx.ASGITransport(app=app))
    seen = []
    with pytest.raises(UnexpectedResponseError) as info:
        async for t in client.iter_templates():
            seen.append(t)
    assert seen == [{"id": "t1"}] and len(hits) == 1
    assert "another server" in str(info.value) and "Credly" in str(info.value)
    await client.aclose()


# ------------------------------------------------------------------------------------------
# issuing


async def test_issue_then_duplicate_is_already_holds(credly, credly_world):
    state, _ = credly_world
    tpl = active_template(state)
    result = await credly.issue_badge(issue_fields(tpl.id, "new.person@example.org",
                                                   issuer_earner_id="777"))
    assert isinstance(result, Issued) and not result.recovered
    assert result.badge["state"] == "pending"
    assert result.badge["issuer_earner_id"] == "777"
    again = await credly.issue_badge(issue_fields(tpl.id, "NEW.person@example.org"))
    assert isinstance(again, AlreadyHolds)
    assert "already has this badge" in again.message
    assert len(badges_of(state, tpl.id, "new.person@example.org")) == 1


async def test_issue_with_an_unusable_template_is_a_validation_error(credly):
    with pytest.raises(ValidationError) as info:
        await credly.issue_badge(issue_fields("no-such-template", "x@example.org"))
    e = info.value
    assert e.status == 422 and e.service == "Credly"
    assert e.call == "POST /organizations/{org}/badges"
    assert "Invalid or missing Badge Template ID" in str(e)


@pytest.mark.parametrize("duplicates", [False, True])
async def test_dropped_issue_call_makes_no_duplicate(credly, credly_world, duplicates):
    """Issue 4 acceptance: the sandbox creates the badge, then cuts the connection."""
    state, app = credly_world
    tpl = active_template(state, duplicates=duplicates)
    app.state.sandbox.faults.force("drop", route=BADGES)
    result = await credly.issue_badge(issue_fields(tpl.id, "dropped@example.org"))
    assert isinstance(result, Issued) and result.recovered
    held = badges_of(state, tpl.id, "dropped@example.org")
    assert len(held) == 1 and result.badge["id"] == held[0].id
    assert app.state.sandbox.calls.get(BADGES) == 1  # never sent again


async def test_issue_answered_with_5xx_is_checked_then_sent_once_more(credly, credly_world):
    state, app = credly_world
    tpl = active_template(state, duplicates=True)
    app.state.sandbox.faults.force("fail", route=BADGES, status=502)
    result = await credly.issue_badge(issue_fields(tpl.id, "flaky@example.org"))
    assert isinstance(result, Issued) and not result.recovered
    assert len(badges_of(state, tpl.id, "flaky@example.org")) == 1
    assert app.state.sandbox.calls.get(BADGES) == 2
    assert credly.calls.snapshot()["GET /organizations/{org}/badges"] == 1  # the lookup


async def test_batch_issue_reports_each_item(credly, credly_world):
    state, app = credly_world
    tpl = active_template(state)
    holder = next(b for b in state.badges.values()
                  if b.template_id == tpl.id and b.state in ("pending", "accepted")) \
        if any(b.template_id == tpl.id and b.state in ("pending", "accepted")
               for b in state.badges.values()) else None
    items = [issue_fields(tpl.id, f"batch{i}@example.org") for i in range(120)]
    items[70] = issue_fields(tpl.id, "batch3@example.org")  # duplicate of item 3
    items[90] = issue_fields("missing-template", "x@example.org")
    if holder is not None:
        items[10] = issue_fields(tpl.id, holder.recipient_email)
    results = await credly.issue_badges_batch(items)
    assert len(results) == 120
    assert isinstance(results[70], AlreadyHolds)
    assert isinstance(results[90], ValidationError) and "Badge Template ID" in results[90].message
    if holder is not None:
        assert isinstance(results[10], AlreadyHolds)
    issued = [r for r in results if isinstance(r, Issued)]
    assert len(issued) == 120 - 2 - (1 if holder is not None else 0)
    for i in (0, 3, 50, 119):
        assert results[i].badge["recipient_email"] == f"batch{i}@example.org"
    for i in range(120):
        if i in (10, 70, 90):
            continue
        assert len(badges_of(state, tpl.id, f"batch{i}@example.org")) == 1
    assert app.state.sandbox.calls.get(BATCH) >= 3


async def test_dropped_batch_is_looked_up_not_resent(credly, credly_world):
    state, app = credly_world
    tpl = active_template(state, duplicates=True)
    app.state.sandbox.faults.force("drop", route=BATCH)
    items = [issue_fields(tpl.id, f"drop{i}@example.org") for i in range(5)]
    results = await credly.issue_badges_batch(items)
    assert all(isinstance(r, Issued) and r.recovered for r in results)
    for i in range(5):
        assert len(badges_of(state, tpl.id, f"drop{i}@example.org")) == 1
    assert app.state.sandbox.calls.get(BATCH) == 1


# ------------------------------------------------------------------------------------------
# revoke, replace, delete, events


async def test_revoke_replace_delete_and_their_events(credly, credly_world):
    state, _ = credly_world
    tpl = active_template(state)
    first = (await credly.issue_badge(issue_fields(tpl.id, "cycle@example.org"))).badge
    replacement = await credly.replace_badge(first["id"], {
        "badge_template_id": tpl.id, "issued_at": "2026-04-01 10:00:00 +0000",
        "recipient_email": "cycle@example.org"})
    assert replacement["replaces_badge_id"] == first["id"]
    assert state.badges[first["id"]].state == "replaced"
    revoked = await credly.revoke_badge(replacement["id"], "Course withdrawn",
                                        suppress_notification=True)
    assert revoked["state"] == "revoked" and revoked["revocation_reason"] == "Course withdrawn"
    await credly.delete_badge(replacement["id"])
    assert replacement["id"] not in state.badges
    with pytest.raises(NotFoundError):
        await credly.delete_badge(replacement["id"])

    events = [e async for e in credly.iter_events()]
    types = [e["event_type"] for e in events]
    assert types[-1] == "badge.deleted" and "badge.state.changed" in types
    detail = await credly.get_event(events[-1]["id"])
    assert detail["event_type"] == "badge.deleted"
    assert detail["badge"]["id"] == replacement["id"]


async def test_dropped_replace_is_found_not_repeated(credly, credly_world):
    state, app = credly_world
    tpl = active_template(state)
    first = (await credly.issue_badge(issue_fields(tpl.id, "rep@example.org"))).badge
    app.state.sandbox.faults.force("drop", route="POST /v1/organizations/{org}/badges/{badge_id}/replace")
    new = await credly.replace_badge(first["id"], {
        "badge_template_id": tpl.id, "issued_at": "2026-05-01 10:00:00 +0000",
        "recipient_email": "rep@example.org"})
    assert new["replaces_badge_id"] == first["id"]
    replacements = [b for b in state.badges.values() if b.replaces_badge_id == first["id"]]
    assert len(replacements) == 1


async def test_delete_whose_answer_was_lost_counts_as_done(credly, credly_world):
    state, app = credly_world
    tpl = active_template(state)
    badge = (await credly.issue_badge(issue_fields(tpl.id, "del@example.org"))).badge
    app.state.sandbox.faults.force("drop", route="DELETE /v1/organizations/{org}/badges/{badge_id}")
    await credly.delete_badge(badge["id"])
    assert badge["id"] not in state.badges


# ------------------------------------------------------------------------------------------
# credentials and test_connection


async def test_wrong_token_is_an_authentication_error_naming_credly(credly_world, fast_policy):
    state, app = credly_world
    client = CredlyClient("http://credly.sandbox.test/v1", state.organization_id, "wrong-token-123",
                          policy=fast_policy, transport=httpx.ASGITransport(app=app))
    with pytest.raises(AuthenticationError) as info:
        [t async for t in client.iter_templates()]
    assert info.value.status == 401 and "Credly" in str(info.value)
    assert "wrong-token-123" not in str(info.value) + repr(info.value) + repr(client)
    report = await client.test_connection()
    assert not report.ok and "token" in report.message and "401" in report.message
    await client.aclose()


async def test_expired_token_is_reported(credly, credly_world):
    state, _ = credly_world
    state.token_expired = True
    report = await credly.test_connection()
    assert not report.ok and "180 days" in report.message


async def test_connection_ok_and_wrong_organization(credly_world, credly, fast_policy):
    state, app = credly_world
    report = await credly.test_connection()
    assert report.ok and str(len(state.templates)) in report.message
    wrong = CredlyClient("http://credly.sandbox.test/v1", "not-our-org", state.token,
                         policy=fast_policy, transport=httpx.ASGITransport(app=app))
    report = await wrong.test_connection()
    assert not report.ok and "not-our-org" in report.message and "404" in report.message
    await wrong.aclose()


async def test_connection_to_nothing_says_unreachable(sleeps):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CredlyClient(f"http://127.0.0.1:{port}/v1", "org", "tok-abcdef",
                          policy=HttpPolicy(sleep=sleeps))
    report = await client.test_connection()
    assert not report.ok and "Cannot reach Credly" in report.message
    assert len(sleeps.calls) == 1  # test_connection retries once only
    await client.aclose()


async def test_connection_reports_missing_settings():
    assert "token" in (await CredlyClient("https://api.credly.com/v1", "org", "").test_connection()).message
    assert "organization" in (await CredlyClient("https://api.credly.com/v1", "", "t").test_connection()).message
    assert "https://" in (await CredlyClient("api.credly.com", "o", "t").test_connection()).message


async def test_a_wrong_base_url_serving_html_is_explained():
    async def html(request):
        from starlette.responses import HTMLResponse
        return HTMLResponse("<!DOCTYPE html><html><body>Welcome</body></html>")

    app = Starlette(routes=[Route("/{p:path}", html)])
    client = CredlyClient("http://credly.sandbox.test/v1", "o", "tok-abcdef",
                          transport=httpx.ASGITransport(app=app))
    report = await client.test_connection()
    assert not report.ok and "does not answer like the Credly API" in report.message
    await client.aclose()


def test_client_repr_hides_the_token():
    client = CredlyClient("https://api.credly.com/v1", "org-1", "super-secret-token")
    assert "super-secret-token" not in repr(client) and "org-1" in repr(client)
    import base64

    encoded = base64.b64encode(b"super-secret-token:").decode()
    assert "super-secret-token" not in repr(vars(client)) and encoded not in repr(vars(client))
