"""The shared HTTP policy (services/clients/http.py) against tiny purpose-built Starlette apps.

Retries, Retry-After, jitter bounds, the limiter's bound, ambiguous failures of non-idempotent
calls, typed errors and redaction. Retry sleeps are injected (recorded, instant); only the
limiter test waits real (milliseconds of) time, because what it checks is real timing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.clients.http import (
    ApiSession,
    CallCounter,
    HttpPolicy,
    RateLimiter,
    Recovered,
    bounded_gather,
    parse_retry_after,
    php_params,
    service_message,
)
from services.core.errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
    redact,
)
from services.core.secrets import Secret

BASE = "http://api.test/v1"


class Script:
    """A tiny app whose responses are scripted per path: each hit pops the next (status,
    headers, body); once the script is empty it answers 200. It records every hit."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[tuple[int, dict, object]]] = {}
        self.hits: list[tuple[str, str, float, dict]] = []
        self.created: list[dict] = []
        self.raw_paths: list[str] = []

    def app(self) -> Starlette:
        async def any_route(request: Request) -> Response:
            path = request.url.path
            self.raw_paths.append(request.scope.get("raw_path", b"").decode())
            self.hits.append((request.method, path, time.monotonic(), dict(request.headers)))
            if request.method == "POST" and path.endswith("/things"):
                body = await request.json()
                self.created.append(body)
            queue = self.scripts.get(path) or []
            if queue:
                status, headers, body = queue.pop(0)
                return JSONResponse(body, status_code=status, headers=headers)
            if request.method == "DELETE":
                return Response(status_code=204)
            return JSONResponse({"data": {"ok": True, "path": path}}, status_code=200)

        return Starlette(routes=[Route("/{rest:path}", any_route,
                                       methods=["GET", "POST", "PUT", "DELETE"])])

    def push(self, path: str, *responses: tuple[int, dict, object]) -> None:
        self.scripts.setdefault(path, []).extend(responses)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, *_ in self.hits if m == method and p == path)


@pytest.fixture
def script() -> Script:
    return Script()


def session_for(script: Script, policy: HttpPolicy, *, transport=None, **kw) -> ApiSession:
    transport = transport or httpx.ASGITransport(app=script.app())
    return ApiSession("Testsvc", BASE, policy=policy, transport=transport, **kw)


def err(message: str) -> dict:
    return {"data": {"message": message}, "metadata": None}


# ------------------------------------------------------------------------------------------
# Retry-After parsing and back-off / jitter


def test_retry_after_accepts_seconds_and_http_dates():
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    later = email.utils.format_datetime(now + dt.timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(42.0)
    earlier = email.utils.format_datetime(now - dt.timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 1.0])
def test_backoff_is_exponential_capped_and_jitter_stays_in_bounds(jitter):
    policy = HttpPolicy(backoff_base=0.5, backoff_cap=8.0, jitter=jitter, rng=random.Random(7))
    for retry in range(1, 10):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        samples = [policy.backoff_delay(retry) for _ in range(300)]
        assert all(ceiling * (1 - jitter) - 1e-12 <= s <= ceiling + 1e-12 for s in samples)
        if jitter:
            assert max(samples) - min(samples) > ceiling * jitter * 0.5  # really random
        else:
            assert set(samples) == {ceiling}


def test_retry_after_is_waited_in_full_plus_bounded_jitter():
    policy = HttpPolicy(backoff_base=2.0, jitter=0.5, retry_after_cap=100, rng=random.Random(3))
    samples = [policy.retry_delay(1, 10.0) for _ in range(300)]
    assert min(samples) >= 10.0
    assert max(samples) <= 10.0 + 0.5 * 2.0
    assert policy.retry_delay(1, 10_000.0) <= 100 + 1.0  # capped


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        HttpPolicy(jitter=1.5)
    with pytest.raises(ValueError):
        HttpPolicy(max_retries=-1)


# ------------------------------------------------------------------------------------------
# Retries


