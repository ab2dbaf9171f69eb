"""End to end on loopback with real servers: both sandboxes on uvicorn post their webhooks to the
receiver of `serve` (ServeRuntime: receiver, writer and engine threads), whose workers run the
flows against the same sandboxes (W1-W3, F3, F5)."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import (
    ORG,
    SECRET,
    T_FIRE,
    T_IMPORT,
    T_SAFETY,
    app_config,
    badges,
    inbox_rows,
    point_webhooks,
    prepare,
    quiet,
    secrets_for,
    serve_data,
    trainings,
    until,
)

from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.serve.service import ServeOptions, ServeRuntime
from services.store import runs
from services.store.db import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
async def world(tmp_path):
    """Sandboxes + a running serve, wired together. Yields (sandboxes, runtime, db_path)."""
    db_path = tmp_path / "serve.db"
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        await prepare(sb, db_path)
        options = ServeOptions(port=0, scheduler=False, mail=False, workers=3, poll_s=0.05, grace_s=2)
        async with ServeRuntime(app_config(sb), secrets_for(sb), db_path, options) as rt:
            await point_webhooks(sb, rt.urls)
            yield sb, rt, db_path


async def control(sb, service: str, method: str, path: str, json=None):
    origin = sb.credly.base_url.rsplit("/v1", 1)[0] if service == "credly" else sb.docebo.base_url
    async with httpx.AsyncClient() as client:
        response = await client.request(method, f"{origin}/_sandbox{path}", json=json)
        response.raise_for_status()
        return response.json()


async def test_a_course_completed_in_docebo_becomes_one_badge_in_credly(world):
    sb, rt, db_path = world
    await control(sb, "docebo", "POST", "/learner/complete", {"course_id": 101, "user_id": 7})
    await until(lambda: badges(sb) == [("learner7@example.com", T_SAFETY)], what="the badge")
    # Credly's badge.created for our own badge comes back and is skipped by L1; nothing more happens.
    await until(lambda: quiet(sb, db_path), what="all delivered and processed")
    assert badges(sb) == [("learner7@example.com", T_SAFETY)]
    rows = inbox_rows(db_path)
    assert [(r["source"], r["event_type"], r["status"]) for r in rows] == [
        ("docebo", "course.enrollment.completed", "done"),
        ("credly", "badge.created", "done"),
    ]
    assert trainings(sb) == []  # T_SAFETY has no external-training mapping; L1 would skip it anyway
    with Store(db_path) as store:
        webhook_runs = runs.query_runs(store, flow="course_completion")
    assert len(webhook_runs) == 1 and webhook_runs[0]["trigger"] == "webhook" and webhook_runs[0]["issued"] == 1


async def test_a_badge_issued_by_hand_in_credly_becomes_one_external_training_in_docebo(world):
    sb, rt, db_path = world
    await control(sb, "credly", "POST", "/badges", {
        "badge_template_id": T_IMPORT, "recipient_email": "Learner12@Example.com",
        "issued_to_first_name": "First12", "issued_to_last_name": "Last12",
    })
    await until(lambda: trainings(sb) == [(12, "Partner Skills")], what="the external training")
    await until(lambda: quiet(sb, db_path), what="all processed")
    assert trainings(sb) == [(12, "Partner Skills")]
    [row] = inbox_rows(db_path)
    assert row["status"] == "done" and row["learner_key"] == "credly-email:learner12@example.com"
    # The worker read the event once to learn the learner; the flow's own read came from that.
    assert sb.credly.handles.calls.get("GET /v1/organizations/{org}/events/{event_id}") == 1


async def test_the_same_delivery_five_times_is_processed_once(world):
    sb, rt, db_path = world
    body = {
        "message_id": "wh-20260105-120000-duplicate", "event": "course.enrollment.completed", "webhook_id": 1,
        "payload": {"user_id": 3, "course_id": 102, "status": "completed", "completion_date": "2026-01-05 12:00:00"},
    }
    async with httpx.AsyncClient() as client:
        answers = [await client.post(rt.urls["docebo"], json=body) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["stored"] for a in answers] == [1, 0, 0, 0, 0]
    await until(lambda: badges(sb) == [("learner3@example.com", T_FIRE)], what="the badge")
    await until(lambda: quiet(sb, db_path))
    with Store(db_path) as store:
        assert runs.count_runs(store, flow="course_completion") == 1
    assert badges(sb) == [("learner3@example.com", T_FIRE)]


async def test_a_grouped_delivery_of_25_is_processed_in_full(world):
    sb, rt, db_path = world
    await control(sb, "docebo", "PUT", "/webhook", {"grouping": True, "group_window_s": 0.3})
    completions = [{"course_id": 101, "user_id": u} for u in range(1, 26)]
    await control(sb, "docebo", "POST", "/learner/complete", {"completions": completions})
    expected = sorted((f"learner{u}@example.com", T_SAFETY) for u in range(1, 26))
    await until(lambda: badges(sb) == expected, timeout=40, what="25 badges")
    await until(lambda: quiet(sb, db_path), timeout=40)
    docebo_rows = [r for r in inbox_rows(db_path) if r["source"] == "docebo"]
    assert len(docebo_rows) == 25 and all(r["status"] == "done" for r in docebo_rows)
    message_ids = {r["delivery_key"].rsplit(":", 1)[0] for r in docebo_rows}
    assert len(message_ids) == 1  # one grouped delivery ...
    assert sorted(int(r["delivery_key"].rsplit(":", 1)[1]) for r in docebo_rows) == list(range(25))  # ... of 25
    assert badges(sb) == expected


async def test_refused_requests_over_http_get_4xx_store_nothing_and_notify(world):
    sb, rt, db_path = world
    base = rt.base_url
    good = {"message_id": "m", "event": "course.enrollment.completed", "payload": {"user_id": 1, "course_id": 101}}
    async with httpx.AsyncClient() as client:
        malformed = await client.post(rt.urls["docebo"], content=b"this is not json")
        wrong_secret = await client.post(f"{base}/webhooks/docebo/not-{SECRET}", json=good)
        foreign = await client.post(rt.urls["credly"], json={
            "id": "ev-1", "organization_id": "00000000-0000-4000-8000-000000000000", "event_type": "badge.created"})
    assert (malformed.status_code, wrong_secret.status_code, foreign.status_code) == (400, 403, 403)
    assert inbox_rows(db_path) == []

    def notes():
        with Store(db_path) as store:
            return sorted(r[0] for r in store.conn.execute("SELECT object FROM notifications WHERE kind = 'webhook_rejected'"))

    await until(lambda: notes() == ["credly:foreign_organization", "docebo:malformed", "docebo:wrong_secret"])
    assert badges(sb) == []
    assert ORG  # the configured organization is the sandbox's


async def test_docebo_basic_auth_end_to_end(tmp_path):
    db_path = tmp_path / "serve.db"
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        await prepare(sb, db_path)
        options = ServeOptions(port=0, scheduler=False, mail=False, workers=2, poll_s=0.05, grace_s=2)
        async with ServeRuntime(app_config(sb, basic_user="docebo-hook"), secrets_for(sb), db_path, options) as rt:
            await point_webhooks(sb, rt.urls, basic_auth={"username": "docebo-hook", "password": "wrong"},
                                 max_attempts=2)
            await control(sb, "docebo", "POST", "/learner/complete", {"course_id": 101, "user_id": 1})
            await until(lambda: sb.docebo.handles.webhooks.idle, what="the sender gave up")
            assert inbox_rows(db_path) == []
            await point_webhooks(sb, rt.urls, basic_auth={"username": "docebo-hook", "password": SECRET})
            await control(sb, "docebo", "POST", "/learner/complete", {"course_id": 101, "user_id": 2})
            await until(lambda: badges(sb) == [("learner2@example.com", T_SAFETY)])


def completed(course_id: int, user_id: int) -> dict:
    return {"course_id": course_id, "user_id": user_id, "status": "completed", "enrolled_at": "2025-01-01 09:00:00",
            "completed_at": "2025-03-01 10:00:00", "validity_end": None}


async def test_a_scheduled_batch_with_errors_mails_one_digest_with_the_errors(tmp_path, smtp_server):
    from services.serve.scheduler import set_enabled

    db_path = tmp_path / "serve.db"
    data = serve_data(enrollments=[completed(101, u) for u in (1, 2, 3)])
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        await prepare(sb, db_path)
        # The course's template is archived in Credly after F1 ran: every issue is refused (422).
        await control(sb, "credly", "POST", f"/templates/{T_SAFETY}/archive")
        with Store(db_path) as store:
            set_enabled(store, "templates", False)
            set_enabled(store, "dropdown", False)
            set_enabled(store, "docebo-to-credly", True)
        options = ServeOptions(port=0, scheduler=True, mail=True, mail_interval_s=0.2, workers=1, poll_s=0.05, grace_s=2)
        config = app_config(sb, smtp_port=smtp_server.port)
        async with ServeRuntime(config, secrets_for(sb), db_path, options):

            def digest_sent():
                with Store(db_path) as store:
                    row = store.conn.execute("SELECT mail_status FROM notifications WHERE kind = 'digest'").fetchone()
                return row is not None and row[0] == "sent"

            await until(digest_sent, timeout=30, what="the digest mailed")
            [msg] = smtp_server.wait_for(1)
        assert msg["To"] == "lms-admin@example.com"
        assert "3 errors" in msg["Subject"] and "docebo_to_credly" in msg["Subject"]
        body = msg.get_content()
        for user in (1, 2, 3):
            assert f"learner{user}@example.com" in body or f"user {user}" in body
        assert "422" in body or "Invalid" in body
        assert len(smtp_server.messages) == 1  # one digest, not one mail per error
        assert badges(sb) == []
        with Store(db_path) as store:
            [run] = runs.query_runs(store, flow="docebo_to_credly")
        assert run["trigger"] == "schedule" and run["failed"] == 3
