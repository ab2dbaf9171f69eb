"""`credly-console status [--json]` (issue 15 point 1): the install's Docebo budget as every
process on the database shares it, by caller class, the inbox and the running batches."""

from __future__ import annotations

import asyncio
import json
import os

from click.testing import CliRunner

from console.cli import cli
from services.clients.budget import caller_class
from services.clients.factory import docebo_budget, reset_shared_limiters
from services.core.config import AppConfig, DoceboConfig, database_path, save_config
from services.store.db import Store, utcnow


def test_status_shows_the_shared_budget_by_class_and_a_running_batch():
    config = AppConfig(docebo=DoceboConfig(base_url="https://tenant.example.com", client_id="c",
                                           rate_limit_per_hour=1000, burst=20))
    save_config(config)
    with Store(database_path()) as store:  # a batch half done after 60 s: done in about 60 s more
        store.conn.execute("INSERT INTO runs (flow, trigger, status, started_at, progress_done, progress_total, pid) "
                           "VALUES ('credly_to_docebo', 'cli', 'running', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
                           "'-60 seconds'), 50, 100, ?)", (os.getppid(),))  # a live process other than this one
        store.conn.commit()
    budget = docebo_budget(config, database_path())  # what another process on this install would use

    async def use() -> None:
        for _ in range(3):
            await budget.acquire()
        with caller_class("realtime"):
            await budget.acquire()
        with caller_class("console"):
            await budget.acquire()

    asyncio.run(use())
    reset_shared_limiters()

    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (docebo,) = data["budgets"]
    assert docebo["used"] == 5 and docebo["left"] == 995 and docebo["limit"] == 1000
    assert docebo["by_class"] == {"realtime": 1, "console": 1, "batch": 3}
    (run,) = data["running"]
    assert run["flow"] == "credly_to_docebo" and run["done"] == 50 and run["total"] == 100
    assert run["estimated_finish"] > utcnow()[:19]

    text = runner.invoke(cli, ["status"], catch_exceptions=False).output
    assert "Docebo budget: 5 of 1,000 calls used in the last hour, 995 left" in text
    assert "used by real-time 1, batch 3, console 1" in text
    assert "Running: run 1 credly_to_docebo (cli) 50/100, finishes about" in text


def test_status_shows_credly_unlimited_but_counted():
    from services.clients.factory import credly_budget
    from services.core.config import CredlyConfig

    config = AppConfig(credly=CredlyConfig(organization_id="org"))
    save_config(config)
    Store(database_path()).close()
    budget = credly_budget(config, database_path())
    with caller_class("realtime"):
        asyncio.run(budget.acquire())
    reset_shared_limiters()
    text = CliRunner().invoke(cli, ["status"], catch_exceptions=False).output
    assert "API budget" not in text  # no Docebo connection: only Credly is listed
    assert "Credly budget: no limit; 1 calls in the last 60 s" in text
    assert "used by real-time 1, batch 0, console 0\n" in text


def test_status_without_a_database_says_so():
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2 and "there is no database" in result.output


def test_new_config_keys_are_checked(tmp_path):
    import pytest

    from services.core.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[docebo]\nbatch_share_percent = 80\nrate_limit_window_seconds = 60\n"
                    "[server]\nrun_log_retention_days = 0\n")
    config = load_config(path)
    assert (config.docebo.batch_share_percent, config.docebo.rate_limit_window_seconds) == (80, 60)
    assert config.server.run_log_retention_days == 0
    for text, key in (("[docebo]\nbatch_share_percent = 5\n", "batch_share_percent"),
                      ("[docebo]\nrate_limit_window_seconds = 0\n", "rate_limit_window_seconds"),
                      ("[server]\nrun_log_retention_days = -1\n", "run_log_retention_days")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=key):
            load_config(path)
