"""`serve` for operators (issue 15 point 3): GET /healthz, /readyz and /metrics.

No secret is needed and none is shown: the bodies carry statuses, counts, ages and the connection
outcomes the console stores (already redacted). /metrics is the Prometheus text format through
prometheus-client: the process's counters (services/core/metrics.py) plus levels read at scrape time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.core import metrics
from services.store import health, inbox
from services.store.db import Store

BudgetSource = Callable[[], Iterable[Any]]  # the install's budgets (objects with .usage())


def database_writable(db_path: Path, *, timeout: float = 2.0) -> str | None:
    """None when a write transaction can start on the (existing) database now, else why not."""
    try:
        conn = sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=rw", uri=True, timeout=timeout)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"the database is not writable: {exc}"
    return None


def _age_seconds(stamp: str | None, now: dt.datetime) -> float | None:
    if not stamp:
        return None
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return max(0.0, (now - moment).total_seconds())


def readiness(db_path: Path) -> dict[str, Any]:
    """Inbox backlog, the oldest queued event's age, and each connection's last real outcome."""
    now = dt.datetime.now(dt.UTC)
    with Store(db_path) as store:
        counts = inbox.counts(store)
        oldest = store.conn.execute("SELECT MIN(received_at) FROM inbox WHERE status = 'queued'").fetchone()[0]
        connections = {name: {"ok": row["ok"], "checked_at": row["checked_at"], "message": row["message"]}
                       for name, row in health.read_health(store).items()}
    return {"inbox_backlog": counts["backlog"], "inbox_failed": counts["failed"],
            "oldest_queued_age_seconds": _age_seconds(oldest, now), "connections": connections}


class LevelsCollector(Collector):
    """Gauges read from the database and the budget files when /metrics is scraped."""

    def __init__(self, db_path: Path, budgets: BudgetSource) -> None:
        self.db_path = db_path
        self.budgets = budgets

    def collect(self) -> Iterable[GaugeMetricFamily]:
        ready = readiness(self.db_path)
        yield GaugeMetricFamily("credly_console_inbox_depth", "Inbox events queued or in hand.",
                                value=ready["inbox_backlog"])
        yield GaugeMetricFamily("credly_console_inbox_oldest_age_seconds", "Age of the oldest queued inbox event.",
                                value=ready["oldest_queued_age_seconds"] or 0.0)
        left = GaugeMetricFamily("credly_console_api_budget_left", "API calls left in the install's window.",
                                 labels=["service"])
        used = GaugeMetricFamily("credly_console_api_budget_used", "API calls used in the window, by caller class.",
                                 labels=["service", "caller_class"])
        for budget in self.budgets():
            usage = budget.usage()
            if usage["left"] is not None:
                left.add_metric([usage["service"]], usage["left"])
            for who, n in usage["by_class"].items():
                used.add_metric([usage["service"], who], n)
        yield left
        yield used
        runs = GaugeMetricFamily("credly_console_last_run_duration_seconds",
                                 "Duration of each flow's last finished run.", labels=["flow", "status"])
        with Store(self.db_path) as store:
            rows = store.conn.execute(
                "SELECT flow, status, started_at, ended_at FROM runs WHERE id IN "
                "(SELECT MAX(id) FROM runs WHERE ended_at IS NOT NULL GROUP BY flow)").fetchall()
        for flow, status, started, ended in rows:
            start, end = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (started, ended))
            runs.add_metric([flow, status], max(0.0, (end - start).total_seconds()))
        yield runs


def ops_routes(db_path: Path, writer: Any, budgets: BudgetSource = lambda: ()) -> list[Route]:
    """The three operator endpoints, mounted by the receiver app ahead of the webhooks."""
    from prometheus_client import CollectorRegistry

    levels = CollectorRegistry()
    levels.register(LevelsCollector(db_path, budgets))

    async def healthz(request: Request) -> JSONResponse:
        problem = None if writer.running else "the inbox writer is stopped"
        problem = problem or await asyncio.to_thread(database_writable, db_path)
        body = {"status": "ok" if problem is None else "failing"}
        if problem:
            body["problem"] = problem
        return JSONResponse(body, status_code=200 if problem is None else 503)

    async def readyz(request: Request) -> JSONResponse:
        try:
            body = await asyncio.to_thread(readiness, db_path)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "not ready", "problem": f"the database cannot be read: {exc}"},
                                status_code=503)
        ready = writer.running
        body = {"status": "ready" if ready else "not ready", **body}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_page(request: Request) -> Response:
        def render() -> bytes:
            return generate_latest(metrics.REGISTRY) + generate_latest(levels)

        return Response(await asyncio.to_thread(render), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"])]


def running_batches(db_path: Path, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each running run with its progress and, once it has progressed, when it will finish at
    its pace so far (a batch's pace is the budget's: its calls wait for the shared budget)."""
    from services.store import runs

    now = now or dt.datetime.now(dt.UTC)
    out = []
    with Store(db_path) as store:
        rows = runs.query_runs(store, status="running", limit=20)
    for row in rows:
        started = dt.datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
        done, total = int(row["progress_done"] or 0), row["progress_total"]
        elapsed = max((now - started).total_seconds(), 1e-3)
        finish = None
        if total and done:
            finish = (now + dt.timedelta(seconds=(int(total) - done) * elapsed / done)).isoformat(timespec="seconds")
        out.append({"run_id": row["id"], "flow": row["flow"], "trigger": row["trigger"], "done": done,
                    "total": total, "started_at": row["started_at"], "estimated_finish": finish})
    return out


def install_status(db_path: Path, budgets: Iterable[Any]) -> dict[str, Any]:
    """What `credly-console status` shows: budgets, inbox and running batches (issue 15)."""
    return {"budgets": [b.usage() for b in budgets], "inbox": readiness(db_path), "running": running_batches(db_path)}