async def test_5xx_is_retried_with_growing_backoff_then_succeeds(script, sleeps):
    script.push("/v1/items", (503, {}, err("busy")), (502, {}, err("gateway")), (500, {}, err("x")))
    policy = HttpPolicy(sleep=sleeps, backoff_base=1.0, jitter=0.0)
    s = session_for(script, policy)
    response = await s.request("GET", "/items")
    assert response.status_code == 200
    assert script.count("GET", "/v1/items") == 4
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert s.calls.snapshot() == {"GET /items": 4}
    assert s.calls.retries() == {"GET /items": 3}
    await s.aclose()


async def test_gives_up_after_max_retries_with_a_typed_error_naming_everything(script, sleeps):
    script.push("/v1/items/7", *[(503, {}, err("Maintenance window"))] * 10)
    s = session_for(script, HttpPolicy(sleep=sleeps, max_retries=2))
    with pytest.raises(ServerError) as info:
        await s.request("GET", "/items/{id}", path={"id": 7})
    e = info.value
    assert (e.service, e.call, e.status) == ("Testsvc", "GET /items/{id}", 503)
    assert "Maintenance window" in str(e) and "Testsvc" in str(e) and "GET /items/{id}" in str(e)
    assert "503" in str(e)
    assert script.count("GET", "/v1/items/7") == 3
    assert e.retryable
    await s.aclose()


async def test_429_honours_retry_after_seconds_and_http_date(script, sleeps):
    soon = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    script.push("/v1/items", (429, {"Retry-After": "3"}, err("slow down")),
                (429, {"Retry-After": soon}, err("slow down")))
    policy = HttpPolicy(sleep=sleeps, backoff_base=1.0, jitter=0.5, max_retries=0)
    s = session_for(script, policy)
    assert (await s.request("GET", "/items")).status_code == 200
    # (The recorded sleep returns at once, so the limiter's own pause shows up as a second,
    # equal wait; with a real sleep the pause is over by then.)
    assert 3.0 <= sleeps.calls[0] <= 3.5
    assert all(3.0 <= d <= 3.5 or 27.0 <= d <= 31.0 for d in sleeps.calls)
    assert any(27.0 <= d <= 31.0 for d in sleeps.calls)  # the date, give or take the test's duration
    assert script.count("GET", "/v1/items") == 3
    # 429 has its own budget: max_retries=0 did not stop it.
    await s.aclose()


async def test_429_retry_after_pauses_the_limiter_for_other_calls(script):
    limiter = RateLimiter.unlimited()
    script.push("/v1/items", (429, {"Retry-After": "2"}, err("slow down")))
    s = session_for(script, HttpPolicy(time_scale=0.01, jitter=0.0), limiter=limiter)
    await s.request("GET", "/items")
    assert limiter.paused_until() is None  # the 20 ms pause is over
    limiter.pause_for(5)
    assert limiter.paused_until() is not None
    await s.aclose()


async def test_persistent_429_ends_in_rate_limited_error(script, sleeps):
    script.push("/v1/items", *[(429, {}, err("Too many requests"))] * 20)
    s = session_for(script, HttpPolicy(sleep=sleeps, max_rate_limited_retries=4))
    with pytest.raises(RateLimitedError) as info:
        await s.request("GET", "/items")
    assert info.value.status == 429 and "Too many requests" in str(info.value)
    assert script.count("GET", "/v1/items") == 5
    await s.aclose()


