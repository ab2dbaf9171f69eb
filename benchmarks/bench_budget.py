"""One API budget per install, real-time first (issue 15): measured, never asserted.

A Docebo sandbox rate-limited at 600 calls per "hour" shortened to WINDOW_S seconds (both the
sandbox and `[docebo] rate_limit_window_seconds`), `serve` as a real process receiving a steady
stream of course completions, first alone, then while a CLI `sync credly-to-docebo --full` (F6)
runs as a second process. Reports p95 event time-to-done with and without the batch, calls in
every window against the limit (used share, maximum), 429s, and the budget's cost per call.

    .venv/bin/python benchmarks/bench_budget.py [--json]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "serve")]

LIMIT, WINDOW_S, BURST = 600, 20, 20
N_USERS, N_BADGES = 1000, 900
EVENT_EVERY_S, N_EVENTS = 1.0, 15
CLI = [sys.executable, "-c", "from console.cli import main; main()"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def budget_cost_us(tmp: Path, n: int = 5000) -> float:
    from services.clients.budget import SharedBudget, caller_class

    budget = SharedBudget(tmp / "cost.docebo-budget", limit=10**9, window=3600.0, burst=10**6)

    async def go() -> float:
        with caller_class("realtime"):
            started = time.perf_counter()
            for _ in range(n):
                await budget.acquire()
            return (time.perf_counter() - started) / n * 1e6

    return asyncio.run(go())


async def stream(sb, db_path: Path, users: range) -> list[float]:
    """Post one completion every EVENT_EVERY_S; time-to-done per event from its inbox row."""
    import httpx
    from serve_helpers import until

    from services.store.db import Store

    def rows(after: int) -> list:
        with Store(db_path) as store:
            return store.conn.execute("SELECT received_at, processed_at, status FROM inbox "
                                      "WHERE source = 'docebo' AND id > ?", (after,)).fetchall()

    with Store(db_path) as store:
        first = store.conn.execute("SELECT COALESCE(MAX(id), 0) FROM inbox").fetchone()[0]
    async with httpx.AsyncClient() as client:
        for user in users:
            r = await client.post(f"{sb.docebo.base_url}/_sandbox/learner/complete", json={"course_id": 101, "user_id": user})
            r.raise_for_status()
            await asyncio.sleep(EVENT_EVERY_S)
    await until(lambda: sum(1 for r in rows(first) if r[2] == "done") >= len(users), timeout=120, what="events done")
    return [(stamp(r[1]) - stamp(r[0])).total_seconds() for r in rows(first) if r[2] == "done"]


async def main() -> dict:
    from serve_helpers import SECRET, T_IMPORT, app_config, free_port, point_webhooks, prepare, serve_data

    from services.core.config import save_config
    from services.sandbox.runner import SandboxOptions, run_sandboxes
    from services.serve.receiver import webhook_urls
    from services.store.db import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    os.environ["CREDLY_CONSOLE_CONFIG"] = str(tmp / "config.toml")
    os.environ["CREDLY_CONSOLE_DB"] = db_path = str(tmp / "credly-console.db")
    users = [{"user_id": i, "username": f"u{i}", "first_name": f"First{i}", "last_name": f"Last{i}",
              "email": f"learner{i}@example.com"} for i in range(1, N_USERS + 1)]
    imported = [{"id": f"00000000-0000-4000-8000-{i:012d}", "badge_template_id": T_IMPORT,
                 "recipient_email": f"learner{i}@example.com", "issued_to_first_name": f"First{i}",
                 "issued_to_last_name": f"Last{i}", "issued_at": "2026-01-02T03:04:05.000Z", "expires_at": None,
                 "state": "accepted", "issuer_earner_id": None} for i in range(1, N_BADGES + 1)]
    async with run_sandboxes(SandboxOptions(data=serve_data(users=users, badges=imported))) as sb:
        await prepare(sb, db_path)
        port = free_port()
        config = app_config(sb, port=port)
        save_config(dataclasses.replace(config, docebo=dataclasses.replace(
            config.docebo, rate_limit_per_hour=LIMIT, burst=BURST, rate_limit_window_seconds=WINDOW_S)))
        env = dict(os.environ, CREDLY_TOKEN=sb.credly.token, DOCEBO_CLIENT_SECRET=sb.docebo.client_secret,
                   CREDLY_CONSOLE_WEBHOOK_SECRET=SECRET)
        await point_webhooks(sb, webhook_urls(f"http://127.0.0.1:{port}", SECRET))
        import httpx

        async with httpx.AsyncClient() as client:
            (await client.put(f"{sb.docebo.base_url}/_sandbox/rate-limit", json={"per_hour": LIMIT})).raise_for_status()
        faults = sb.docebo.handles.faults
        faults.update(rate_window_s=WINDOW_S)
        calls: list[float] = []
        decide = faults.decide

        def recording(route: str):
            calls.append(time.monotonic())
            return decide(route)

        faults.decide = recording  # the benchmark's probe: when each Docebo call arrived
        sb.docebo.handles.calls.reset()

        serve = await asyncio.create_subprocess_exec(*CLI, "serve", "--port", str(port), "--no-scheduler", "--no-mail",
                                                     env=env, stdout=asyncio.subprocess.DEVNULL,
                                                     stderr=asyncio.subprocess.DEVNULL)
        try:
            await asyncio.sleep(2.0)
            alone = await stream(sb, Path(db_path), range(1, N_EVENTS + 1))
            batch_start = time.monotonic()
            batch = await asyncio.create_subprocess_exec(*CLI, "sync", "credly-to-docebo", "--full", "--json", env=env,
                                                         stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(3.0)
            during = await stream(sb, Path(db_path), range(N_EVENTS + 1, 2 * N_EVENTS + 1))
            batch_running_after_events = batch.returncode is None
            await asyncio.wait_for(batch.wait(), 600)
            batch_end = time.monotonic()
        finally:
            serve.send_signal(signal.SIGTERM)
            await serve.wait()
        with Store(db_path) as store:
            run = store.conn.execute("SELECT status, progress_done FROM runs WHERE flow = 'credly_to_docebo' "
                                     "AND trigger = 'cli' ORDER BY id DESC").fetchone()
        statuses = sb.docebo.handles.calls.statuses()

    in_batch = [t for t in calls if batch_start <= t <= batch_end]
    windows = []  # full windows inside the batch, one per second of start
    t = batch_start + 1.0
    while t + WINDOW_S <= batch_end - 1.0:
        windows.append(sum(1 for c in in_batch if t <= c < t + WINDOW_S))
        t += 1.0
    sliding_max = max(sum(1 for c in calls if s <= c < s + WINDOW_S) for s in calls) if calls else 0
    return {
        "limit": LIMIT, "window_s": WINDOW_S, "burst": BURST, "badges": N_BADGES,
        "batch_status": run[0] if run else None, "batch_items": run[1] if run else None,
        "batch_seconds": round(batch_end - batch_start, 1),
        "batch_running_after_events": batch_running_after_events,
        "events_alone_p95_s": round(p95(alone), 3), "events_with_batch_p95_s": round(p95(during), 3),
        "events_alone_median_s": round(statistics.median(alone), 3),
        "events_with_batch_median_s": round(statistics.median(during), 3),
        "docebo_calls": len(calls), "max_calls_in_any_window": sliding_max,
        "used_share_min_full_window": round(min(windows) / LIMIT, 3) if windows else None,
        "used_share_mean_full_window": round(statistics.mean(windows) / LIMIT, 3) if windows else None,
        "http_429": sum(per.get(429, 0) for per in statuses.values()),
    }


if __name__ == "__main__":
    result = asyncio.run(main())
    result["budget_cost_us_per_call"] = round(budget_cost_us(Path(tempfile.mkdtemp(prefix="bench-budget-cost-"))), 1)
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
