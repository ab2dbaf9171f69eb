"""The receiver app (W1, W2) through httpx.ASGITransport with a real inbox writer and SQLite file:
stored before the 200, duplicates acknowledged once, refusals 4xx with rate-limited
notifications."""

from __future__ import annotations

import base64

import httpx
import pytest

from services.serve.receiver import InboxWriter, ReceiverSettings, base_url, create_receiver_app, webhook_urls
from services.store import inbox
from services.store.db import Store

SECRET = "s3cr3t-For-Tests_0123456789"
ORG = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "serve.db"
    Store(path).close()
    return path


@pytest.fixture
def writer(db_path):
    w = InboxWriter(db_path).start()
    yield w
    w.stop()


def make_client(writer, **settings) -> httpx.AsyncClient:
    app = create_receiver_app(ReceiverSettings(secret=SECRET, organization_id=ORG, **settings), writer)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver")


def completion_body(message_id: str, n: int = 1) -> dict:
    payloads = [{"user_id": 100 + i, "course_id": 7, "status": "completed"} for i in range(n)]
    body = {"message_id": message_id, "event": "course.enrollment.completed", "webhook_id": 1}
    if n == 1:
        body["payload"] = payloads[0]
    else:
        body["payloads"] = payloads
    return body


def notice(event_id: str, org: str = ORG) -> dict:
    return {"id": event_id, "organization_id": org, "event_type": "badge.created", "occurred_at": "2026-01-01T00:00:00Z"}


def rows(db_path) -> list[dict]:
    with Store(db_path) as store:
        return list(store.db.query("SELECT * FROM inbox ORDER BY id"))


def rejected(db_path) -> list[dict]:
    with Store(db_path) as store:
        return list(store.db.query("SELECT * FROM notifications WHERE kind = 'webhook_rejected' ORDER BY id"))


async def test_a_docebo_delivery_is_committed_before_the_200(writer, db_path):
    async with make_client(writer) as client:
        response = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-1"))
        assert response.status_code == 200
        assert response.json() == {"status": "accepted", "stored": 1, "duplicates": 0}
        # A separate connection sees the row the moment the 200 is out: it was committed first.
        [row] = rows(db_path)
        assert row["delivery_key"] == "docebo:wh-1:0" and row["status"] == "queued"
        assert row["learner_key"] == "docebo-user:100"


async def test_the_same_delivery_five_times_is_stored_once(writer, db_path):
    async with make_client(writer) as client:
        answers = [await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-dup")) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["stored"] for a in answers] == [1, 0, 0, 0, 0]
    assert answers[-1].json()["status"] == "duplicate"
    assert len(rows(db_path)) == 1


async def test_a_grouped_delivery_of_25_is_25_rows(writer, db_path):
    async with make_client(writer) as client:
        response = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-g", 25))
    assert response.json()["stored"] == 25
    assert [r["delivery_key"] for r in rows(db_path)] == [f"docebo:wh-g:{n}" for n in range(25)]


async def test_a_credly_notice_is_stored_and_a_redelivery_is_not(writer, db_path):
    async with make_client(writer) as client:
        first = await client.post(f"/webhooks/credly/{SECRET}", json=notice("ev-1"))
        again = await client.post(f"/webhooks/credly/{SECRET}", json=notice("ev-1"))
    assert first.status_code == again.status_code == 200
    assert (first.json()["stored"], again.json()["stored"]) == (1, 0)
    [row] = rows(db_path)
    assert row["delivery_key"] == "credly:ev-1" and row["learner_key"] == inbox.UNRESOLVED


@pytest.mark.parametrize("source", ["docebo", "credly"])
async def test_a_wrong_secret_is_refused_and_notified(writer, db_path, source):
    body = completion_body("wh-x") if source == "docebo" else notice("ev-x")
    async with make_client(writer) as client:
        response = await client.post(f"/webhooks/{source}/not-the-secret", json=body)
    assert response.status_code == 403
    writer.stop()
    assert rows(db_path) == []
    [note] = rejected(db_path)
    assert "wrong secret" in note["title"] and note["object"] == f"{source}:wrong_secret"
    assert "not-the-secret" not in note["body"] and SECRET not in note["body"]


async def test_malformed_bodies_are_refused_with_400(writer, db_path):
    async with make_client(writer) as client:
        bad_json = await client.post(
            f"/webhooks/docebo/{SECRET}", content=b"{not json", headers={"content-type": "application/json"}
        )
        no_payload = await client.post(f"/webhooks/docebo/{SECRET}", json={"message_id": "m", "event": "e"})
        bad_notice = await client.post(f"/webhooks/credly/{SECRET}", json={"id": "x"})
    assert bad_json.status_code == no_payload.status_code == bad_notice.status_code == 400
    assert "neither payload nor payloads" in no_payload.json()["error"]
    writer.stop()
    assert rows(db_path) == []
    keys = sorted(n["object"] for n in rejected(db_path))
    assert keys == ["credly:malformed", "docebo:malformed"]
    docebo_note = next(n for n in rejected(db_path) if n["object"] == "docebo:malformed")
    assert "(2×)" in docebo_note["title"] and "Refused requests: 2" in docebo_note["body"]


async def test_a_notice_of_another_organization_is_refused(writer, db_path):
    async with make_client(writer) as client:
        response = await client.post(
            f"/webhooks/credly/{SECRET}", json=notice("ev-9", org="99999999-0000-0000-0000-000000000000")
        )
    assert response.status_code == 403
    writer.stop()
    assert rows(db_path) == []
    [note] = rejected(db_path)
    assert note["object"] == "credly:foreign_organization"


async def test_a_flood_of_bad_requests_leaves_one_notification_with_the_count(writer, db_path):
    async with make_client(writer) as client:
        for _ in range(60):
            assert (await client.post("/webhooks/docebo/guess", json={})).status_code == 403
    writer.stop()
    [note] = rejected(db_path)
    assert "Refused requests: 60" in note["body"] and "(60×)" in note["title"]


async def test_a_new_window_opens_a_new_notification(db_path):
    now = [0.0]
    writer = InboxWriter(db_path, window_s=60, clock=lambda: now[0]).start()
    try:
        async with make_client(writer) as client:
            await client.post("/webhooks/docebo/guess", json={})
            now[0] = 30.0
            await client.post("/webhooks/docebo/guess", json={})
            now[0] = 61.0
            await client.post("/webhooks/docebo/guess", json={})
    finally:
        writer.stop()
    notes = rejected(db_path)
    assert len(notes) == 2
    assert "Refused requests: 2" in notes[0]["body"] and "Refused requests: 1" in notes[1]["body"]


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_docebo_basic_auth_when_configured(writer, db_path):
    async with make_client(writer, docebo_basic_auth_user="docebo") as client:
        missing = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-a"))
        wrong = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-a"), headers=basic("docebo", "nope"))
        garbage = await client.post(
            f"/webhooks/docebo/{SECRET}", json=completion_body("wh-a"), headers={"Authorization": "Basic !!!"}
        )
        right = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-a"), headers=basic("docebo", SECRET))
        credly = await client.post(f"/webhooks/credly/{SECRET}", json=notice("ev-1"))  # Credly sends no Basic auth
    assert missing.status_code == wrong.status_code == garbage.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert right.status_code == 200 and credly.status_code == 200
    assert len(rows(db_path)) == 2


async def test_an_oversized_body_is_refused(writer, db_path):
    async with make_client(writer, max_body_bytes=1000) as client:
        response = await client.post(
            f"/webhooks/docebo/{SECRET}", json={"message_id": "m", "event": "e", "payload": {"x": "y" * 2000}}
        )
    assert response.status_code == 413
    assert rows(db_path) == []


async def test_without_a_running_writer_the_answer_is_503_so_the_sender_retries(db_path):
    writer = InboxWriter(db_path)  # never started
    async with make_client(writer) as client:
        response = await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body("wh-1"))
    assert response.status_code == 503
    assert rows(db_path) == []


