"""Docebo sandbox webhooks: message shape, events, grouping of at most 25, HTTP Basic credentials,
retries after a non-2xx (api/docebo.md §7; issue 3; the receiver side is W1/W2)."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.webhooks import WebhookSender, any_2xx_3xx
from tests.support.docebo_sandbox import get_token, serve

MESSAGE_ID = re.compile(r"^wh-\d{8}-\d{6}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
COMMON_KEYS = {"webhook_id", "original_domain", "event", "fired_by_batch_action", "message_id"}
# Keys of the course.enrollment.completed sample in api/docebo.md §7.2.
COMPLETION_SAMPLE_KEYS = {
    "fired_at", "user_id", "username", "course_id", "course_name", "level", "status", "enrollment_date",
    "completion_date", "enrollment_date_begin_validity", "enrollment_date_end_validity", "subscribed_by_id",
}
CERT_PAYLOAD_KEYS = {
    "fired_at",
    "user_id",
    "username",
    "certification_id",
    "certification_code",
    "award_id",
    "issued_on",
    "expire_on",
}
HOOK = "http://receiver.test/docebo"


class Capture:
    """A mock receiver for in-process tests: records each POST and answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict] = []
        self.arrived = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(json.loads(request.content))
        self.arrived.set()
        return httpx.Response(200)


@pytest.fixture
def capture():
    return Capture()


@pytest.fixture
def app(state, capture):
    sender = WebhookSender(accept=any_2xx_3xx, retry_delays=[0.01], transport=httpx.MockTransport(capture))
    return create_docebo_app(state, sender=sender)


@pytest.fixture
async def ctl(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docebo.test") as c:
        yield c


@pytest.fixture
async def api(app, state):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docebo.test") as c:
        c.headers["Authorization"] = f"Bearer {await get_token(c, state)}"
        yield c


async def settle(app) -> None:
    await app.state.sandbox.webhooks.drain(timeout=5)


def open_enrollments(state, n: int) -> list[dict]:
    return [r for r in state.enrollments.values() if r["status"] != "completed"][:n]


async def test_completion_through_public_api_sends_one_message(app, api, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK, "webhook_id": 7, "original_domain": "acme.docebosaas.com"})
    rec = open_enrollments(state, 1)[0]
    r = await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    assert r.status_code == 200
    await settle(app)
    assert len(capture.bodies) == 1
    msg = capture.bodies[0]
    assert set(msg) == COMMON_KEYS | {"payload"}
    assert msg["event"] == "course.enrollment.completed"
    assert msg["webhook_id"] == 7 and msg["original_domain"] == "acme.docebosaas.com"
    assert msg["fired_by_batch_action"] is False
    assert MESSAGE_ID.match(msg["message_id"]), msg["message_id"]
    payload = msg["payload"]
    assert set(payload) >= COMPLETION_SAMPLE_KEYS
    assert payload["user_id"] == rec["user_id"] and payload["course_id"] == rec["course_id"]
    assert isinstance(payload["user_id"], int) and isinstance(payload["course_id"], int)
    assert payload["status"] == "completed" and payload["completion_date"] == rec["completed_at"]
    assert payload["username"] == state.users[rec["user_id"]]["username"]
    assert capture.requests[0].headers["content-type"] == "application/json"
    assert "authorization" not in capture.requests[0].headers


async def test_only_a_transition_to_completed_fires(app, api, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK})
    rec = next(r for r in state.enrollments.values() if r["status"] == "not_started")
    path = f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}"
    await api.put(path, json={"status": "in_progress"})
    await api.put(path, json={"status": "completed"})
    await api.put(path, json={"status": "completed"})  # already completed: no second event
    await settle(app)
    assert [b["event"] for b in capture.bodies] == ["course.enrollment.completed"]


async def test_nothing_is_sent_without_a_url(app, api, state, capture):
    rec = open_enrollments(state, 1)[0]
    await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    await settle(app)
    assert capture.bodies == [] and rec["status"] == "completed"


