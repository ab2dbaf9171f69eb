"""The demo environment (issue 7): sandboxes + serve + simulated activity on loopback, with a
separate database and in-memory secrets; live events flow through F1-F5."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import until

from services.core.secrets import MemorySecrets
from services.demo import DemoEnvironment, DemoOptions
from services.store.db import Store

pytestmark = pytest.mark.e2e


def flow_counts(db_path) -> dict[str, dict[str, int]]:
    with Store(db_path) as store:
        rows = store.conn.execute(
            "SELECT flow, COUNT(*), SUM(issued), SUM(created), SUM(failed) FROM runs GROUP BY flow").fetchall()
    return {flow: {"runs": n, "issued": issued or 0, "created": created or 0, "failed": failed or 0}
            for flow, n, issued, created, failed in rows}


async def test_live_events_flow_through_the_demo(tmp_path):
    async with DemoEnvironment(DemoOptions(interval_s=0.15, seed=3, data_dir=tmp_path / "demo")) as env:
        assert isinstance(env.secrets, MemorySecrets)
        assert Path(env.db_path) != Path(os.environ["CREDLY_CONSOLE_DB"])
        assert env.config.server.port == env.runtime.port and env.urls["docebo"].startswith("http://127.0.0.1:")

        def lively():
            c = flow_counts(env.db_path)
            return (
                c.get("templates", {}).get("runs")  # F1 at start
                and c.get("dropdown", {}).get("runs")  # F2 right after
                and c.get("course_completion", {}).get("issued")  # F3: a completion became a badge
                and c.get("badge_event", {}).get("created")  # F5: a hand-issued badge became a Docebo object
                and env.actions["assign"]  # templates assigned to courses through the dropdown
            )

        await until(lively, timeout=60, interval=0.1, what="live events through F1, F2, F3 and F5")
        with Store(env.db_path) as store:
            statuses = dict(store.conn.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall())
        assert statuses.get("done", 0) > 0 and statuses.get("failed", 0) == 0
        assert sum(flow["failed"] for flow in flow_counts(env.db_path).values()) == 0
        # the clients the console would use work against the sandboxes
        client = env.credly_client()
        try:
            assert (await client.test_connection()).ok
        finally:
            await client.aclose()
        assert any(line.kind == "completion" for line in env.activity)
    assert not Path(os.environ["CREDLY_CONSOLE_DB"]).exists()  # the user's database was never touched


def test_headless_demo_cli_logs_activity_and_status(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from console.cli import main; main()", "demo", "--headless", "--interval", "0.2",
         "--duration", "3", "--status-every", "1"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("demo: receiver http://127.0.0.1:")
    assert any("completion" in line or "badge" in line or "award" in line for line in lines)
    assert lines[-1].startswith("status: inbox done ")
    assert not Path(os.environ["CREDLY_CONSOLE_DB"]).exists()
