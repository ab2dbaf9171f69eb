"""`serve` for operators through a real receiver on loopback (issue 15 point 3): /healthz,
/readyz and /metrics against the sandboxes, events flowing; no secret needed, none shown."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_helpers import SECRET, app_config, badges, point_webhooks, prepare, quiet, secrets_for, serve_data, until
from test_serve_e2e import control

from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.serve.service import ServeOptions, ServeRuntime

pytestmark = pytest.mark.e2e


async def test_healthz_readyz_and_metrics_on_a_running_serve(tmp_path):
    from services.core.metrics import REGISTRY

    refused = {"source": "docebo", "outcome": "refused", "reason": "wrong_secret"}
    # The counters are the process's: other tests in this worker may have counted before.
    refused_before = REGISTRY.get_sample_value("credly_console_webhook_deliveries_total", refused) or 0.0
    db_path = tmp_path / "serve.db"
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        await prepare(sb, db_path)
        options = ServeOptions(port=0, scheduler=False, mail=False, workers=2, poll_s=0.05, grace_s=2)
        async with ServeRuntime(app_config(sb), secrets_for(sb), db_path, options) as rt:
            await point_webhooks(sb, rt.urls)
            await control(sb, "docebo", "POST", "/learner/complete", {"course_id": 101, "user_id": 7})
            await until(lambda: len(badges(sb)) == 1, what="the badge")
            await until(lambda: quiet(sb, db_path), what="all delivered and processed")
            async with httpx.AsyncClient(base_url=rt.base_url) as client:
                await client.post("/webhooks/docebo/not-the-secret", json={})  # one refusal to count
                health = await client.get("/healthz")
                ready = await client.get("/readyz")
                page = await client.get("/metrics")

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["inbox_backlog"] == 0 and body["oldest_queued_age_seconds"] is None
    for response in (health, ready, page):
        assert SECRET not in response.text and sb.docebo.client_secret not in response.text

    assert page.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(page.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("credly_console_webhook_deliveries_total", source="docebo", outcome="accepted", reason="") >= 1
    assert value("credly_console_webhook_deliveries_total", **refused) == refused_before + 1
    assert sum(v for (n, labels), v in samples.items()
               if n == "credly_console_events_processed_total" and ("outcome", "done") in labels) >= 1
    assert sum(v for (n, labels), v in samples.items()
               if n == "credly_console_api_calls_total" and ("service", "Docebo") in labels) >= 1
    assert value("credly_console_inbox_depth") == 0
    assert "credly_console_api_budget_left" in families
    # serve's events were real-time calls on the install's budget (prepare() used its own clients)
    assert value("credly_console_api_budget_used", service="Docebo", caller_class="realtime") >= 2
    assert value("credly_console_api_budget_used", service="Docebo", caller_class="batch") == 0
    for name in families:  # Prometheus conventions: counters end in _total, durations in _seconds
        if families[name].type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in families[name].samples)


def test_healthz_fails_when_the_database_cannot_be_written(tmp_path):
    import sqlite3

    from services.serve.ops import database_writable

    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    assert database_writable(db) is None
    assert database_writable(tmp_path / "missing.db").startswith("the database is not writable")
    assert not (tmp_path / "missing.db").exists()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        assert "locked" in database_writable(db, timeout=0.05)
    finally:
        holder.close()
