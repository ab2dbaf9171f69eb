"""Credly sandbox over real loopback servers: webhook notices with retry, dropped connections."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.sandbox.credly.app import create_credly_app
from services.sandbox.runner import serve_app
from services.sandbox.webhooks import WebhookSender, only_200
from tests.support.credly_sandbox import ORG, TOKEN, issue_fields, make_state

pytestmark = pytest.mark.e2e


class Receiver:
    """A loopback webhook receiver answering a scripted list of statuses (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.arrived = asyncio.Event()

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.bodies.append(json.loads(await request.body()))
            self.arrived.set()
            await self.hold.wait()
            return JSONResponse({}, status_code=self.statuses.pop(0) if self.statuses else 200)

        return Starlette(routes=[Route("/credly/{secret}", hook, methods=["POST"])])


async def test_notices_are_retried_until_200_and_the_event_can_be_read_back():
    receiver = Receiver([500, 204])  # 204 is not good enough for Credly (credly.md §4.1)
    sender = WebhookSender(accept=only_200, retry_delays=(0.01, 0.02))
    state = make_state()
    app = create_credly_app(state, webhooks=sender)
    async with serve_app(receiver.app()) as hook_server, serve_app(app) as credly_server:
        base = f"{credly_server.origin}/v1/organizations/{ORG}"
        async with httpx.AsyncClient(auth=(TOKEN, "")) as client:
            r = await client.put(f"{credly_server.origin}/_sandbox/webhook",
                                 json={"url": f"{hook_server.origin}/credly/s3cret"})
            assert r.status_code == 200
            issued = await client.post(f"{base}/badges", json=issue_fields())
            assert issued.status_code == 201
            await sender.drain(timeout=10)
            assert len(receiver.bodies) == 3
            notice = receiver.bodies[0]
            assert receiver.bodies == [notice] * 3  # the same notice each time
            assert set(notice) == {"id", "organization_id", "event_type", "occurred_at"}
            assert (notice["organization_id"], notice["event_type"]) == (ORG, "badge.created")
            [delivery] = sender.deliveries
            assert [a.status for a in delivery.attempts] == [500, 204, 200] and delivery.delivered
            event = await client.get(f"{base}/events/{notice['id']}")
            assert event.json()["data"]["badge"]["id"] == issued.json()["data"]["id"]
            log = (await client.get(f"{credly_server.origin}/_sandbox/webhook")).json()
            assert log["deliveries"][0]["attempts"][-1]["status"] == 200


async def test_a_slow_receiver_never_delays_the_api_call():
    receiver = Receiver([])
    receiver.hold.clear()  # the receiver does not answer until released
    sender = WebhookSender(accept=only_200, retry_delays=(0.01,))
    app = create_credly_app(make_state(), webhooks=sender)
    async with serve_app(receiver.app()) as hook_server, serve_app(app) as credly_server:
        sender.url = f"{hook_server.origin}/credly/x"
        async with httpx.AsyncClient(auth=(TOKEN, "")) as client:
            base = f"{credly_server.origin}/v1/organizations/{ORG}"
            revoked = await client.put(f"{base}/badges/bbbbbbbb-0000-4000-8000-000000000001/revoke",
                                       json={"reason": "test"})
            assert revoked.status_code == 200
            await asyncio.wait_for(receiver.arrived.wait(), 10)
            assert sender.outstanding == 1  # still waiting for the receiver
            receiver.hold.set()
            await sender.drain(timeout=10)
    assert receiver.bodies[0]["event_type"] == "badge.state.changed"


async def test_a_dropped_issue_over_a_real_server_creates_one_badge():
    state = make_state()
    app = create_credly_app(state)
    async with serve_app(app) as served:
        app.state.sandbox.faults.force("drop", route="POST /v1/organizations/{org}/badges")
        async with httpx.AsyncClient(base_url=f"{served.origin}/v1", auth=(TOKEN, "")) as client:
            with pytest.raises(httpx.TransportError):
                await client.post(f"/organizations/{ORG}/badges", json=issue_fields())
            retry = await client.post(f"/organizations/{ORG}/badges", json=issue_fields())
            assert retry.status_code == 422 and "already has this badge" in retry.json()["data"]["message"]
            listed = await client.get(f"/organizations/{ORG}/badges",
                                      params={"filter": "recipient_email::new.person@example.com"})
            assert listed.json()["metadata"]["total_count"] == 1
