"""`credly-console serve` as a real process against both sandboxes: killed with SIGKILL while
events are queued and restarted, every acknowledged event is processed and none twice; stopped
with SIGTERM, nothing is lost (W2, W3)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from serve_helpers import (
    SECRET,
    T_SAFETY,
    app_config,
    badges,
    free_port,
    inbox_rows,
    point_webhooks,
    prepare,
    quiet,
    serve_data,
    until,
)

from services.core.config import save_config
from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.serve.receiver import webhook_urls

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

N = 20


class ServeProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self.lines.append(line.decode(errors="replace").rstrip())

    async def wait(self, timeout: float = 30.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(self._reader, 5)
        return code


async def start_serve(env: dict, port: int) -> ServeProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from console.cli import main; main()", "serve", "--port", str(port),
        "--no-scheduler", "--no-mail", "--workers", "4",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    served = ServeProcess(proc)
    await until(lambda: served.lines or proc.returncode is not None, timeout=30, what="serve's first log line")
    assert f"listening on http://127.0.0.1:{port}" in served.lines[0], served.lines
    assert SECRET not in served.lines[0]
    return served


async def setup(sb, db_path) -> tuple[dict, int]:
    await prepare(sb, db_path)
    port = free_port()
    save_config(app_config(sb, port=port))
    env = dict(os.environ)
    env.update(CREDLY_TOKEN=sb.credly.token, DOCEBO_CLIENT_SECRET=sb.docebo.client_secret,
               CREDLY_CONSOLE_WEBHOOK_SECRET=SECRET)
    await point_webhooks(sb, webhook_urls(f"http://127.0.0.1:{port}", SECRET))
    # Slow API calls so that a backlog builds up behind the workers.
    sb.docebo.handles.faults.update(latency_ms=120)
    return env, port


def acknowledged(sb) -> int:
    return sum(1 for d in sb.docebo.handles.webhooks.deliveries if d.delivered)


def docebo_rows(db_path) -> list[dict]:
    return [r for r in inbox_rows(db_path) if r["source"] == "docebo"]


EXPECTED = sorted((f"learner{u}@example.com", T_SAFETY) for u in range(1, N + 1))


async def complete_all(sb) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        r = await client.post(f"{sb.docebo.base_url}/_sandbox/learner/complete",
                              json={"completions": [{"course_id": 101, "user_id": u} for u in range(1, N + 1)]})
        r.raise_for_status()


async def test_sigkill_with_events_queued_then_restart_processes_every_acknowledged_event_once(tmp_path):
    db_path = os.environ["CREDLY_CONSOLE_DB"]
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        env, port = await setup(sb, db_path)
        first = await start_serve(env, port)
        await complete_all(sb)
        await until(lambda: acknowledged(sb) == N, what="every delivery acknowledged")
        # Kill it mid-stream: some events done, some in hand, the rest queued.
        await until(lambda: any(r["status"] == "done" for r in docebo_rows(db_path)), what="a first event done")
        pending = [r for r in docebo_rows(db_path) if r["status"] != "done"]
        assert len(docebo_rows(db_path)) == N and pending, "the backlog was empty before the kill"
        first.proc.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        left = [r for r in docebo_rows(db_path) if r["status"] != "done"]
        assert left, "nothing was left to do after the kill"

        sb.docebo.handles.faults.update(latency_ms=0)
        second = await start_serve(env, port)
        try:
            await until(lambda: badges(sb) == EXPECTED, timeout=40, what="a badge for every completion")
            await until(lambda: quiet(sb, db_path), timeout=40, what="everything processed")
        finally:
            second.proc.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
        assert badges(sb) == EXPECTED  # every acknowledged event processed, none twice
        rows = docebo_rows(db_path)
        assert len(rows) == N and all(r["status"] == "done" for r in rows)


async def test_sigterm_stops_cleanly_and_loses_nothing(tmp_path):
    db_path = os.environ["CREDLY_CONSOLE_DB"]
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        env, port = await setup(sb, db_path)
        first = await start_serve(env, port)
        await complete_all(sb)
        await until(lambda: acknowledged(sb) == N, what="every delivery acknowledged")
        first.proc.send_signal(signal.SIGTERM)
        assert await first.wait(timeout=30) == 0
        assert any("SIGTERM received" in line for line in first.lines)
        assert any("stopped; inbox backlog" in line for line in first.lines)
        rows = docebo_rows(db_path)
        assert len(rows) == N
        assert all(r["status"] in ("done", "queued") for r in rows)  # nothing left half-taken
        assert all(r["lease_owner"] == "" for r in rows)
        done_before = sum(r["status"] == "done" for r in rows)
        assert len(badges(sb)) == done_before

        sb.docebo.handles.faults.update(latency_ms=0)
        second = await start_serve(env, port)
        try:
            await until(lambda: badges(sb) == EXPECTED, timeout=40, what="a badge for every completion")
            await until(lambda: quiet(sb, db_path), timeout=40)
        finally:
            second.proc.send_signal(signal.SIGINT)
            assert await second.wait() == 0
        assert badges(sb) == EXPECTED
