"""Docebo sandbox: control endpoints under /_sandbox/, call counters, faults and the rate limit
(issue 3; api/docebo.md §1.5)."""

from __future__ import annotations

import httpx
import pytest

from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.faults import FaultConfig
from tests.support.docebo_sandbox import get_token


async def test_summary_lists_credentials_and_counts(anon, state, demo):
    info = (await anon.get("/_sandbox")).json()
    assert info["client_id"] == state.client_id and info["client_secret"] == "s3cret"
    assert info["admin_username"] == state.admin_username
    assert info["counts"]["users"] == len(demo.users)
    assert info["counts"]["enrollments"] == len(demo.enrollments)
    assert info["webhook"]["url"] is None


async def test_call_counters_per_route_template(api, anon):
    await anon.delete("/_sandbox/calls")
    await api.get("/manage/v1/user")
    await api.get("/manage/v1/user/10001")
    await api.get("/manage/v1/user/10002")
    await api.get("/manage/v1/user/999999")
    await api.get("/nowhere")
    await anon.get("/_sandbox")  # control calls are not counted
    counters = (await anon.get("/_sandbox/calls")).json()
    assert counters["calls"] == {
        "GET /manage/v1/user": 1,
        "GET /manage/v1/user/{user_id}": 3,
        "GET (no route)": 1,
    }
    assert counters["total"] == 5
    assert counters["statuses"]["GET /manage/v1/user/{user_id}"] == {"200": 2, "404": 1}
    r = await anon.delete("/_sandbox/calls")
    assert r.status_code == 204
    assert (await anon.get("/_sandbox/calls")).json()["total"] == 0


async def test_token_calls_are_counted(anon, state):
    await anon.delete("/_sandbox/calls")
    await get_token(anon, state)
    assert (await anon.get("/_sandbox/calls")).json()["calls"] == {"POST /oauth2/token": 1}


async def test_forced_failure_answers_5xx_with_docebo_body_and_changes_nothing(api, anon, state):
    rec = next(r for r in state.enrollments.values() if r["status"] == "in_progress")
    route = "PUT /learn/v1/enrollments/{course_id}/{user_id}"
    r = await anon.post("/_sandbox/faults", json={"force": {"kind": "fail", "route": route, "status": 503}})
    assert r.status_code == 200
    r = await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    assert r.status_code == 503
    assert r.json() == {"name": "Service Unavailable", "message": r.json()["message"], "code": 0, "status": 503}
    assert rec["status"] == "in_progress"
    # the retry goes through
    r = await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    assert r.status_code == 200 and rec["status"] == "completed"