async def test_connect_errors_are_retried_even_for_posts(script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    s = session_for(script, HttpPolicy(sleep=sleeps), transport=transports.Refusing(inner, 2))
    # A POST without `recover`: a refused connection never carried the request, so retrying is safe.
    response = await s.request("POST", "/things", json={"n": 1})
    assert response.status_code == 200
    assert script.created == [{"n": 1}]
    assert s.calls.snapshot() == {"POST /things": 3}
    await s.aclose()


async def test_network_error_after_retries_is_a_network_error(script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    s = session_for(script, HttpPolicy(sleep=sleeps, max_retries=1),
                    transport=transports.Refusing(inner, 99))
    with pytest.raises(NetworkError) as info:
        await s.request("GET", "/items")
    assert info.value.status is None
    assert "cannot connect" in str(info.value) and "Testsvc" in str(info.value)
    await s.aclose()


async def test_read_errors_on_get_are_retried(script, sleeps, transports):
    lost = {"n": 0}

    def lose_first(request):
        lost["n"] += 1
        return lost["n"] == 1

    inner = httpx.ASGITransport(app=script.app())
    s = session_for(script, HttpPolicy(sleep=sleeps),
                    transport=transports.Losing(inner, lose_first, httpx.ReadTimeout))
    assert (await s.request("GET", "/items")).status_code == 200
    assert script.count("GET", "/v1/items") == 2
    await s.aclose()


# ------------------------------------------------------------------------------------------
# Ambiguous failures of non-idempotent calls


async def test_dropped_post_is_not_resent_when_the_object_exists(script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    transport = transports.Losing(inner, lambda r: r.method == "POST")
    s = session_for(script, HttpPolicy(sleep=sleeps), transport=transport)
    lookups = []

    async def recover():
        lookups.append(1)
        found = [c for c in script.created if c == {"n": 1}]
        return found[0] if found else None

    result = await s.request("POST", "/things", json={"n": 1}, recover=recover)
    assert result == Recovered({"n": 1})
    assert script.created == [{"n": 1}]  # written exactly once
    assert lookups == [1]
    assert s.calls.snapshot() == {"POST /things": 1}
    await s.aclose()


async def test_dropped_post_is_resent_only_when_the_lookup_finds_nothing(script, sleeps, transports):
    # The response is lost, but the app "forgets" the object (as if the request never reached
    # the database): the lookup finds nothing, so sending again is the right thing.
    inner = httpx.ASGITransport(app=script.app())
    lost = {"n": 0}

    def lose_first(request):
        if request.method == "POST" and lost["n"] == 0:
            lost["n"] += 1
            return True
        return False

    s = session_for(script, HttpPolicy(sleep=sleeps), transport=transports.Losing(inner, lose_first))

    async def recover():
        script.created.clear()
        return None

    result = await s.request("POST", "/things", json={"n": 2}, recover=recover)
    assert isinstance(result, httpx.Response) and result.status_code == 200
    assert script.created == [{"n": 2}]
    assert script.count("POST", "/v1/things") == 2
    await s.aclose()


async def test_post_without_recover_is_never_resent_after_an_ambiguous_failure(
        script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    s = session_for(script, HttpPolicy(sleep=sleeps),
                    transport=transports.Losing(inner, lambda r: True, httpx.ReadTimeout))
    with pytest.raises(NetworkError) as info:
        await s.request("POST", "/things", json={"n": 3})
    assert "not retried" in str(info.value)
    assert script.created == [{"n": 3}]
    assert script.count("POST", "/v1/things") == 1
    await s.aclose()


async def test_5xx_on_post_checks_before_resending(script, sleeps):
    script.push("/v1/things", (500, {}, err("oops")))
    s = session_for(script, HttpPolicy(sleep=sleeps))
    checked = []

    async def recover():
        checked.append(True)
        return None  # the failed attempt wrote nothing

    result = await s.request("POST", "/things", json={"n": 4}, recover=recover)
    assert isinstance(result, httpx.Response)
    assert checked == [True]
    assert script.count("POST", "/v1/things") == 2
    await s.aclose()


async def test_429_on_post_is_retried_without_a_lookup(script, sleeps):
    script.push("/v1/things", (429, {"Retry-After": "1"}, err("later")))
    s = session_for(script, HttpPolicy(sleep=sleeps))

    async def recover():  # pragma: no cover - must not be called
        raise AssertionError("a 429 is not ambiguous")

    result = await s.request("POST", "/things", json={"n": 5}, recover=recover)
    assert isinstance(result, httpx.Response)
    await s.aclose()


async def test_ambiguous_failures_until_the_end_raise_after_a_last_lookup(script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    s = session_for(script, HttpPolicy(sleep=sleeps, max_retries=2),
                    transport=transports.Losing(inner, lambda r: True))
    lookups = []

    async def recover():
        lookups.append(1)
        script.created.clear()
        return None

    with pytest.raises(NetworkError) as info:
        await s.request("POST", "/things", json={"n": 6}, recover=recover)
    assert "was not created" in str(info.value)
    assert len(lookups) == 3  # before each of 2 retries and once after the last failure
    await s.aclose()


async def test_delete_whose_first_attempt_was_lost_accepts_the_404(script, sleeps, transports):
    inner = httpx.ASGITransport(app=script.app())
    lost = {"n": 0}

    def lose_first(request):
        lost["n"] += 1
        return lost["n"] == 1

    script.push("/v1/things/9", (204, {}, None), (404, {}, err("not found")))
    s = session_for(script, HttpPolicy(sleep=sleeps), transport=transports.Losing(inner, lose_first))
    response = await s.request("DELETE", "/things/{id}", path={"id": 9})
    assert isinstance(response, httpx.Response) and response.status_code == 404
    await s.aclose()


async def _none():
    return None


# ------------------------------------------------------------------------------------------
# Typed errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, ValidationError), (401, AuthenticationError), (403, PermissionDeniedError),
     (404, NotFoundError), (409, ConflictError), (422, ValidationError)],
)
async def test_4xx_become_typed_errors_without_retry(script, sleeps, status, cls):
    script.push("/v1/items", (status, {}, err(f"the service says {status}")))
    s = session_for(script, HttpPolicy(sleep=sleeps))
    with pytest.raises(cls) as info:
        await s.request("GET", "/items")
    assert isinstance(info.value, ApiError)
    assert info.value.status == status
    assert f"the service says {status}" in str(info.value)
    assert sleeps.calls == []
    assert script.count("GET", "/v1/items") == 1
    await s.aclose()


async def test_accepted_statuses_are_returned_not_raised(script, sleeps):
    script.push("/v1/items", (422, {}, err("User already has this badge")))
    s = session_for(script, HttpPolicy(sleep=sleeps))
    response = await s.request("POST", "/items", json={}, accept={422})
    assert response.status_code == 422
    await s.aclose()


async def test_a_redirect_names_the_new_location(script, sleeps):
    script.push("/v1/items", (301, {"Location": "https://api.test/v1/items"}, None))
    s = session_for(script, HttpPolicy(sleep=sleeps))
    with pytest.raises(UnexpectedResponseError) as info:
        await s.request("GET", "/items")
    assert "https://api.test/v1/items" in str(info.value)
    await s.aclose()


async def test_a_url_without_scheme_fails_at_once_with_a_clear_message():
    s = ApiSession("Testsvc", "api.test/v1", policy=HttpPolicy(sleep=_never_sleep))
    with pytest.raises(NetworkError) as info:
        await s.request("GET", "/items")
    assert "base URL" in str(info.value)
    await s.aclose()


async def _never_sleep(seconds):  # pragma: no cover - a failing test would reach it
    raise AssertionError("no sleep expected")


def test_service_message_understands_the_shapes_both_apis_use():
    def resp(body=None, text=None, ctype="application/json", status=400):
        if body is not None:
            return httpx.Response(status, json=body)
        return httpx.Response(status, text=text, headers={"content-type": ctype})

    assert service_message(resp({"data": {"message": "Invalid badge"}})) == "Invalid badge"
    assert service_message(resp({"name": "Bad", "message": "No such course", "code": 0})) == "No such course"
    assert service_message(resp({"error": "invalid_client", "error_description": "Client unknown"})) \
        == "invalid_client: Client unknown"
    assert service_message(resp([{"message": "a"}, {"message": "b"}])) == "a; b"
    assert service_message(resp({"errors": [{"message": "x", "field": "y"}]})) == "x"
    assert "HTML" in service_message(resp(text="<!DOCTYPE html><p>hi", ctype="text/html"))
    assert service_message(resp(text="plain words")) == "plain words"


def test_api_errors_pickle_and_print_without_surprises():
    import pickle

    e = NotFoundError("Credly", "GET /organizations/{org}/badges/{id}", 404, "resource not found")
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is NotFoundError and str(again) == str(e)
    assert "Credly GET /organizations/{org}/badges/{id} failed (not found, HTTP 404): resource not found" == str(e)


# ------------------------------------------------------------------------------------------
# Redaction


async def test_secrets_never_reach_messages_reprs_or_logs(script, sleeps, all_logs, collected_log_text):
    token = "tok-very-secret-123456"

    async def echo_auth(request: Request) -> Response:
        # A hostile / careless service that echoes the credential it got.
        return JSONResponse(err(f"bad token {request.headers.get('authorization')} / {token}"),
                            status_code=401)

    app = Starlette(routes=[Route("/v1/items", echo_auth)])
    secret = Secret(token)

    async def headers():
        import base64
        return {"Authorization": "Basic " + base64.b64encode(f"{secret.reveal()}:".encode()).decode()}

    import base64
    encoded = base64.b64encode(f"{token}:".encode()).decode()
    s = ApiSession("Testsvc", BASE, policy=HttpPolicy(sleep=sleeps),
                   transport=httpx.ASGITransport(app=app), auth_headers=headers,
                   secrets=lambda: (secret, encoded))
    with pytest.raises(AuthenticationError) as info:
        await s.request("GET", "/items")
    text = str(info.value) + repr(info.value) + repr(s) + repr(secret) + str(secret)
    assert token not in text and encoded not in text
    assert "***" in str(info.value)
    assert token not in collected_log_text(all_logs) and encoded not in collected_log_text(all_logs)
    assert all_logs.records, "expected the run to log something at DEBUG"
    await s.aclose()


def test_redact_ignores_trivial_values():
    assert redact("a b c", ["", None, "b"]) == "a b c"
    assert redact("key=abcd1234", [Secret("abcd1234")]) == "key=***"


def test_secret_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret("x" * 10))


# ------------------------------------------------------------------------------------------
# Rate limiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_700_000_000.0

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.wall + (self.now - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_limiter_allows_a_burst_then_one_per_interval():
    t = FakeTime()
    limiter = RateLimiter(2.0, 3, clock=t.clock, wall=t.wall_clock, sleep=t.sleep)
    assert limiter.remaining() == 3
    starts = []
    for _ in range(7):
        await limiter.acquire()
        starts.append(round(t.now - 1000.0, 6))
    # three at once, then every 0.5 s
    assert starts == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert limiter.remaining() == 0
    reset = limiter.window_reset_at()
    assert reset == dt.datetime.fromtimestamp(t.wall_clock() + 1.5, dt.UTC)
    t.now += 10
    assert limiter.remaining() == 3
    assert limiter.window_reset_at() <= dt.datetime.fromtimestamp(t.wall_clock(), dt.UTC)


async def test_limiter_pause_holds_calls_and_then_resumes_without_a_burst():
    t = FakeTime()
    limiter = RateLimiter(10.0, 5, clock=t.clock, wall=t.wall_clock, sleep=t.sleep)
    limiter.pause_for(3.0)
    assert limiter.remaining() == 0
    starts = []
    for _ in range(3):
        await limiter.acquire()
        starts.append(round(t.now - 1000.0, 6))
    assert starts == [3.0, 3.1, 3.2]


async def test_unlimited_limiter_never_waits_but_honours_pauses():
    t = FakeTime()
    limiter = RateLimiter.unlimited(clock=t.clock, wall=t.wall_clock, sleep=t.sleep)
    for _ in range(100):
        await limiter.acquire()
    assert t.now == 1000.0
    assert limiter.remaining() is None and limiter.window_reset_at() is None
    limiter.pause_for(2.0)
    await limiter.acquire()
    assert t.now == pytest.approx(1002.0)


def test_limiter_constructors_describe_themselves():
    assert RateLimiter.per_hour(1000, burst=20).describe() == "1,000/hour, burst 20"
    assert RateLimiter.per_hour(1_000_000).describe() == "1,000,000/hour, burst 60"
    assert RateLimiter.per_minute(12_000).describe() == "12,000/minute, burst 12,000"
    assert RateLimiter(2500.5, burst=3).describe() == "2,500.5/s, burst 3"
    assert RateLimiter(1 / 3.0).describe() == "0.33/s, burst 1"
    assert RateLimiter.per_minute(120).burst == 120
    assert RateLimiter.unlimited().describe() == "no limit"
    with pytest.raises(ValueError):
        RateLimiter(0)


def assert_bucket_respected(times: list[float], rate: float, burst: int, slack: float = 0.004):
    """In every window [t_i, t_j], at most burst + rate * (t_j - t_i + slack) calls started."""
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowed = burst + rate * (times[j] - times[i] + slack)
            assert j - i + 1 <= allowed + 1e-9, (i, j, times[j] - times[i])


class StartRecordingLimiter(RateLimiter):
    """The limiter under test, noting the start time it gives each call. The bucket is checked on
    those: the times the app sees a request add the event loop's scheduling delays, which on a
    loaded machine (pytest -n 2) bunch calls the limiter had spread out."""

    def __init__(self, rate: float, burst: int) -> None:
        self.last_reading = 0.0
        self.starts: list[float] = []
        super().__init__(rate, burst, clock=self._reading)

    def _reading(self) -> float:
        self.last_reading = time.monotonic()
        return self.last_reading

    def _reserve(self) -> tuple[float, int]:
        wait, epoch = super()._reserve()
        self.starts.append(self.last_reading + wait)
        return wait, epoch


async def test_limiter_is_never_exceeded_by_many_concurrent_real_requests(script):
    rate, burst = 200.0, 5
    limiter = StartRecordingLimiter(rate, burst)
    s = session_for(script, HttpPolicy(max_in_flight=8), limiter=limiter)
    await asyncio.gather(*(s.request("GET", "/items/{id}", path={"id": i}) for i in range(60)))
    times = [t for _, _, t, _ in script.hits]
    assert len(times) == 60 and len(limiter.starts) == 60
    assert_bucket_respected(limiter.starts, rate, burst)
    # and it really limited: 60 calls at 200/s with a burst of 5 take at least ~0.27 s
    assert max(times) - min(times) >= (60 - burst) / rate * 0.9
    assert s.calls.total() == 60
    await s.aclose()


async def test_bounded_gather_never_runs_more_than_the_semaphore_allows():
    sem = asyncio.Semaphore(3)
    running = {"now": 0, "max": 0}

    async def job(i):
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running["now"] -= 1
        return i

    assert await bounded_gather(sem, [job(i) for i in range(20)]) == list(range(20))
    assert running["max"] == 3


# ------------------------------------------------------------------------------------------
# Small helpers


def test_php_params_and_call_counter():
    assert php_params({"course_id": [1, 2], "user_id[]": (3,), "page": 2, "x": None, "flag": True}) == [
        ("course_id[]", "1"), ("course_id[]", "2"), ("user_id[]", "3"), ("page", "2"), ("flag", "1")]
    c = CallCounter()
    c.record("GET /a")
    c.record("GET /a")
    c.record("POST /b")
    assert c.snapshot() == {"GET /a": 2, "POST /b": 1} and c.total() == 3
    c.reset()
    assert c.snapshot() == {} and c.total() == 0


async def test_path_values_are_encoded_so_they_cannot_change_the_route(script, sleeps):
    s = session_for(script, HttpPolicy(sleep=sleeps))
    await s.request("GET", "/items/{id}", path={"id": "a/../b?c"})
    assert script.raw_paths[-1] == "/v1/items/a%2F..%2Fb%3Fc"
    assert s.calls.snapshot() == {"GET /items/{id}": 1}
    await s.aclose()
