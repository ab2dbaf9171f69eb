"""Issue 4 acceptance: both clients against the sandboxes (in-process, and over a real uvicorn
server for the dropped connection).

- paging across many pages;
- a 429 storm with Retry-After completes without error and without exceeding the limiter;
- 10 % injected 5xx (and dropped connections) complete with every object written exactly once;
- an expired Docebo token is refreshed once;
- a wrong Credly token gives an authentication error naming Credly;
- a dropped connection on an issue call does not produce a duplicate badge;
- no secret appears in any log record written during these runs (checked after every test of
  this module, at DEBUG, for every logger including httpx, httpcore and uvicorn).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import httpx
import pytest

from services.clients.credly import AlreadyHolds, CredlyClient, Issued
from services.clients.docebo import DoceboClient
from services.clients.http import HttpPolicy, RateLimiter, bounded_gather
from services.core.errors import AuthenticationError
from services.sandbox.faults import FaultConfig

CREDLY_BASE = "http://credly.sandbox.test/v1"
DOCEBO_BASE = "http://docebo.sandbox.test"
ISSUE = "POST /v1/organizations/{org}/badges"


# ------------------------------------------------------------------------------------------
# secrets in logs: every test here is checked


class SecretWatch:
    """Collects every secret a test's worlds hand out; checked against all log records."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.docebo_states: list = []

    def add(self, *values: str) -> None:
        for v in values:
            if v:
                self.values.add(v)
                self.values.add(base64.b64encode(f"{v}:".encode()).decode())

    def all(self) -> set[str]:
        out = set(self.values)
        for state in self.docebo_states:
            out.update(state.tokens)  # every access token the sandbox issued
            out.update(state.refresh_tokens)
        return out


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "services", "uvicorn", "uvicorn.error", "uvicorn.access",
                 "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    watch = SecretWatch()
    yield watch
    secrets = watch.all()
    assert secrets, "each test registers the secrets it uses"
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert records, "the run is expected to log (httpx at least)"
    for record in records:
        text = record.getMessage() + repr(record.args) + repr(getattr(record, "__dict__", {}))
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"secret in log record {record.name}: {record.getMessage()[:200]}"


# ------------------------------------------------------------------------------------------
# worlds


@pytest.fixture(scope="module")
def demo_medium():
    from services.sandbox.demo_data import generate

    return generate("medium", 0)


def credly_world(data, faults: FaultConfig | None = None):
    from services.sandbox.credly.app import create_credly_app
    from services.sandbox.credly.state import CredlyState

    state = CredlyState.from_demo(data, token="credly-acceptance-token-0001")
    return state, create_credly_app(state, faults or FaultConfig(seed=11))


def docebo_world(data, faults: FaultConfig | None = None):
    from services.sandbox.docebo.app import create_docebo_app
    from services.sandbox.docebo.state import DoceboState

    state = DoceboState.from_demo(data, client_secret="docebo-acceptance-secret-0001",
                                  admin_password="docebo-acceptance-password")
    return state, create_docebo_app(state, faults or FaultConfig(seed=12))


class Recording(httpx.AsyncBaseTransport):
    """Wraps a transport and records when each request left and how it was answered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[float, str, str]] = []
        self.answers: list[int | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((time.monotonic(), request.method, request.url.path))
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            self.answers.append(None)
            raise
        self.answers.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def assert_bucket_respected(times: list[float], rate: float, burst: int, slack: float = 0.005):
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowed = burst + rate * (times[j] - times[i] + slack)
            assert j - i + 1 <= allowed + 1e-9, (j - i + 1, times[j] - times[i])


class RealSleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(seconds)


def fields_for(template_id: str, email: str) -> dict:
    return {"recipient_email": email, "badge_template_id": template_id,
            "issued_to_first_name": "Grace", "issued_to_last_name": "Hopper",
            "issued_at": "2026-06-01 09:00:00 +0000", "expires_at": False}


def duplicate_friendly_template(state):
    """A template that allows duplicate badges: only the client's own care prevents doubles."""
    return next(t for t in state.templates.values()
                if t.state == "active" and t.allow_duplicate_badges)


# ------------------------------------------------------------------------------------------
# paging


