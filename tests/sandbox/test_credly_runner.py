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
