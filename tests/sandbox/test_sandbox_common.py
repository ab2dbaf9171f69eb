"""services/sandbox/{faults,middleware,webhooks}.py: seeded faults, the middleware, call counters, the webhook sender."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.sandbox.faults import DroppedConnection, FaultConfig
from services.sandbox.middleware import RouteCounter, SandboxMiddleware
from services.sandbox.runner import serve_app
from services.sandbox.webhooks import WebhookSender, any_2xx_3xx, only_200


def _tiny_app(faults: FaultConfig, calls: RouteCounter, processed: list[str]) -> Starlette:
    async def create(request: Request) -> JSONResponse:
        processed.append(request.path_params["org"])
        return JSONResponse({"data": {"ok": True}, "metadata": {}}, status_code=201)

    async def control(request: Request) -> JSONResponse:
        return JSONResponse({"control": True})

    routes = [
        Route("/v1/organizations/{org}/badges", create, methods=["POST"]),
        Route("/_sandbox/ping", control),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SandboxMiddleware,
                routes=routes,
                faults=faults,
                calls=calls,
                error_body=lambda status, message: {"data": {"message": message}, "metadata": None},
                strip_trailing_slash=True,
            )
        ],
    )


ISSUE = "POST /v1/organizations/{org}/badges"


def _outcomes(cfg: FaultConfig, n: int) -> list[tuple]:
    return [(d.action, round(d.delay_s, 9)) for d in (cfg.decide(ISSUE) for _ in range(n))]


def test_faults_are_deterministic_by_seed():
    a = FaultConfig(seed=7, fail_rate=0.3, drop_rate=0.2, latency_ms=5, jitter_ms=10)
    b = FaultConfig(seed=7, fail_rate=0.3, drop_rate=0.2, latency_ms=5, jitter_ms=10)
    c = FaultConfig(seed=8, fail_rate=0.3, drop_rate=0.2, latency_ms=5, jitter_ms=10)
    first, second, other = _outcomes(a, 200), _outcomes(b, 200), _outcomes(c, 200)
    assert first == second
    assert first != other
    actions = [x[0] for x in first]
    assert {"fail", "drop", None} <= set(actions)
    # roughly the configured shares (drop applies to the calls that did not fail)
    assert 40 <= actions.count("fail") <= 80
    assert all(0.005 <= delay < 0.015 for _, delay in first)
    a.reset()
    assert _outcomes(a, 200) == first


def test_same_seed_same_outcomes_even_when_settings_change_midway():
    a = FaultConfig(seed=3)
    b = FaultConfig(seed=3, fail_rate=1.0)
    a.decide(ISSUE), b.decide(ISSUE)
    a.update(fail_rate=0.5)
    b.update(fail_rate=0.5)
    assert _outcomes(a, 50) == _outcomes(b, 50)


def test_update_validates_and_keeps_old_values():
    cfg = FaultConfig()
    with pytest.raises(ValueError, match="fail_rate"):
        cfg.update(fail_rate=2)
    assert cfg.fail_rate == 0.0
    with pytest.raises(ValueError, match="unknown"):
        cfg.update(colour="red")
    cfg.update(rate_limit=0)
    assert cfg.rate_limit is None


def test_rate_limit_windows_and_retry_after():
    now = [100.0]
    cfg = FaultConfig(rate_limit=3, rate_window_s=60, clock=lambda: now[0])
    assert [cfg.decide(ISSUE).action for _ in range(3)] == [None, None, None]
    limited = cfg.decide(ISSUE)
    assert (limited.action, limited.status, limited.retry_after) == ("rate_limit", 429, 60)
    now[0] += 45.2
    assert cfg.decide(ISSUE).retry_after == 15
    now[0] += 15
    assert cfg.decide(ISSUE).action is None


def test_forced_faults_hit_only_their_route_and_run_out():
    cfg = FaultConfig()
    cfg.force("fail", route=ISSUE, times=2, status=502)
    assert cfg.decide("GET /other").action is None
    assert [(d.action, d.status) for d in (cfg.decide(ISSUE) for _ in range(3))] == [
        ("fail", 502),
        ("fail", 502),
        (None, 0),
    ]
    with pytest.raises(ValueError):
        cfg.force("explode")


async def test_middleware_counts_routes_and_answers_faults_with_the_api_error_body():
    faults, calls, processed = FaultConfig(), RouteCounter(), []
    app = _tiny_app(faults, calls, processed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sbx") as client:
        assert (await client.post("/v1/organizations/o1/badges")).status_code == 201
        assert (await client.post("/v1/organizations/o1/badges/")).status_code == 201  # trailing slash
        faults.force("fail", route=ISSUE)
        failed = await client.post("/v1/organizations/o1/badges")
        assert failed.status_code == 503
        assert failed.json() == {"data": {"message": failed.json()["data"]["message"]}, "metadata": None}
        faults.update(rate_limit=1)
        assert (await client.post("/v1/organizations/o1/badges")).status_code == 201
        limited = await client.post("/v1/organizations/o1/badges")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert (await client.get("/nowhere")).status_code == 429  # the limit covers every route
        faults.update(rate_limit=None)
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/_sandbox/ping")).json() == {"control": True}
    assert processed == ["o1", "o1", "o1"]
    assert calls.snapshot() == {ISSUE: 5, "GET (no route)": 2}
    assert calls.statuses()[ISSUE] == {201: 3, 429: 1, 503: 1}
    assert calls.total() == 7


async def test_in_process_drop_processes_the_request_then_raises_a_transport_error():
    faults, calls, processed = FaultConfig(), RouteCounter(), []
    app = _tiny_app(faults, calls, processed)
    faults.force("drop", route=ISSUE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sbx") as client:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await client.post("/v1/organizations/o9/badges")
        assert isinstance(info.value, DroppedConnection)
        assert info.value.request.url.path == "/v1/organizations/o9/badges"
        assert processed == ["o9"]
        assert (await client.post("/v1/organizations/o9/badges")).status_code == 201


@pytest.mark.e2e
async def test_drop_over_uvicorn_is_an_ambiguous_transport_failure():
    faults, calls, processed = FaultConfig(), RouteCounter(), []
    app = _tiny_app(faults, calls, processed)
    async with serve_app(app) as served:
        faults.force("drop", route=ISSUE)
        async with httpx.AsyncClient(base_url=served.origin) as client:
            with pytest.raises(httpx.TransportError):
                await client.post("/v1/organizations/o2/badges")
            assert processed == ["o2"]
            ok = await client.post("/v1/organizations/o2/badges")
            assert ok.status_code == 201
    assert calls.statuses()[ISSUE] == {0: 1, 201: 1}


# -- webhook sender -----------------------------------------------------------------------------


def _receiver(statuses: list[int], received: list[dict]) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        received.append(json.loads(await request.body()))
        status = statuses.pop(0) if statuses else 200
        return JSONResponse({}, status_code=status)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.mark.e2e
async def test_webhook_retries_until_200_against_a_real_receiver():
    received: list[dict] = []
    async with serve_app(_receiver([500, 204, 200], received)) as served:
        sender = WebhookSender(f"{served.origin}/hook", accept=only_200, retry_delays=(0.01, 0.02))
        delivery = sender.send({"id": "e1"})
        assert delivery is not None and not delivery.done  # send() never waits for the POST
        await sender.drain(timeout=10)
        await sender.aclose()
    assert received == [{"id": "e1"}] * 3
    assert [a.status for a in delivery.attempts] == [500, 204, 200]
    assert delivery.delivered


async def test_webhook_accepts_any_2xx_3xx_for_docebo_and_gives_up_after_max_attempts():
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(302 if len(calls) == 1 else 500)

    sender = WebhookSender(
        "http://receiver/hook", accept=any_2xx_3xx, retry_delays=(0,), transport=httpx.MockTransport(handler)
    )
    ok = sender.send({"n": 1})
    await sender.drain(timeout=5)
    assert ok.delivered and len(ok.attempts) == 1
    sender.configure(retry_delays=(0, 0), max_attempts=3)
    failed = sender.send({"n": 2})
    await sender.drain(timeout=5)
    assert failed.gave_up and not failed.delivered
    assert [a.status for a in failed.attempts] == [500, 500, 500]
    await sender.aclose()


async def test_webhook_connection_errors_are_retried_and_no_url_sends_nothing():
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    sender = WebhookSender(None, retry_delays=(0,), max_attempts=5, transport=httpx.MockTransport(handler))
    assert sender.send({"x": 1}) is None
    sender.url = "http://receiver/hook"
    delivery = sender.send({"x": 1})
    await sender.drain(timeout=5)
    assert delivery.delivered
    assert [a.error is not None for a in delivery.attempts] == [True, True, False]
    await sender.aclose()


async def test_sends_from_another_thread_are_delivered_in_the_senders_loop():
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200)

    sender = WebhookSender("http://receiver/hook", retry_delays=(0,), transport=httpx.MockTransport(handler))
    sender.bind_loop()
    await asyncio.to_thread(sender.send, {"from": "thread"})
    assert await asyncio.to_thread(sender.wait_idle, 5)
    assert seen == [{"from": "thread"}]
    await sender.aclose()
