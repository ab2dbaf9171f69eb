"""The sandbox runner (async and thread) and the `credly-console sandbox` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.sandbox.demo_data import generate
from services.sandbox.runner import SandboxOptions, SandboxThread, run_sandboxes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


async def test_run_sandboxes_serves_the_demo_world_on_free_ports():
    async with run_sandboxes(size="small", seed=5) as sb:
        info = sb.connection_info()
        assert set(info) == {"credly", "docebo"}
        assert set(info["credly"]) == {"base_url", "organization_id", "token"}
        assert info["credly"]["base_url"].startswith("http://127.0.0.1:") and info["credly"]["base_url"].endswith("/v1")
        assert int(info["credly"]["base_url"].split(":")[2].split("/")[0]) > 0
        demo = generate("small", 5)
        assert info["credly"]["organization_id"] == demo.organization_id
        async with httpx.AsyncClient(auth=(info["credly"]["token"], "")) as client:
            r = await client.get(f"{sb.credly.base_url}/organizations/{demo.organization_id}/badge_templates")
            assert r.status_code == 200
            assert r.json()["metadata"]["total_count"] == len(demo.templates)
            if sb.docebo is not None:
                assert set(info["docebo"]) == {"base_url", "client_id", "client_secret"}
                token = await client.post(f"{sb.docebo.base_url}/oauth2/token", data={
                    "grant_type": "client_credentials", "client_id": sb.docebo.client_id,
                    "client_secret": sb.docebo.client_secret}, auth=None)
                assert token.status_code == 200


async def test_webhook_flags_reach_loopback_receivers_for_both_sandboxes():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from services.sandbox.runner import serve_app

    got: dict[str, list] = {"credly": [], "docebo": []}

    async def hook(request: Request) -> Response:
        got[request.path_params["who"]].append(json.loads(await request.body()))
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/{who}", hook, methods=["POST"])])
    async with serve_app(receiver) as hooks:
        options = SandboxOptions(size="small", seed=3, credly_webhook=f"{hooks.origin}/credly",
                                 docebo_webhook=f"{hooks.origin}/docebo", webhook_retry_delays=(0.01,))
        async with run_sandboxes(options) as sb:
            if sb.docebo is None:
                pytest.skip("the Docebo sandbox is not in this build")
            async with httpx.AsyncClient() as client:
                credly_state = sb.credly.state
                template = next(t for t in credly_state.templates.values() if t.state == "active")
                r = await client.post(f"{sb.credly.base_url.removesuffix('/v1')}/_sandbox/templates/{template.id}/archive")
                assert r.status_code == 200
                demo = sb.data
                open_enrollment = next(e for e in demo.enrollments if e["status"] != "completed")
                r = await client.post(f"{sb.docebo.base_url}/_sandbox/learner/complete", json={
                    "course_id": open_enrollment["course_id"], "user_id": open_enrollment["user_id"]})
                assert r.status_code == 200, r.text
            await sb.credly.handles.webhooks.drain(timeout=10)
            await sb.docebo.handles.webhooks.drain(timeout=10)
    assert [n["event_type"] for n in got["credly"]] == ["badge_template.changed"]
    assert got["docebo"] and "course.enrollment.completed" in json.dumps(got["docebo"])


def test_sandbox_thread_for_sync_code_delivers_webhooks_from_any_thread():
    seen: list[dict] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200)

    options = SandboxOptions(size="small", seed=1, credly_webhook="http://hooks.invalid/credly",
                             webhook_retry_delays=(0.01,))
    with SandboxThread(options) as sb:
        sender = sb.credly.handles.webhooks
        sender.transport = httpx.MockTransport(receiver)
        state = sb.credly.state
        template = next(t for t in state.templates.values() if t.state == "active")
        # changed from this (the test's) thread; delivered in the server's loop
        state.update_template(template.id, name=template.name + " (renamed)")
        assert sender.wait_idle(10)
        r = httpx.get(f"{sb.credly.base_url}/organizations/{state.organization_id}/badge_templates/{template.id}",
                      auth=(sb.credly.token, ""))
        assert r.json()["data"]["name"].endswith("(renamed)")
    assert [n["event_type"] for n in seen] == ["badge_template.changed"]


def test_the_sandbox_command_prints_the_connection_json_first_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "sandbox", "--seed", "2", "--latency-ms", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        info = json.loads(first)
        assert set(info) == {"credly", "docebo"}
        assert set(info["credly"]) == {"base_url", "organization_id", "token"}
        if info["docebo"] is not None:
            assert set(info["docebo"]) == {"base_url", "client_id", "client_secret"}
        credly = info["credly"]
        r = httpx.get(f"{credly['base_url']}/organizations/{credly['organization_id']}/badges",
                      auth=(credly["token"], ""))
        assert r.status_code == 200 and r.json()["metadata"]["per"] == 50
        assert "Credly sandbox" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Stopping" in out


def test_the_sandbox_command_reports_a_busy_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "console.cli", "sandbox", "--credly-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == "" and "error" in done.stderr.lower()


def test_sandbox_help():
    done = subprocess.run([sys.executable, "-m", "console.cli", "sandbox", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("--host", "--credly-port", "--docebo-port", "--size", "--seed", "--latency-ms", "--fail-rate",
                 "--rate-limit", "--credly-webhook", "--docebo-webhook"):
        assert flag in done.stdout
