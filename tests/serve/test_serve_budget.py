"""One API budget per install with real-time first (issue 15 acceptance): `serve` with events
flowing and a CLI batch (`sync credly-to-docebo --full`, F6) as two real processes against the
Docebo sandbox rate-limited at exactly the product's configured limit: no 429 over the run, and
every event processed while the batch still runs. The hour is shortened on both sides
(`[docebo] rate_limit_window_seconds`, the sandbox's window) so the run takes seconds."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import sys

import httpx
import pytest
from serve_helpers import SECRET, T_IMPORT, app_config, badges, free_port, point_webhooks, prepare, serve_data, until
from test_serve_process import ServeProcess

from services.core.config import save_config
from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.serve.receiver import webhook_urls
from services.store.db import Store

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

LIMIT, WINDOW_S, BURST = 40, 4, 4  # 40 calls per 4 s "hour": 9 calls/s after the burst
N_BADGES, N_EVENTS = 40, 5


def imported_badges() -> list[dict]:
    return [{"id": f"00000000-0000-4000-8000-{i:012d}", "badge_template_id": T_IMPORT,
             "recipient_email": f"learner{i}@example.com", "issued_to_first_name": f"First{i}",
             "issued_to_last_name": f"Last{i}", "issued_at": "2026-01-02T03:04:05.000Z", "expires_at": None,
             "state": "accepted", "issuer_earner_id": None} for i in range(1, N_BADGES + 1)]


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_events_go_ahead_of_a_cli_batch_within_one_shared_budget(tmp_path):
    db_path = os.environ["CREDLY_CONSOLE_DB"]
    async with run_sandboxes(SandboxOptions(data=serve_data(badges=imported_badges()))) as sb:
        await prepare(sb, db_path)
        port = free_port()
        config = app_config(sb, port=port)
        config = dataclasses.replace(config, docebo=dataclasses.replace(
            config.docebo, rate_limit_per_hour=LIMIT, burst=BURST, rate_limit_window_seconds=WINDOW_S))
        save_config(config)
        env = dict(os.environ, CREDLY_TOKEN=sb.credly.token, DOCEBO_CLIENT_SECRET=sb.docebo.client_secret,
                   CREDLY_CONSOLE_WEBHOOK_SECRET=SECRET)
        await point_webhooks(sb, webhook_urls(f"http://127.0.0.1:{port}", SECRET))
        async with httpx.AsyncClient() as client:
            r = await client.put(f"{sb.docebo.base_url}/_sandbox/rate-limit", json={"per_hour": LIMIT})
            r.raise_for_status()
        sb.docebo.handles.faults.update(rate_window_s=WINDOW_S)  # the same shortened hour
        sb.docebo.handles.calls.reset()

        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from console.cli import main; main()", "serve", "--port", str(port),
            "--no-scheduler", "--no-mail", "--workers", "2",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        served = ServeProcess(serve)
        batch = None
        try:
            await until(lambda: served.lines or serve.returncode is not None, timeout=30, what="serve listening")
            batch = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from console.cli import main; main()", "sync", "credly-to-docebo", "--full",
                "--json", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

            def batch_running() -> bool:
                with Store(db_path) as store:
                    row = store.conn.execute("SELECT progress_done FROM runs WHERE flow = 'credly_to_docebo' "
                                             "AND status = 'running'").fetchone()
                return bool(row and row[0] >= 3)

            await until(batch_running, timeout=30, what="the batch under way")
            async with httpx.AsyncClient() as client:
                for user in range(1, N_EVENTS + 1):  # a steady stream while the batch runs
                    r = await client.post(f"{sb.docebo.base_url}/_sandbox/learner/complete",
                                          json={"course_id": 101, "user_id": user})
                    r.raise_for_status()
                    await asyncio.sleep(0.3)

            def events_done() -> bool:
                with Store(db_path) as store:
                    return store.conn.execute("SELECT COUNT(*) FROM inbox WHERE source = 'docebo' "
                                              "AND status = 'done'").fetchone()[0] == N_EVENTS

            await until(events_done, timeout=60, what="every event processed")
            out, err = await asyncio.wait_for(batch.communicate(), 120)
            assert batch.returncode == 0, err.decode()
        finally:
            if batch is not None and batch.returncode is None:
                batch.kill()
            serve.send_signal(signal.SIGTERM)
            assert await served.wait(timeout=30) == 0

        statuses = sb.docebo.handles.calls.statuses()
        assert not any(429 in per for per in statuses.values()), statuses
        assert len([b for b in badges(sb) if b[0].startswith("learner")]) >= N_EVENTS

    with Store(db_path) as store:
        run = store.conn.execute("SELECT started_at, ended_at, status FROM runs WHERE flow = 'credly_to_docebo' "
                                 "AND trigger = 'cli' ORDER BY id DESC").fetchone()
        events = store.conn.execute("SELECT received_at, processed_at FROM inbox WHERE source = 'docebo'").fetchall()
    assert run[2] == "succeeded"
    batch_end = stamp(run[1])
    times = sorted((stamp(done) - stamp(got)).total_seconds() for got, done in events)
    assert all(stamp(done) < batch_end for _, done in events), (events, run)
    print(f"batch {(batch_end - stamp(run[0])).total_seconds():.1f} s; event time-to-done (s): "
          + ", ".join(f"{t:.2f}" for t in times))
