"""The response shapes shown in api/docebo.md (§1.2 token, §1.3 envelope, §2 user list, §4.1
enrollment item, §7.2 webhook bodies) have the same keys, with the same JSON types, in the
sandbox's answers. The samples below restate those shapes with our own values."""

from __future__ import annotations

import httpx

from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.webhooks import WebhookSender, any_2xx_3xx

TOKEN_SAMPLE = {"access_token": "0" * 40, "expires_in": 3600, "token_type": "Bearer", "scope": "api"}
ENVELOPE_SAMPLE = {
    "data": {"items": [], "count": 0, "has_more_data": False, "current_page": 1, "current_page_size": 200,
             "total_page_count": 1, "total_count": 0, "cursor": "abc"},
    "version": "1.0.0",
    "_links": [],
}
USER_SAMPLE = {"user_id": "1", "username": "a.b", "first_name": "A", "last_name": "B", "fullname": "A B",
               "email": "a.b@example.org", "status": "1", "level": "6"}
ENROLLMENT_SAMPLE = {"user_id": 1, "course_id": 2, "course_name": "C", "course_type": "elearning",
                     "enrollment_status": "completed", "enrollment_created_at": "2025-01-01 00:00:00",
                     "enrollment_date_last_updated": "2025-01-02 00:00:00",
                     "enrollment_completion_date": "2025-01-02 00:00:00", "enrollment_score": 90,
                     "enrollment_level": "student"}
COMPLETED_SAMPLE = {
    "webhook_id": 1, "original_domain": "x.docebosaas.com", "event": "course.enrollment.completed",
    "fired_by_batch_action": False, "message_id": "wh-20250101-000000-x",
    "payload": {"fired_at": "2025-01-01 00:00:00", "user_id": 1, "username": "u", "course_id": 2, "course_name": "C",
                "level": "learner", "status": "completed", "enrollment_date": "2025-01-01 00:00:00",
                "completion_date": "2025-01-01 00:00:00", "enrollment_date_begin_validity": None,
                "enrollment_date_end_validity": None, "subscribed_by_id": 1},
}
GROUPED_SAMPLE = {
    "webhook_id": 1, "original_domain": "x.docebosaas.com", "event": "course.enrollment.completed",
    "fired_by_batch_action": True, "message_id": "wh-20250101-000000-x",
    "payloads": [{"fired_at": "2025-01-01 00:00:00", "user_id": 1, "course_id": 2, "status": "completed",
                  "completion_date": "2025-01-01 00:00:00"}],
}


def same_shape(sample: dict, ours: dict, where: str = "") -> None:
    """Every key of `sample` is in `ours`, with the same JSON type (null matches anything)."""
    missing = set(sample) - set(ours)
    assert not missing, f"{where}: missing {sorted(missing)}"
    for key, value in sample.items():
        mine = ours[key]
        if value is None or mine is None:
            continue
        if isinstance(value, dict):
            same_shape(value, mine, f"{where}.{key}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            assert mine, f"{where}.{key} is empty"
            same_shape(value[0], mine[0], f"{where}.{key}[0]")
        else:
            number = (int, float)
            if isinstance(value, number) and not isinstance(value, bool):
                assert isinstance(mine, number) and not isinstance(mine, bool), f"{where}.{key}: {mine!r}"
            else:
                assert type(mine) is type(value), f"{where}.{key}: {type(mine).__name__} vs {type(value).__name__}"


async def test_token_sample(anon, state):
    r = await anon.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": state.client_id,
                                               "client_secret": state.client_secret})
    same_shape(TOKEN_SAMPLE, r.json(), "token")


async def test_envelope_and_user_samples(api):
    body = (await api.get("/manage/v1/user", params={"get_total_count": 1})).json()
    same_shape(ENVELOPE_SAMPLE, body, "envelope")
    same_shape(USER_SAMPLE, body["data"]["items"][0], "user")


async def test_enrollment_sample(api):
    body = (await api.get("/course/v1/courses/enrollments", params={"enrollment_status[]": "completed"})).json()
    same_shape(ENROLLMENT_SAMPLE, body["data"]["items"][0], "enrollment")


async def test_webhook_samples(state):
    bodies: list[dict] = []

    def capture(request: httpx.Request) -> httpx.Response:
        import json

        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    sender = WebhookSender(accept=any_2xx_3xx, retry_delays=[0.01], transport=httpx.MockTransport(capture))
    app = create_docebo_app(state, sender=sender)
    open_recs = [r for r in state.enrollments.values() if r["status"] != "completed"][:3]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.put("/_sandbox/webhook", json={"url": "http://hook.test/"})
        await c.post(
            "/_sandbox/learner/complete", json={"course_id": open_recs[0]["course_id"], "user_id": open_recs[0]["user_id"]}
        )
        await c.put("/_sandbox/webhook", json={"grouping": True, "group_window_s": 60})
        await c.post(
            "/_sandbox/learner/complete",
            json={"completions": [{"course_id": r["course_id"], "user_id": r["user_id"]} for r in open_recs[1:]]},
        )
        await c.post("/_sandbox/webhook/flush")
        await sender.drain(timeout=5)
    assert len(bodies) == 2
    same_shape(COMPLETED_SAMPLE, bodies[0], "completed")
    same_shape(GROUPED_SAMPLE, bodies[1], "grouped")