async def test_event_filter(app, api, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK, "events": ["certification.awarded"]})
    rec = open_enrollments(state, 1)[0]
    await ctl.post("/_sandbox/learner/complete", json={"course_id": rec["course_id"], "user_id": rec["user_id"]})
    uid = next(u for u in state.users if not state.awards_by_user.get(u))
    await ctl.post("/_sandbox/admin/awards", json={"id_cert": 1, "user_id": uid})
    await settle(app)
    assert [b["event"] for b in capture.bodies] == ["certification.awarded"]


async def test_certification_events_from_admin_and_public_api(app, api, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK})
    uid = next(u for u in state.users if not state.awards_by_user.get(u))
    award = (
        await ctl.post("/_sandbox/admin/awards", json={"id_cert": 2, "user_id": uid, "issued_on": "2026-03-01 09:00:00"})
    ).json()["data"]
    await ctl.put(f"/_sandbox/admin/awards/{award['id_award']}", json={"expire_on": "2028-03-01 09:00:00"})
    await ctl.delete(f"/_sandbox/admin/awards/{award['id_award']}")
    r = await api.post("/certification/v1/awards", json={"id_cert": 1, "user_id": uid})
    api_award = r.json()["data"]["id_award"]
    await settle(app)
    events = [(b["event"], b["payload"]["award_id"]) for b in capture.bodies]
    assert events == [
        ("certification.awarded", award["id_award"]),
        ("certification.updated", award["id_award"]),
        ("certification.revoked", award["id_award"]),
        ("certification.awarded", api_award),
    ]
    for body in capture.bodies:
        assert set(body) == COMMON_KEYS | {"payload"}
        assert set(body["payload"]) == CERT_PAYLOAD_KEYS
    updated = capture.bodies[1]["payload"]
    assert updated["certification_id"] == 2 and updated["certification_code"] == state.certifications[2]["code"]
    assert updated["issued_on"] == "2026-03-01 09:00:00" and updated["expire_on"] == "2028-03-01 09:00:00"
    assert updated["user_id"] == uid and updated["username"] == state.users[uid]["username"]


async def test_grouping_sends_at_most_25_payloads_per_message(app, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK, "grouping": True, "group_window_s": 60})
    recs = open_enrollments(state, 30)
    completions = [{"course_id": r["course_id"], "user_id": r["user_id"]} for r in recs]
    r = await ctl.post("/_sandbox/learner/complete", json={"completions": completions})
    assert r.status_code == 200
    await settle(app)
    assert [len(b["payloads"]) for b in capture.bodies] == [25]  # the 26th..30th wait for the window
    assert (await ctl.post("/_sandbox/webhook/flush")).json()["data"]["messages"] == 1
    await settle(app)
    assert [len(b["payloads"]) for b in capture.bodies] == [25, 5]
    for body in capture.bodies:
        assert set(body) == COMMON_KEYS | {"payloads"}
        assert body["fired_by_batch_action"] is True
        assert body["event"] == "course.enrollment.completed"
    sent = [(p["course_id"], p["user_id"]) for b in capture.bodies for p in b["payloads"]]
    assert sent == [(c["course_id"], c["user_id"]) for c in completions]
    assert len({b["message_id"] for b in capture.bodies}) == 2


async def test_grouping_window_flushes_by_itself(app, api, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK, "grouping": True, "group_window_s": 0.05})
    for rec in open_enrollments(state, 3):
        await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    await asyncio.wait_for(capture.arrived.wait(), timeout=5)
    await settle(app)
    assert [len(b["payloads"]) for b in capture.bodies] == [3]
    assert capture.bodies[0]["fired_by_batch_action"] is False


async def test_basic_credentials_on_deliveries(app, ctl, state, capture):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK, "basic_auth": {"username": "docebo", "password": "hook-pass"}})
    rec = open_enrollments(state, 1)[0]
    await ctl.post("/_sandbox/learner/complete", json={"course_id": rec["course_id"], "user_id": rec["user_id"]})
    await settle(app)
    expected = "Basic " + base64.b64encode(b"docebo:hook-pass").decode()
    assert capture.requests[0].headers["authorization"] == expected
    await ctl.put("/_sandbox/webhook", json={"basic_auth": None})
    rec = open_enrollments(state, 1)[0]
    await ctl.post("/_sandbox/learner/complete", json={"course_id": rec["course_id"], "user_id": rec["user_id"]})
    await settle(app)
    assert "authorization" not in capture.requests[1].headers


