"""DoceboClient against the Docebo sandbox in-process (api/docebo.md; F2, F3, F4, F5, F7)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.clients.docebo import DoceboClient, field_name, option_label
from services.clients.http import HttpPolicy
from services.clients.routes import DOCUMENTED, ROUTES, TO_VERIFY, unverified_table_markdown
from services.core.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError

BASE = "http://docebo.sandbox.test"


def client_for(state, app, policy, **kw) -> DoceboClient:
    return DoceboClient(BASE, state.client_id, state.client_secret, policy=policy,
                        transport=httpx.ASGITransport(app=app), **kw)


# ------------------------------------------------------------------------------------------
# OAuth2


async def test_one_token_serves_many_calls(docebo):
    users = [u async for u in docebo.iter_users()]
    courses = [c async for c in docebo.iter_courses()]
    assert users and courses
    assert docebo.token_fetches == 1
    assert docebo.calls.snapshot()["POST /oauth2/token"] == 1


async def test_token_is_refreshed_before_it_expires(docebo_world, fast_policy):
    state, app = docebo_world
    now = {"t": 1000.0}
    client = client_for(state, app, fast_policy, clock=lambda: now["t"])
    await client.get_user(10001)
    now["t"] += 3600 - 300 + 1  # inside the refresh margin of a 3600 s token
    await client.get_user(10001)
    assert client.token_fetches == 2
    statuses = app.state.sandbox.calls.statuses()
    assert statuses["GET /manage/v1/user/{user_id}"] == {200: 2}  # no 401 was needed
    await client.aclose()


async def test_expired_token_is_refreshed_once_and_the_call_retried(docebo, docebo_world):
    """Issue 4 acceptance: the server expires every token; the client gets one 401, fetches a
    new token once and repeats the call once."""
    state, app = docebo_world
    await docebo.get_user(10001)
    assert state.expire_tokens() >= 1
    user = await docebo.get_user(10002)
    assert user["user_data"]["email"] == state.users[10002]["email"]
    assert docebo.token_fetches == 2
    assert app.state.sandbox.calls.statuses()["GET /manage/v1/user/{user_id}"] == {200: 2, 401: 1}


async def test_a_401_after_a_fresh_token_is_not_retried_forever(fast_policy):
    hits = {"token": 0, "api": 0}

    async def token(request: Request):
        hits["token"] += 1
        return JSONResponse({"access_token": f"tok-{hits['token']:040d}", "expires_in": 3600})

    async def api(request: Request):
        hits["api"] += 1
        return JSONResponse({"name": "Unauthorized", "message": "Token revoked", "status": 401},
                            status_code=401)

    app = Starlette(routes=[Route("/oauth2/token", token, methods=["POST"]),
                            Route("/manage/v1/user/{id}", api)])
    client = DoceboClient(BASE, "cid", "csecret-123456", policy=fast_policy,
                          transport=httpx.ASGITransport(app=app))
    with pytest.raises(AuthenticationError) as info:
        await client.get_user(1)
    assert hits == {"token": 2, "api": 2}
    assert "Docebo" in str(info.value) and "Token revoked" in str(info.value)
    assert "tok-" not in str(info.value)
    await client.aclose()


async def test_concurrent_401s_refresh_the_token_only_once(docebo, docebo_world):
    import asyncio

    state, _ = docebo_world
    await docebo.get_user(10001)
    state.expire_tokens()
    await asyncio.gather(*(docebo.get_user(uid) for uid in range(10001, 10011)))
    assert docebo.token_fetches == 2


async def test_wrong_client_secret(docebo_world, fast_policy):
    state, app = docebo_world
    client = DoceboClient(BASE, state.client_id, "not-the-secret-xyz", policy=fast_policy,
                          transport=httpx.ASGITransport(app=app))
    with pytest.raises(AuthenticationError) as info:
        await client.get_user(10001)
    e = info.value
    assert e.service == "Docebo" and e.call == "POST /oauth2/token" and e.status == 401
    assert "invalid_client" in str(e) and "not-the-secret-xyz" not in str(e)
    report = await client.test_connection()
    assert not report.ok and "refused the credentials" in report.message
    assert "not-the-secret-xyz" not in report.message
    await client.aclose()


async def test_password_grant(docebo_world, fast_policy):
    state, app = docebo_world
    client = client_for(state, app, fast_policy, grant="password",
                        username=state.admin_username, password=state.admin_password)
    report = await client.test_connection()
    assert report.ok, report.message
    assert "password grant" in report.message
    bad = client_for(state, app, fast_policy, grant="password",
                     username=state.admin_username, password="wrong-password-1")
    report = await bad.test_connection()
    assert not report.ok and "invalid_grant" in report.message
    await client.aclose()
    await bad.aclose()


async def test_connection_ok_and_bad_urls(docebo, fast_policy, docebo_world):
    report = await docebo.test_connection()
    assert report.ok and "Connected to Docebo" in report.message

    async def nothing(request):
        return JSONResponse({"message": "Not found"}, status_code=404)

    app = Starlette(routes=[Route("/{p:path}", nothing, methods=["GET", "POST"])])
    wrong = DoceboClient(BASE + "/some/path", "cid", "secret-1234", policy=fast_policy,
                         transport=httpx.ASGITransport(app=app))
    report = await wrong.test_connection()
    assert not report.ok and "404" in report.message and "platform URL" in report.message
    await wrong.aclose()
    missing = DoceboClient(BASE, "cid", "")
    assert "DOCEBO_CLIENT_SECRET" in (await missing.test_connection()).message
    await missing.aclose()


def test_repr_hides_secrets():
    client = DoceboClient(BASE, "cid", "top-secret-value", grant="password", username="admin",
                          password="another-secret")
    text = repr(client) + repr(vars(client))
    assert "top-secret-value" not in text and "another-secret" not in text


# ------------------------------------------------------------------------------------------
# paging and users


async def test_every_page_is_read_with_php_arrays(docebo_world, fast_policy):
    state, app = docebo_world
    client = client_for(state, app, fast_policy, page_size=7)
    users = [u async for u in client.iter_users()]
    assert len(users) == len(state.users)
    assert len({str(u["user_id"]) for u in users}) == len(users)
    pages = -(-len(state.users) // 7)
    assert client.calls.snapshot()["GET /manage/v1/user"] == pages
    await client.aclose()


async def test_find_user_by_email_is_exact_and_case_insensitive(docebo, docebo_world):
    state, _ = docebo_world
    target = state.users[10005]
    found = await docebo.find_user_by_email(target["email"].upper())
    assert found is not None and str(found["user_id"]) == "10005"
    assert await docebo.find_user_by_email("nobody@nowhere.example") is None
    # a prefix of a real address is not a match
    assert await docebo.find_user_by_email(target["email"][:-3]) is None
    assert await docebo.find_user_by_email("") is None


# ------------------------------------------------------------------------------------------
# courses and the additional field (F2, F3a)


async def test_course_field_values_from_list_and_detail(docebo, docebo_world):
    state, _ = docebo_world
    courses = {c["id_course"]: c async for c in docebo.iter_courses()}
    assert len(courses) == len(state.courses)
    assert docebo.course_field_value(courses[102], 1) == "2"
    assert docebo.course_field_value(courses[101], 1) is None
    detail = await docebo.get_course(103)
    assert docebo.course_field_value(detail, 1) == "1"
    assert docebo.course_field_value(detail, 2) == "CC-215"
    # the additional_fields list alone is enough
    only_list = {"additional_fields": [{"id": 9, "value": {"id": 4, "label": "X"}}]}
    assert DoceboClient.course_field_value(only_list, 9) == "4"
    assert DoceboClient.course_field_value(only_list, 8) is None


async def test_dropdown_field_lifecycle(docebo, docebo_world):
    state, app = docebo_world
    fields = await docebo.list_course_fields()
    assert {field_name(f) for f in fields} == {"Delivery region", "Cost center"}
    created = await docebo.create_course_dropdown_field("Credly badge", ["Badge A", "Badge B"])
    assert field_name(created) == "Credly badge"
    options = {option_label(o): o["id"] for o in created["options"]}
    assert set(options) == {"Badge A", "Badge B"}
    found = await docebo.find_course_field("credly BADGE")
    assert found["id"] == created["id"]

    updated = await docebo.update_course_dropdown_options(
        created["id"], new=["Badge C"], renamed={str(options["Badge A"]): "Badge A2"},
        deleted=[str(options["Badge B"])])
    assert sorted(option_label(o) for o in updated["options"]) == ["Badge A2", "Badge C"]

    before = app.state.sandbox.calls.get("PUT /learn/v1/courses/field/{field_id}")
    again = await docebo.update_course_dropdown_options(created["id"])  # F2: no change, no write
    assert app.state.sandbox.calls.get("PUT /learn/v1/courses/field/{field_id}") == before
    assert sorted(option_label(o) for o in again["options"]) == ["Badge A2", "Badge C"]

    with pytest.raises(ValidationError) as info:
        await docebo.update_course_dropdown_options(created["id"], deleted=[99999])
    assert info.value.status == 400 and "99999" in str(info.value)
    with pytest.raises(NotFoundError):
        await docebo.get_course_field(4242)


async def test_dropped_field_creation_makes_one_field(docebo, docebo_world):
    state, app = docebo_world
    app.state.sandbox.faults.force("drop", route="POST /learn/v1/courses/field")
    field = await docebo.create_course_dropdown_field("Credly badge", ["One"])
    named = [f for f in state.course_fields.values() if f["name"] == "Credly badge"]
    assert len(named) == 1 and field["id"] == named[0]["id"]
    assert [option_label(o) for o in field["options"]] == ["One"]
    assert app.state.sandbox.calls.get("POST /learn/v1/courses/field") == 1


async def test_dropped_option_update_adds_no_option_twice(docebo, docebo_world):
    state, app = docebo_world
    field = await docebo.create_course_dropdown_field("Credly badge", ["One"])
    app.state.sandbox.faults.force("drop", route="PUT /learn/v1/courses/field/{field_id}")
    result = await docebo.update_course_dropdown_options(field["id"], new=["Two", "Three"])
    labels = sorted(state.course_fields[field["id"]]["options"].values())
    assert labels == ["One", "Three", "Two"]
    assert sorted(option_label(o) for o in result["options"]) == labels
    assert app.state.sandbox.calls.get("PUT /learn/v1/courses/field/{field_id}") == 1


async def test_failed_option_update_sends_only_what_is_missing(docebo, docebo_world):
    state, app = docebo_world
    field = await docebo.create_course_dropdown_field("Credly badge", ["One"])
    app.state.sandbox.faults.force("fail", route="PUT /learn/v1/courses/field/{field_id}")
    await docebo.update_course_dropdown_options(field["id"], new=["Two"])
    assert sorted(state.course_fields[field["id"]]["options"].values()) == ["One", "Two"]
    assert app.state.sandbox.calls.get("PUT /learn/v1/courses/field/{field_id}") == 2


# ------------------------------------------------------------------------------------------
# enrollments and learning plans (F3, F7)


async def test_enrollments_of_many_courses_are_chunked(docebo_world, fast_policy):
    state, app = docebo_world
    client = client_for(state, app, fast_policy, id_chunk=6)
    course_ids = sorted(state.courses)
    got = [e async for e in client.iter_enrollments(course_ids=course_ids, statuses=["completed"])]
    expected = list(state.iter_enrollments(course_ids, None, ["completed"]))
    assert sorted((e["course_id"], e["user_id"]) for e in got) == \
        sorted((r["course_id"], r["user_id"]) for r in expected)
    assert all(e["enrollment_status"] == "completed" for e in got)
    assert "enrollment_date_end_validity" in got[0]
    assert client.calls.snapshot()["GET /course/v1/courses/enrollments"] == -(-len(course_ids) // 6)
    assert [e async for e in client.iter_enrollments(course_ids=[])] == []
    both = [e async for e in client.iter_enrollments(course_ids=[111], user_ids=[10001])]
    assert [(e["course_id"], e["user_id"]) for e in both] == [(111, 10001)]
    await client.aclose()


async def test_set_enrollment_status(docebo, docebo_world):
    state, _ = docebo_world
    rec = next(r for r in state.enrollments.values() if r["status"] != "completed")
    await docebo.set_enrollment_status(rec["course_id"], rec["user_id"], "completed",
                                       "2026-10-01 10:00:00")
    assert state.enrollments[(rec["course_id"], rec["user_id"])]["status"] == "completed"


async def test_learning_plans_courses_and_completions(docebo, docebo_world):
    state, _ = docebo_world
    plans = [p async for p in docebo.iter_learning_plans()]
    assert len(plans) == len(state.learning_plans)
    lp = plans[0]
    courses = [c async for c in docebo.iter_learning_plan_courses(lp["learning_plan_id"])]
    assert sorted(c["id_course"] for c in courses) == sorted(
        state.learning_plans[lp["learning_plan_id"]]["course_ids"])
    done = [e async for e in docebo.iter_learning_plan_enrollments(
        lp_ids=sorted(state.learning_plans), statuses=["completed"])]
    expected = list(state.iter_lp_enrollments(sorted(state.learning_plans), None, ["completed"]))
    assert len(done) == len(expected) > 0
    assert all(e["enrollment_status"] == "completed" and e["enrollment_completion_date"] for e in done)


# ------------------------------------------------------------------------------------------
# external training and certifications (F4, F5)


def training(user_id: int, **extra) -> dict:
    return {"user_id": user_id, "course_name": "Credly: Data Steward", "course_type": "Credly badge",
            "date_from": "2026-03-13 14:58:26", "date_to": "2028-03-13 14:58:26", "score": None,
            "credits": None, "training_institute": "Credly", **extra}


async def test_external_training_lifecycle(docebo, docebo_world):
    state, _ = docebo_world
    created = await docebo.create_external_training(training(10003))
    tid = created["id"]
    mine = [t async for t in docebo.iter_external_trainings(user_ids=[10003])]
    assert [t["id"] for t in mine] == [tid] and mine[0]["status"] == "approved"
    await docebo.update_external_training(tid, {"date_to": "2029-01-01 00:00:00"})
    assert state.external_trainings[tid]["date_to"].startswith("2029-01-01")
    await docebo.delete_external_training(tid)
    assert tid not in state.external_trainings
    with pytest.raises(NotFoundError):
        await docebo.delete_external_training(tid)


async def test_dropped_external_training_creation_makes_one(docebo, docebo_world):
    state, app = docebo_world
    app.state.sandbox.faults.force("drop", route="POST /learn/v1/external_training")
    created = await docebo.create_external_training(training(10004))
    held = [t for t in state.external_trainings.values() if t["user_id"] == 10004]
    assert len(held) == 1 and created["id"] == held[0]["id"]


async def test_certifications_and_awards(docebo, docebo_world):
    state, app = docebo_world
    certs = [c async for c in docebo.iter_certifications()]
    assert len(certs) == len(state.certifications)
    cert = certs[0]["id_cert"]
    user = next(u for u in state.users if not any(
        a["id_cert"] == cert for a in state.awards_by_user.get(u, {}).values()))
    fields = {"id_cert": cert, "user_id": user, "issued_on": "2026-02-01 08:00:00",
              "expire_on": "2028-02-01 08:00:00", "source": "credly",
              "external_link": "https://www.credly.com/badges/x"}
    app.state.sandbox.faults.force("drop", route="POST /certification/v1/awards")
    award = await docebo.create_certification_award(fields)
    mine = [a async for a in docebo.iter_certification_awards(user_ids=[user],
                                                              certification_ids=[cert])]
    assert len(mine) == 1 and mine[0]["id_award"] == award["id_award"]
    with pytest.raises(ConflictError):  # one award per user and certification (sandbox rule)
        await docebo.create_certification_award(fields)
    await docebo.update_certification_award(award["id_award"], {"expire_on": "2029-02-01 08:00:00"})
    assert state.awards[award["id_award"]]["expire_on"].startswith("2029-02-01")
    await docebo.delete_certification_award(award["id_award"])
    assert award["id_award"] not in state.awards
    everything = [a async for a in docebo.iter_certification_awards()]
    assert len(everything) == len(state.awards)


# ------------------------------------------------------------------------------------------
# the routes table


def test_every_unverified_route_is_in_the_one_table():
    assert set(TO_VERIFY).isdisjoint(DOCUMENTED)
    assert all(r.evidence == "I" for r in TO_VERIFY.values())
    assert all(r.evidence in ("V", "C") for r in DOCUMENTED.values())
    paths = {(r.method, r.path) for r in ROUTES.values()}
    for needed in [("POST", "/learn/v1/courses/field"), ("PUT", "/learn/v1/courses/field/{id}"),
                   ("POST", "/learn/v1/external_training"), ("POST", "/certification/v1/awards"),
                   ("GET", "/learningplan/v1/learningplans/{id}/courses")]:
        assert needed in paths
        assert any((r.method, r.path) == needed for r in TO_VERIFY.values())


def test_docs_list_the_unverified_routes():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "docebo-routes.md").read_text(encoding="utf-8")
    assert "Docebo routes to verify against your tenant" in page
    assert unverified_table_markdown() in page


async def test_every_route_the_client_uses_exists_in_the_sandbox(docebo_world):
    """The sandbox implements the same contract (common.md): no table entry is a typo."""
    from starlette.routing import Match

    _, app = docebo_world
    for r in ROUTES.values():
        path = r.path.replace("{id}", "1").replace("{course_id}", "1").replace("{user_id}", "1")
        scope = {"type": "http", "method": r.method, "path": path, "root_path": "",
                 "query_string": b"", "headers": []}
        assert any(route.matches(scope)[0] is Match.FULL for route in app.routes), r.call


def test_policy_defaults_are_sane():
    p = HttpPolicy()
    assert p.max_retries >= 3 and p.backoff_cap >= 30 and 0 < p.jitter <= 1