async def test_dropped_connection_after_processing(api, anon, state):
    rec = next(r for r in state.enrollments.values() if r["status"] == "in_progress")
    await anon.put(
        "/_sandbox/faults", json={"force": [{"kind": "drop", "route": "PUT /learn/v1/enrollments/{course_id}/{user_id}"}]}
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    assert rec["status"] == "completed"  # processed, answer lost


async def test_fault_settings_validation(anon):
    assert (await anon.post("/_sandbox/faults", json={"fail_rate": 2})).status_code == 400
    assert (await anon.post("/_sandbox/faults", json={"bogus": 1})).status_code == 400
    assert (await anon.post("/_sandbox/faults", json={"force": {"kind": "explode"}})).status_code == 400
    r = await anon.post("/_sandbox/faults", json={"latency_ms": 1, "fail_rate": 0.5})
    assert r.json()["fail_rate"] == 0.5
    r = await anon.post("/_sandbox/faults", json={"reset": True})
    assert r.json()["fail_rate"] == 0.0 and r.json()["latency_ms"] == 0.0


async def test_seeded_fail_rate_is_deterministic(state):
    async def outcomes() -> list[int]:
        app = create_docebo_app(state, FaultConfig(seed=7, fail_rate=0.5))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return [(await c.get("/manage/v1/user")).status_code for _ in range(20)]

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert 503 in first and 401 in first  # some failed by fault, the rest reached auth


async def test_rate_limit_is_off_by_default_and_1000_per_hour_when_on(api, anon):
    for _ in range(5):
        assert (await api.get("/learn/v1/certification")).status_code == 200
    r = await anon.put("/_sandbox/rate-limit", json={"enabled": True})
    assert r.json() == {"enabled": True, "per_hour": 1000, "retry_after": True}
    faults = (await anon.get("/_sandbox/faults")).json()
    assert faults["rate_limit"] == 1000 and faults["rate_window_s"] == 3600


async def test_rate_limit_answers_429_with_and_without_retry_after(api, anon):
    await anon.put("/_sandbox/rate-limit", json={"per_hour": 3})
    for _ in range(3):
        assert (await api.get("/learn/v1/certification")).status_code == 200
    r = await api.get("/learn/v1/certification")
    assert r.status_code == 429
    assert r.json() == {"name": "Too Many Requests", "message": r.json()["message"], "code": 0, "status": 429}
    assert 3500 <= int(r.headers["retry-after"]) <= 3600
    await anon.put("/_sandbox/rate-limit", json={"per_hour": 1, "retry_after": False})
    await api.get("/learn/v1/certification")
    r = await api.get("/learn/v1/certification")
    assert r.status_code == 429 and "retry-after" not in r.headers
    r = await anon.put("/_sandbox/rate-limit", json={"enabled": False})
    assert (await api.get("/learn/v1/certification")).status_code == 200
    assert (await anon.put("/_sandbox/rate-limit", json={"per_hour": 0})).status_code == 400


async def test_reset_restores_the_loaded_world(api, anon, state, demo):
    rec = next(r for r in state.enrollments.values() if r["status"] == "in_progress")
    key = (rec["course_id"], rec["user_id"])
    await api.put(f"/learn/v1/enrollments/{key[0]}/{key[1]}", json={"status": "completed"})
    await api.post("/learn/v1/external_training", json={"user_id": 10001, "course_name": "X", "date_from": "2025-01-01"})
    await api.post("/learn/v1/courses/field", json={"type": "dropdown", "translations": {"english": "Badge"}})
    r = await anon.post("/_sandbox/reset")
    assert r.status_code == 200
    assert state.enrollments[key]["status"] == "in_progress"
    assert state.external_trainings == {} and set(state.course_fields) == {1, 2}
    assert (await anon.get("/_sandbox/calls")).json()["total"] == 0
    assert (await api.get("/manage/v1/user")).status_code == 401  # tokens dropped
    # the demo data itself was never mutated
    assert next(e for e in demo.enrollments if (e["course_id"], e["user_id"]) == key)["status"] == "in_progress"


async def test_token_control_expires(api, anon):
    r = await anon.put("/_sandbox/token", json={"expired": True})
    assert r.json()["expired"] == 1
    assert (await api.get("/manage/v1/user")).status_code == 401


async def test_learner_completes_a_course_enrolling_first(api, anon, state):
    uid = next(u for u in state.users if 101 not in state.enr_by_user.get(u, {}))
    r = await anon.post(
        "/_sandbox/learner/complete", json={"course_id": 101, "user_id": uid, "completion_date": "2026-05-05 10:00:00"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["enrollment_status"] == "completed"
    rec = state.enrollments[(101, uid)]
    assert rec["status"] == "completed" and rec["completed_at"] == "2026-05-05 10:00:00"


async def test_learner_batch_validates_everything_first(anon, state):
    before = {k: dict(v) for k, v in state.enrollments.items()}
    r = await anon.post(
        "/_sandbox/learner/complete",
        json={"completions": [{"course_id": 101, "user_id": 10001}, {"course_id": 1, "user_id": 10001}]},
    )
    assert r.status_code == 404
    assert {k: dict(v) for k, v in state.enrollments.items()} == before
    assert (await anon.post("/_sandbox/learner/complete", json={"completions": []})).status_code == 400


async def test_learner_enrolls_in_a_learning_plan_and_its_courses(anon, state):
    lp = next(iter(state.learning_plans.values()))
    uid = next(u for u in state.users if lp["learning_plan_id"] not in state.lpe_by_user.get(u, {}))
    r = await anon.post("/_sandbox/learner/enroll", json={"learning_plan_id": lp["learning_plan_id"], "user_id": uid})
    assert r.json()["data"]["created"] is True
    assert all((c, uid) in state.enrollments for c in lp["course_ids"])
    again = await anon.post("/_sandbox/learner/enroll", json={"learning_plan_id": lp["learning_plan_id"], "user_id": uid})
    assert again.json()["data"]["created"] is False
    r = await anon.post("/_sandbox/learner/enroll", json={"course_id": 101, "user_id": 1})
    assert r.status_code == 404


async def test_admin_sets_a_course_dropdown_value(api, anon, state):
    r = await anon.put("/_sandbox/admin/courses/102/fields/1", json={"value": 3})
    assert r.json()["data"]["value"] == 3
    detail = (await api.get("/learn/v1/courses/102")).json()["data"]
    assert detail["field_1"] == 3
    assert next(f for f in detail["additional_fields"] if f["id"] == 1)["value"] == 3
    r = await anon.put("/_sandbox/admin/courses/102/fields/1", json={"value": None})
    assert (await api.get("/learn/v1/courses/102")).json()["data"]["field_1"] is None
    assert (await anon.put("/_sandbox/admin/courses/102/fields/1", json={"value": 99})).status_code == 400
    assert (await anon.put("/_sandbox/admin/courses/102/fields/1", json={"label": "Mars"})).status_code == 400
    assert (await anon.put("/_sandbox/admin/courses/1/fields/1", json={"value": 1})).status_code == 404
    assert (await anon.put("/_sandbox/admin/courses/102/fields/77", json={"value": 1})).status_code == 404
    r = await anon.put("/_sandbox/admin/courses/102/fields/2", json={"label": "CC-42"})
    assert (await api.get("/learn/v1/courses/102")).json()["data"]["field_2"] == "CC-42"


async def test_admin_awards_update_and_revokes(anon, state):
    uid = next(u for u in state.users if not state.awards_by_user.get(u))
    code = state.certifications[2]["code"]
    r = await anon.post("/_sandbox/admin/awards", json={"certification_code": code, "user_id": uid})
    assert r.status_code == 200, r.text
    award = r.json()["data"]
    assert award["id_cert"] == 2 and award["expire_on"]  # cert 2 has a validity
    r = await anon.put(f"/_sandbox/admin/awards/{award['id_award']}", json={"expire_on": None})
    assert r.json()["data"]["expire_on"] is None
    r = await anon.delete(f"/_sandbox/admin/awards/{award['id_award']}")
    assert r.status_code == 200 and award["id_award"] not in state.awards
    assert (await anon.post("/_sandbox/admin/awards", json={"certification_code": "NOPE", "user_id": uid})).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"url": "ftp://x"}, {"colour": "red"}, {"events": ["course.deleted"]}, {"webhook_id": "x"}],
)
async def test_webhook_settings_validation(anon, body):
    r = await anon.put("/_sandbox/webhook", json=body)
    assert r.status_code == 400
    assert r.json()["status"] == 400


async def test_webhook_settings_round_trip(anon):
    body = {
        "url": "http://127.0.0.1:9/hook",
        "grouping": True,
        "basic_auth": {"username": "u", "password": "p"},
        "retry_delays": [0.1],
        "max_attempts": 3,
    }
    got = (await anon.put("/_sandbox/webhook", json=body)).json()
    assert got["url"] == body["url"] and got["grouping"] is True
    assert got["basic_auth"] == {"username": "u"}  # the password is not echoed
    assert got["retry_delays"] == [0.1] and got["max_attempts"] == 3
    assert (await anon.delete("/_sandbox/webhook")).json()["url"] is None