async def test_deliveries_log(app, ctl, state):
    await ctl.put("/_sandbox/webhook", json={"url": HOOK})
    rec = open_enrollments(state, 1)[0]
    await ctl.post("/_sandbox/learner/complete", json={"course_id": rec["course_id"], "user_id": rec["user_id"]})
    await settle(app)
    log = (await ctl.get("/_sandbox/webhook/deliveries")).json()
    assert log["outstanding"] == 0
    assert [d["event"] for d in log["deliveries"]] == ["course.enrollment.completed"]
    assert log["deliveries"][0]["delivered"] is True and log["deliveries"][0]["attempts"][0]["status"] == 200


# -- over real sockets ---------------------------------------------------------------------------


class Receiver:
    """A real webhook receiver: answers 500 to the very first POST, then 200; requires Basic auth."""

    def __init__(self, expected_auth: str, want_messages: int) -> None:
        self.expected_auth = expected_auth
        self.want = want_messages
        self.posts: list[dict] = []
        self.statuses: list[int] = []
        self.accepted: dict[str, dict] = {}
        self.done = asyncio.Event()
        self.app = Starlette(routes=[Route("/hooks/docebo", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != self.expected_auth:
            self.statuses.append(401)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        self.posts.append(body)
        status = 500 if len(self.posts) == 1 else 200
        self.statuses.append(status)
        if status == 200:
            self.accepted[body["message_id"]] = body
            if len(self.accepted) >= self.want:
                self.done.set()
        return JSONResponse({"ok": status == 200}, status_code=status)


@pytest.mark.e2e
async def test_delivery_over_loopback_with_retry_and_grouping(state):
    auth = "Basic " + base64.b64encode(b"hook:secret").decode()
    receiver = Receiver(auth, want_messages=2)
    docebo = create_docebo_app(state)
    async with serve(receiver.app) as receiver_url, serve(docebo) as docebo_url:
        async with httpx.AsyncClient(base_url=docebo_url, timeout=10) as c:
            r = await c.put(
                "/_sandbox/webhook",
                json={
                    "url": f"{receiver_url}/hooks/docebo",
                    "grouping": True,
                    "group_window_s": 0.05,
                    "basic_auth": {"username": "hook", "password": "secret"},
                    "retry_delays": [0.05],
                },
            )
            assert r.status_code == 200
            recs = open_enrollments(state, 30)
            body = {"completions": [{"course_id": x["course_id"], "user_id": x["user_id"]} for x in recs]}
            r = await c.post("/_sandbox/learner/complete", json=body)
            assert r.status_code == 200
            await asyncio.wait_for(receiver.done.wait(), timeout=15)
            await docebo.state.sandbox.webhooks.drain(timeout=5)
            log = (await c.get("/_sandbox/webhook/deliveries")).json()

    assert receiver.statuses.count(500) == 1 and 401 not in receiver.statuses
    failed_id = receiver.posts[0]["message_id"]
    assert [p["message_id"] for p in receiver.posts].count(failed_id) == 2  # retried, same message_id
    assert len(receiver.posts) == 3
    assert sorted(len(m["payloads"]) for m in receiver.accepted.values()) == [5, 25]
    delivered = {(p["course_id"], p["user_id"]) for m in receiver.accepted.values() for p in m["payloads"]}
    assert delivered == {(x["course_id"], x["user_id"]) for x in recs}
    retried = next(d for d in log["deliveries"] if d["message_id"] == failed_id)
    assert [a["status"] for a in retried["attempts"]] == [500, 200] and retried["delivered"] is True


async def test_runner_docebo_webhook_option_reaches_the_dispatcher():
    """`credly-console sandbox --docebo-webhook URL` sets the shared sender's URL; the Docebo
    dispatcher reads it from there."""
    from services.sandbox.runner import SandboxOptions, build_apps

    _, docebo_app, _ = build_apps(SandboxOptions(docebo_webhook="http://127.0.0.1:9/hook", webhook_retry_delays=(0.5,)))
    hooks = docebo_app.state.docebo_webhooks
    assert hooks.url == "http://127.0.0.1:9/hook"
    assert hooks.settings()["retry_delays"] == [0.5]
    assert docebo_app.state.sandbox.faults.rate_window_s == 3600