async def test_paging_across_many_pages(demo_medium, no_secret_in_logs):
    cstate, capp = credly_world(demo_medium)
    dstate, dapp = docebo_world(demo_medium)
    no_secret_in_logs.add(cstate.token, dstate.client_secret)
    no_secret_in_logs.docebo_states.append(dstate)
    policy = HttpPolicy(sleep=RealSleepRecorder())
    async with CredlyClient(CREDLY_BASE, cstate.organization_id, cstate.token, policy=policy,
                            transport=httpx.ASGITransport(app=capp)) as credly, \
            DoceboClient(DOCEBO_BASE, dstate.client_id, dstate.client_secret, policy=policy,
                         transport=httpx.ASGITransport(app=dapp)) as docebo:
        badges = [b async for b in credly.iter_badges()]
        assert len(badges) == len(cstate.badges) == 2500
        assert len({b["id"] for b in badges}) == 2500
        assert credly.calls.snapshot()["GET /organizations/{org}/badges"] == 50

        users = [u async for u in docebo.iter_users()]
        assert len(users) == len(dstate.users) == 2000
        assert docebo.calls.snapshot()["GET /manage/v1/user"] == 10
        completed = [e async for e in docebo.iter_enrollments(
            course_ids=sorted(dstate.courses), statuses=["completed"])]
        expected = list(dstate.iter_enrollments(sorted(dstate.courses), None, ["completed"]))
        assert len(completed) == len(expected) > 5000
        assert len({(e["course_id"], e["user_id"]) for e in completed}) == len(expected)


# ------------------------------------------------------------------------------------------
# 429 storm


async def test_a_429_storm_with_retry_after_completes_within_the_limiter(demo_small, no_secret_in_logs):
    # The sandbox lets 8 calls through per 0.25 s window and answers the rest 429 with a
    # Retry-After in whole seconds; the client's own limiter (60/s, burst 8) is faster than that,
    # so a storm of 429s is certain. Retry sleeps are real but scaled by 0.3 (1 s -> 0.3 s).
    faults = FaultConfig(seed=5, rate_limit=8, rate_window_s=0.25)
    state, app = credly_world(demo_small, faults)
    no_secret_in_logs.add(state.token)
    rate, burst = 60.0, 8
    sleeps = RealSleepRecorder()
    transport = Recording(httpx.ASGITransport(app=app))
    policy = HttpPolicy(sleep=sleeps, time_scale=0.3, concurrency=6, max_rate_limited_retries=20)
    tpl = duplicate_friendly_template(state)
    async with CredlyClient(CREDLY_BASE, state.organization_id, state.token, policy=policy,
                            transport=transport, limiter=RateLimiter(rate, burst)) as credly:
        results = await bounded_gather(credly.concurrency, [
            credly.issue_badge(fields_for(tpl.id, f"storm{i}@example.org")) for i in range(40)])
        templates = [t async for t in credly.iter_templates()]

    assert all(isinstance(r, Issued) for r in results)
    assert len(templates) == len(state.templates)
    for i in range(40):
        held = [b for b in state.badges.values()
                if b.template_id == tpl.id and b.recipient_email == f"storm{i}@example.org"]
        assert len(held) == 1
    assert transport.answers.count(429) >= 3, "the storm happened"
    assert_bucket_respected([t for t, _, _ in transport.sent], rate, burst)
    # Every wait after a 429 honoured its Retry-After (>= 1 s, scaled).
    assert sleeps.calls and min(sleeps.calls) >= 0.3 - 1e-9


