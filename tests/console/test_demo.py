"""`credly-console demo` as the console sees it: the demo tests both connections at start (in the
background), so the dashboard shows their health instead of "not tested yet"."""

from __future__ import annotations

import asyncio

from console.cli.demo import demo_context
from services.demo import DemoEnvironment, DemoOptions
from services.store.db import Store
from services.store.health import read_health
from tests.console.conftest import SIZE, make_app, screen_text, settle


async def test_the_demo_records_both_connections_health_and_the_dashboard_shows_it(tmp_path):
    options = DemoOptions(activity=False, scheduler=False, workers=1, data_dir=tmp_path / "demo")
    async with DemoEnvironment(options) as env:
        assert await asyncio.to_thread(env.connections_checked.wait, 30)
        with Store(env.db_path) as store:
            health = read_health(store)
        assert set(health) == {"credly", "docebo"}
        assert health["credly"]["ok"] and health["docebo"]["ok"], health
        assert any(line.text.startswith("connections tested: Credly ok, Docebo ok") for line in env.activity)

        app = make_app(demo_context(env), "dashboard")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            text = screen_text(app)
        assert text.count("✔ ok") == 2 and "not tested yet" not in text
        with Store(env.db_path) as store:
            assert read_health(store) == health  # tested less than an hour ago: the console made no call
