"""`serve` for operators as real processes (issue 15 point 3): JSON log lines, `backup` while
`serve` writes (the copy opens and passes PRAGMA integrity_check), `restore` refused while the
database is in use and done once `serve` stopped; run log retention."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from serve_helpers import badges, serve_data, until
from test_serve_process import EXPECTED, N, ServeProcess, acknowledged, complete_all, setup

from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.store.db import Store

pytestmark = [pytest.mark.e2e, pytest.mark.serial]


async def cli(env: dict, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from console.cli import main; main()", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


async def test_backup_while_serve_writes_then_restore_only_once_stopped(tmp_path):
    db_path = os.environ["CREDLY_CONSOLE_DB"]
    async with run_sandboxes(SandboxOptions(data=serve_data())) as sb:
        env, port = await setup(sb, db_path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from console.cli import main; main()", "serve", "--port", str(port),
            "--no-scheduler", "--no-mail", "--workers", "4", "--log-format", "json",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        served = ServeProcess(proc)
        await until(lambda: served.lines or proc.returncode is not None, timeout=30, what="serve's first log line")
        first = json.loads(served.lines[0])
        assert first["level"] == "info" and f"listening on http://127.0.0.1:{port}" in first["message"]
        assert set(first) == {"time", "level", "logger", "message"}

        await complete_all(sb)
        copies = []
        try:
            # Back up while deliveries are stored and events processed (serve writing).
            while len(copies) < 3 or not badges(sb) == EXPECTED:
                target = tmp_path / f"copy{len(copies)}.db"
                code, out, err = await cli(env, "backup", str(target))
                assert code == 0, err
                assert "integrity ok" in out
                copies.append(target)
                if len(copies) > 40:
                    break
            assert acknowledged(sb) == N
            code, _, err = await cli(env, "restore", str(copies[0]))
            assert code == 2 and "is in use by another process" in err and "stop it first" in err
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await served.wait(timeout=30) == 0
        assert all(json.loads(line) for line in served.lines)  # every line is JSON

    for copy in copies:
        assert integrity(copy) == "ok"
        with Store(copy) as store:  # opens as a credly-console database
            assert store.conn.execute("SELECT COUNT(*) FROM inbox WHERE source = 'docebo'").fetchone()[0] <= N
    code, _, err = await cli(env, "backup", str(copies[0]))
    assert code == 2 and "already exists" in err

    code, out, err = await cli(env, "restore", str(copies[0]))
    assert code == 0, err
    assert "the previous database is kept as" in out
    kept = Path(out.rsplit("kept as ", 1)[1].strip())
    assert integrity(kept) == "ok" and integrity(Path(db_path)) == "ok"

    (tmp_path / "junk.db").write_text("not a database")
    code, _, err = await cli(env, "restore", str(tmp_path / "junk.db"))
    assert code == 2 and "not a readable SQLite database" in err


def test_run_log_retention_deletes_old_lines_and_keeps_run_summaries(tmp_path):
    from services.store.retention import prune_run_logs

    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    with Store(tmp_path / "r.db") as store:
        for run_id, ended in ((1, "2026-08-01T00:00:00.000Z"), (2, "2026-12-01T00:00:00.000Z"), (3, None)):
            store.conn.execute("INSERT INTO runs (id, flow, trigger, status, started_at, ended_at) "
                               "VALUES (?, 'templates', 'cli', ?, '2026-08-01T00:00:00.000Z', ?)",
                               (run_id, "succeeded" if ended else "running", ended))
            for _ in range(3):
                store.conn.execute("INSERT INTO run_log (run_id, at, level, message) VALUES (?, ?, 'info', 'x')",
                                   (run_id, "2026-08-01T00:00:00.000Z"))
        store.conn.commit()
        assert prune_run_logs(store, older_than_days=0, now=now) == 0
        assert prune_run_logs(store, older_than_days=90, now=now) == 3
        left = store.conn.execute("SELECT run_id, COUNT(*) FROM run_log GROUP BY run_id").fetchall()
        assert left == [(2, 3), (3, 3)]
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