async def test_a_docebo_429_storm_completes(demo_small, no_secret_in_logs):
    faults = FaultConfig(seed=6, rate_limit=10, rate_window_s=0.25)
    state, app = docebo_world(demo_small, faults)
    no_secret_in_logs.add(state.client_secret)
    no_secret_in_logs.docebo_states.append(state)
    transport = Recording(httpx.ASGITransport(app=app))
    policy = HttpPolicy(sleep=RealSleepRecorder(), time_scale=0.3, max_rate_limited_retries=20)
    limiter = RateLimiter(80.0, 10)
    async with DoceboClient(DOCEBO_BASE, state.client_id, state.client_secret, policy=policy,
                            transport=transport, limiter=limiter, page_size=3) as docebo:
        users = [u async for u in docebo.iter_users()]
        created = await bounded_gather(docebo.concurrency, [
            docebo.create_external_training({
                "user_id": 10001 + i, "course_name": "Storm", "course_type": "Credly badge",
                "date_from": "2026-06-01 09:00:00", "training_institute": "Credly"})
            for i in range(30)])
    assert len(users) == len(state.users)
    assert all("id" in c for c in created)
    for i in range(30):
        assert len([t for t in state.external_trainings.values()
                    if t["user_id"] == 10001 + i and t["course_name"] == "Storm"]) == 1
    assert transport.answers.count(429) >= 3
    assert_bucket_respected([t for t, _, _ in transport.sent], 80.0, 10)


# ------------------------------------------------------------------------------------------
# injected 5xx and drops: every object exactly once


@pytest.mark.parametrize("kind", ["fail", "drop"])
async def test_ten_percent_faults_write_every_badge_exactly_once(demo_small, no_secret_in_logs, kind):
    faults = FaultConfig(seed=21, **({"fail_rate": 0.1} if kind == "fail" else {"drop_rate": 0.1}))
    state, app = credly_world(demo_small, faults)
    no_secret_in_logs.add(state.token)
    tpl = duplicate_friendly_template(state)
    transport = Recording(httpx.ASGITransport(app=app))
    async with CredlyClient(CREDLY_BASE, state.organization_id, state.token,
                            policy=HttpPolicy(sleep=RealSleepRecorder(), time_scale=0.001),
                            transport=transport) as credly:
        singles = await bounded_gather(credly.concurrency, [
            credly.issue_badge(fields_for(tpl.id, f"five{i}@example.org")) for i in range(60)])
        batch = await credly.issue_badges_batch(
            [fields_for(tpl.id, f"batch{i}@example.org") for i in range(60)])
    assert all(isinstance(r, Issued) for r in singles + batch), [r for r in singles + batch
                                                                 if not isinstance(r, Issued)]
    for prefix in ("five", "batch"):
        for i in range(60):
            held = [b for b in state.badges.values()
                    if b.template_id == tpl.id and b.recipient_email == f"{prefix}{i}@example.org"]
            assert len(held) == 1, (prefix, i, len(held))
    faulted = transport.answers.count(503) if kind == "fail" else transport.answers.count(None)
    assert faulted >= 5, "faults were injected"


@pytest.mark.parametrize("kind", ["fail", "drop"])
async def test_ten_percent_faults_write_every_docebo_object_exactly_once(demo_small, no_secret_in_logs, kind):
    faults = FaultConfig(seed=22, **({"fail_rate": 0.1, "fail_status": 500} if kind == "fail"
                                     else {"drop_rate": 0.1}))
    state, app = docebo_world(demo_small, faults)
    no_secret_in_logs.add(state.client_secret)
    no_secret_in_logs.docebo_states.append(state)
    transport = Recording(httpx.ASGITransport(app=app))
    users = sorted(state.users)[:40]
    certs = sorted(state.certifications)
    async with DoceboClient(DOCEBO_BASE, state.client_id, state.client_secret,
                            policy=HttpPolicy(sleep=RealSleepRecorder(), time_scale=0.001),
                            transport=transport) as docebo:
        await bounded_gather(docebo.concurrency, [
            docebo.create_external_training({
                "user_id": uid, "course_name": f"Badge for {uid}", "course_type": "Credly badge",
                "date_from": "2026-06-01 09:00:00", "training_institute": "Credly"})
            for uid in users])
        award_targets = [(uid, certs[0]) for uid in users
                         if not any(a["id_cert"] == certs[0]
                                    for a in state.awards_by_user.get(uid, {}).values())]
        await bounded_gather(docebo.concurrency, [
            docebo.create_certification_award({"id_cert": cert, "user_id": uid,
                                               "issued_on": "2026-06-02 10:00:00"})
            for uid, cert in award_targets])
        field = await docebo.create_course_dropdown_field("Credly badge", ["A"])
        for n in range(10):
            await docebo.update_course_dropdown_options(field["id"], new=[f"Option {n}"])
    for uid in users:
        assert len([t for t in state.external_trainings.values()
                    if t["user_id"] == uid and t["course_name"] == f"Badge for {uid}"]) == 1
    for uid, cert in award_targets:
        assert len([a for a in state.awards_by_user.get(uid, {}).values()
                    if a["id_cert"] == cert]) == 1
    fields = [f for f in state.course_fields.values() if f["name"] == "Credly badge"]
    assert len(fields) == 1
    labels = sorted(fields[0]["options"].values())
    assert labels == sorted(["A"] + [f"Option {n}" for n in range(10)])
    faulted = transport.answers.count(500) if kind == "fail" else transport.answers.count(None)
    assert faulted >= 5


