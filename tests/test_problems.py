"""Issue 16: notifications grouped into problems by cause, closed by a later success; connection
health from the outcome of real API calls (the HTTP policy's call outcome listener)."""

from __future__ import annotations

import httpx
import pytest

from services.clients import http
from services.clients.http import ApiSession, HttpPolicy
from services.core.errors import AuthenticationError as AuthError
from services.core.errors import ServerError
from services.store.db import Store
from services.store.health import CallOutcomeRecorder, read_health
from services.store.notifications import (
    cause_of,
    close_problem,
    close_service_problems,
    create_notification,
    list_problems,
    notify_exception,
    open_problem_count,
    unread_count,
)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "db.sqlite") as s:
        yield s


def test_the_cause_of_an_api_error_and_of_its_text_is_the_same():
    exc = AuthError("Credly", "GET /organizations/{org}/badges", 401, "Invalid token 7f3a12")
    assert cause_of(exc) == "credly|401|invalid token #f#a#"
    assert cause_of(f"RuntimeError wrapped: {exc}") == cause_of(exc)
    assert cause_of(ServerError("Docebo", "GET /x", None, "connection refused")) == "docebo|network|connection refused"
    assert cause_of("ValueError: not an API failure") == ""


def test_twenty_one_failures_of_one_cause_are_one_problem_that_a_success_closes(store):
    for n in range(21):
        exc = AuthError("Credly", "POST /organizations/{org}/badges", 401, "Invalid token")
        notify_exception(store, exc, title="Badge could not be issued", run_id=100 + n % 3, object=f"event {n}")
    notify_exception(store, AuthError("Credly", "POST /x", 422, "recipient is invalid"), title="Badge", object="e")
    create_notification(store, "error", "No cause: stands alone")

    problems = list_problems(store)
    assert [p["cause"] for p in problems] == ["credly|422|recipient is invalid", "credly|401|invalid token"]
    token = problems[1]
    assert (token["notifications"], token["events"], token["runs"], token["run_ids"]) == (21, 21, 3, [100, 101, 102])
    assert token["title"] == "Credly HTTP 401: Invalid token"
    assert "Settings → Connections" in token["advice"] and "retry" in token["advice"]
    assert open_problem_count(store) == 2

    assert close_service_problems(store, "docebo") == 0
    assert close_service_problems(store, "credly") == 21  # the 422 is about one object: it stays open
    assert [p["cause"] for p in list_problems(store)] == ["credly|422|recipient is invalid"]
    assert unread_count(store) == 2  # the closed ones are read too
    assert close_problem(store, "credly|422|recipient is invalid") == 1
    assert list_problems(store) == [] and len(list_problems(store, include_closed=True)) == 2


def _asgi(statuses: list[int]):
    async def app(scope, receive, send):
        status = statuses.pop(0)
        body = b'{"message": "Invalid token"}' if status == 401 else b"{}"
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return httpx.ASGITransport(app=app)


async def test_every_final_call_outcome_reaches_the_listener():
    seen = []
    http.set_call_outcome_listener(lambda *outcome: seen.append(outcome))

    async def no_sleep(_):
        return None

    session = ApiSession("Credly", "http://credly.test", transport=_asgi([200, 401, 503, 200]),
                         policy=HttpPolicy(sleep=no_sleep, max_retries=1))
    try:
        await session.request("GET", "/a")
        with pytest.raises(AuthError):
            await session.request("GET", "/b")
        await session.request("GET", "/c")  # a 503, then a 200 on the retry: one success
    finally:
        http.set_call_outcome_listener(None)
        await session.aclose()
    assert seen == [("Credly", 200, ""), ("Credly", 401, "Invalid token"), ("Credly", 200, "")]


def test_the_recorder_writes_state_changes_at_once_and_repeats_at_most_every_few_seconds(tmp_path):
    now = [0.0]
    recorder = CallOutcomeRecorder(tmp_path / "db.sqlite", every_s=10, clock=lambda: now[0])
    with Store(tmp_path / "db.sqlite") as store:
        notify_exception(store, AuthError("Credly", "GET /x", 401, "Invalid token"), title="t", object="o")
        recorder("Credly", 401, "Invalid token")
        health = read_health(store)["credly"]
        assert not health["ok"] and "HTTP 401: Invalid token" in health["message"]
        stamp = health["checked_at"]
        now[0] = 5
        recorder("Credly", 401, "Invalid token")  # same state within 10 s: not written again
        assert read_health(store)["credly"]["checked_at"] == stamp
        assert open_problem_count(store) == 1
        recorder("Credly", 422, "recipient is invalid")  # the service answered: the connection works
        assert read_health(store)["credly"]["ok"]
        assert open_problem_count(store) == 0
        recorder("Docebo", None, "connection refused")
        assert "no response: connection refused" in read_health(store)["docebo"]["message"]


def test_one_mail_per_cause_names_the_cause_and_what_to_do():
    from services.serve.mailer import compose

    rows = [{"id": i, "title": f"Webhook event {i} failed", "cause": "credly|401|invalid token",
             "service_message": "Invalid token", "created_at": "2026-01-01T00:00:00Z", "kind": "error"}
            for i in range(1, 22)]
    msg = compose(rows, sender="a@example.org", recipient="b@example.org")
    assert msg["Subject"] == "[credly-console] Credly HTTP 401: Invalid token (21 notifications)"
    body = msg.get_content()
    assert body.count("Credly HTTP 401: Invalid token — 21 notifications") == 1
    assert "fix the Credly token in Settings → Connections" in body
