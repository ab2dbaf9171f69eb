"""The sandboxes' changed-since filters, Date header and time travel (incremental batches).

Docebo [I]: `updated_from=YYYY-MM-DD HH:MM:SS` on courses (`date_last_updated`), course and
learning-plan enrollments (`enrollment_date_last_updated`) and certification awards
(`date_last_updated`). Credly [INF]: `updated_at_min` / `_max` (and `created_at_*`) on badges
and templates, a date comparing whole days, a date-time comparing instants."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

import httpx
import pytest

from services.sandbox.credly.app import create_credly_app
from services.sandbox.credly.state import CredlyState
from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.docebo.state import DoceboState
from tests.flows.world import T_FIRE, T_SAFETY, base_data
from tests.support.world import completed


@pytest.fixture
async def docebo():
    data = base_data(
        enrollments=[completed(101, 1, "2025-03-01 10:00:00"), completed(102, 2, "2025-04-01 10:00:00")],
        awards=[{"id_award": 7, "id_cert": 1, "user_id": 1, "issued_on": "2025-05-01 00:00:00", "expire_on": None}],
        lp_enrollments=[{"learning_plan_id": 501, "user_id": 2, "enrolled_at": "2025-01-01 09:00:00"}],
        course_fields=[
            {"id": 9, "name": "Level", "type": "dropdown", "options": [{"id": 1, "label": "A"}, {"id": 2, "label": "B"}]}
        ],
    )
    state = DoceboState.from_demo(data)
    app = create_docebo_app(state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docebo.test") as http:
        token = (
            await http.post(
                "/oauth2/token",
                data={"client_id": state.client_id, "client_secret": state.client_secret, "grant_type": "client_credentials"},
            )
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield state, http


async def _items(http, path, params=()):
    r = await http.get(path, params=list(params) + [("page_size", "200")])
    assert r.status_code == 200, r.text
    return r.json()["data"]["items"]


async def test_docebo_updated_from_on_courses_enrollments_lp_enrollments_and_awards(docebo):
    state, http = docebo
    bound = state.now().strftime("%Y-%m-%d %H:%M:%S")
    since = [("updated_from", bound)]
    for path in (
        "/learn/v1/courses",
        "/course/v1/courses/enrollments",
        "/learningplan/v1/learningplans/enrollments",
        "/certification/v1/awards",
    ):
        assert await _items(http, path, since) == [], path
        assert await _items(http, path), path  # without the filter: everything
    state.advance(60)
    state.set_course_value(103, 9, 2)  # a dropdown value changed: the course's date_last_updated moves
    state.enroll(103, 3)
    state.set_enrollment(103, 3, status="completed")
    state.update_award(7, {"expire_on": "2027-01-01 00:00:00"})
    courses = await _items(http, "/learn/v1/courses", since)
    assert [c["id_course"] for c in courses] == [103]
    assert courses[0]["date_last_updated"] >= bound and courses[0]["field_9"] == 2
    enr = await _items(http, "/course/v1/courses/enrollments", since + [("enrollment_status[]", "completed")])
    assert [(e["course_id"], e["user_id"]) for e in enr] == [(103, 3)]
    assert enr[0]["enrollment_date_last_updated"] >= bound
    awards = await _items(http, "/certification/v1/awards", since)
    assert [a["id_award"] for a in awards] == [7] and awards[0]["date_last_updated"] >= bound
    # learner 2 completes the plan's second course: the plan enrollment changes
    state.enroll(103, 2)
    state.set_enrollment(103, 2, status="completed")
    lpe = await _items(http, "/learningplan/v1/learningplans/enrollments", since + [("extra_fields[]", "enrollment_status")])
    assert [(e["learning_plan_id"], e["user_id"], e["enrollment_status"]) for e in lpe] == [(501, 2, "completed")]
    # a deleted dropdown option clears the value of its courses and moves their date
    state.advance(60)
    later = [("updated_from", state.now().strftime("%Y-%m-%d %H:%M:%S"))]
    state.update_field(9, deleted=[2])
    assert [c["id_course"] for c in await _items(http, "/learn/v1/courses", later)] == [103]
    # a malformed bound is refused
    r = await http.get("/learn/v1/courses", params={"updated_from": "yesterday"})
    assert r.status_code == 400 and "updated_from" in r.json()["message"]


async def test_docebo_date_header_follows_time_travel_and_filter_can_be_ignored(docebo):
    state, http = docebo
    r = await http.get("/learn/v1/courses")
    before = parsedate_to_datetime(r.headers["date"])
    assert abs((before - dt.datetime.now(dt.UTC)).total_seconds()) < 5
    r = await http.put("/_sandbox/clock", json={"advance_s": 3600})
    assert r.json()["offset_s"] == 3600
    after = parsedate_to_datetime((await http.get("/learn/v1/courses")).headers["date"])
    assert 3590 < (after - before).total_seconds() < 3610
    r = await http.put("/_sandbox/config", json={"updated_from_filter": False})
    assert r.json()["updated_from_filter"] is False
    far = [("updated_from", "2099-01-01 00:00:00")]
    assert len(await _items(http, "/learn/v1/courses", far)) == 3  # ignored, as a tenant without it


@pytest.fixture
async def credly():
    state = CredlyState.from_demo(
        base_data(
            badges=[
                {
                    "id": "11111111-0000-4000-8000-000000000001",
                    "badge_template_id": T_SAFETY,
                    "recipient_email": "alice@example.com",
                    "issued_to_first_name": "A",
                    "issued_to_last_name": "A",
                    "issued_at": "2025-05-01T10:00:00.000Z",
                    "expires_at": None,
                    "state": "accepted",
                    "issuer_earner_id": None,
                },
            ]
        )
    )
    app = create_credly_app(state)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://credly.test/v1", auth=(state.token, "")
    ) as http:
        yield state, http


async def test_credly_updated_at_min_on_badges_by_instant_or_day(credly):
    state, http = credly
    path = f"/organizations/{state.organization_id}/badges"

    async def ids(flt):
        r = await http.get(path, params={"filter": flt})
        assert r.status_code == 200, r.text
        return [b["id"] for b in r.json()["data"]]

    assert len(await ids("updated_at_min::2025-05-01")) == 1  # a date: the whole day counts
    assert await ids("updated_at_min::2025-05-01T10:00:01Z") == []  # an instant: strictly by time
    state.advance(10)
    bound = state.now()
    state.advance(10)
    new = state.issue(
        {
            "recipient_email": "bob@example.com",
            "issued_to_first_name": "B",
            "issued_to_last_name": "B",
            "badge_template_id": T_FIRE,
            "issued_at": "2025-06-01T00:00:00Z",
        }
    )
    stamp = bound.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(f"updated_at_min::{stamp}") == [new.id]
    assert await ids(f"updated_at_max::{stamp}") == ["11111111-0000-4000-8000-000000000001"]
    assert await ids(f"updated_at_min::{stamp}|badge_template_id::{T_SAFETY}") == []
    r = await http.get(path, params={"filter": "updated_at_min::soon"})
    assert r.status_code == 422
    # the Date header is the organisation's clock; the filter can be switched off
    date = parsedate_to_datetime((await http.get(path)).headers["date"])
    assert abs((date - state.now()).total_seconds()) < 2
    state.honour_date_filters = False
    assert len(await ids("updated_at_min::2099-01-01")) == 2