# ------------------------------------------------------------------------------------------
# credentials


async def test_an_expired_docebo_token_is_refreshed_once_mid_run(demo_small, no_secret_in_logs):
    state, app = docebo_world(demo_small)
    no_secret_in_logs.add(state.client_secret)
    no_secret_in_logs.docebo_states.append(state)
    async with DoceboClient(DOCEBO_BASE, state.client_id, state.client_secret,
                            policy=HttpPolicy(sleep=RealSleepRecorder()),
                            transport=httpx.ASGITransport(app=app), page_size=5) as docebo:
        seen = 0
        async for _ in docebo.iter_users():
            seen += 1
            if seen == 12:  # on page 3: the platform revokes every token
                assert state.expire_tokens() == 1
        assert seen == len(state.users)
        assert docebo.token_fetches == 2
    statuses = app.state.sandbox.calls.statuses()
    assert statuses["GET /manage/v1/user"].get(401) == 1
    assert statuses["POST /oauth2/token"] == {200: 2}


async def test_a_wrong_credly_token_is_an_authentication_error_naming_credly(demo_small, no_secret_in_logs):
    state, app = credly_world(demo_small)
    wrong = "credly-wrong-token-9999"
    no_secret_in_logs.add(state.token, wrong)
    async with CredlyClient(CREDLY_BASE, state.organization_id, wrong,
                            policy=HttpPolicy(sleep=RealSleepRecorder()),
                            transport=httpx.ASGITransport(app=app)) as credly:
        with pytest.raises(AuthenticationError) as info:
            await credly.issue_badge(fields_for(duplicate_friendly_template(state).id, "a@example.org"))
    e = info.value
    assert e.service == "Credly" and e.status == 401
    assert str(e).startswith("Credly POST /organizations/{org}/badges failed (authentication failed, HTTP 401)")
    assert wrong not in str(e)
    logging.getLogger("services.test").error("issue failed: %s", e)  # as a flow would log it


# ------------------------------------------------------------------------------------------
# dropped connection on an issue call, over a real server


async def test_a_dropped_issue_over_a_real_server_makes_no_duplicate(demo_small, no_secret_in_logs):
    from services.sandbox.runner import serve_app

    state, app = credly_world(demo_small)
    no_secret_in_logs.add(state.token)
    faults = app.state.sandbox.faults
    plain = next(t for t in state.templates.values()
                 if t.state == "active" and not t.allow_duplicate_badges)
    dup = duplicate_friendly_template(state)
    async with serve_app(app) as served:
        base = f"{served.origin}/v1"
        async with CredlyClient(base, state.organization_id, state.token,
                                policy=HttpPolicy(sleep=RealSleepRecorder(), time_scale=0.001)) as credly:
            for tpl in (plain, dup):
                faults.force("drop", route=ISSUE)
                result = await credly.issue_badge(fields_for(tpl.id, f"wire-{tpl.id}@example.org"))
                assert isinstance(result, Issued) and result.recovered
                held = [b for b in state.badges.values()
                        if b.template_id == tpl.id and b.recipient_email == f"wire-{tpl.id}@example.org"]
                assert len(held) == 1 and held[0].id == result.badge["id"]
            # and issuing the same again afterwards is "already holds", not a second badge
            again = await credly.issue_badge(fields_for(plain.id, f"wire-{plain.id}@example.org"))
            assert isinstance(again, AlreadyHolds)
    assert app.state.sandbox.calls.get(ISSUE) == 3