async def test_get_and_unknown_paths(writer):
    async with make_client(writer) as client:
        assert (await client.get(f"/webhooks/docebo/{SECRET}")).status_code == 405
        assert (await client.post("/elsewhere", json={})).status_code == 404
        assert (await client.get("/healthz")).json() == {"status": "ok"}


def test_receiver_settings_need_a_secret():
    from services.core.config import AppConfig
    from services.core.secrets import MemorySecrets
    from services.serve.receiver import ReceiverConfigError

    with pytest.raises(ReceiverConfigError, match="CREDLY_CONSOLE_WEBHOOK_SECRET"):
        ReceiverSettings.from_config(AppConfig(), MemorySecrets())
    config = AppConfig()
    config.credly.organization_id = ORG
    config.server.docebo_basic_auth_user = "docebo"
    settings = ReceiverSettings.from_config(config, MemorySecrets({"webhook_secret": SECRET}))
    assert (settings.secret, settings.organization_id, settings.docebo_basic_auth_user) == (SECRET, ORG, "docebo")
    with pytest.raises(ReceiverConfigError, match="letters, digits"):
        ReceiverSettings.from_config(config, MemorySecrets({"webhook_secret": "has/slash and space"}))


def test_webhook_urls():
    assert base_url("127.0.0.1", 8787) == "http://127.0.0.1:8787"
    assert base_url("::1", 8787) == "http://[::1]:8787"
    assert base_url("0.0.0.0", 8787, "https://sync.example.org/hooks/") == "https://sync.example.org/hooks"
    assert webhook_urls("https://sync.example.org", "abc") == {
        "docebo": "https://sync.example.org/webhooks/docebo/abc",
        "credly": "https://sync.example.org/webhooks/credly/abc",
    }


# -- property: any body gets a clear answer, never a 500 (issue 8, "bad input") -------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
docebo_like = st.fixed_dictionaries(
    {"message_id": st.one_of(st.text(max_size=30), st.integers()), "event": st.text(max_size=30)},
    optional={"payload": json_values, "payloads": st.lists(json_values, max_size=30)},
)
credly_like = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=30), st.none()),
        "event_type": st.text(max_size=30),
        "organization_id": st.sampled_from([ORG, "other", ""]),
    },
    optional={"occurred_at": json_values},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(json_values, docebo_like, credly_like),
    source=st.sampled_from(["docebo", "credly"]),
    raw=st.one_of(st.none(), st.binary(max_size=50)),
)
def test_any_body_gets_a_clear_answer_and_nothing_half_stored(writer, db_path, body, source, raw):
    import asyncio

    async def post() -> httpx.Response:
        async with make_client(writer) as client:
            if raw is not None:
                return await client.post(f"/webhooks/{source}/{SECRET}", content=raw)
            return await client.post(f"/webhooks/{source}/{SECRET}", json=body)

    before = len(rows(db_path))
    response = asyncio.run(post())
    assert response.status_code in (200, 400, 403), response.text
    assert "error" in response.json() or response.status_code == 200
    stored = len(rows(db_path)) - before
    if response.status_code == 200:
        assert stored == response.json()["stored"]
    else:
        assert stored == 0
