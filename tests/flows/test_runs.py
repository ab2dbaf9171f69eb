"""Run lifecycle, batched log lines, progress coalescing, cancellation, locks (SPEC §2, W4)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.store import notifications, runs
from services.store.runs import Callbacks, FlowBusyError, RunRecorder


def test_run_lifecycle_writes_row_counts_and_end_status(store):
    rec = RunRecorder.start(store, "templates", trigger="test")
    row = runs.get_run(store, rec.id)
    assert row["status"] == "running" and row["pid"] == os.getpid()
    rec.count("examined", 3)
    rec.count("issued")
    summary = rec.finish("succeeded")
    row = runs.get_run(store, rec.id)
    assert row["status"] == "succeeded" and row["ended_at"]
    assert row["examined"] == 3 and row["issued"] == 1
    assert summary.counts["examined"] == 3 and summary.status == "succeeded"
    with pytest.raises(KeyError):
        rec.count("bogus")


def test_log_lines_are_written_in_batches_not_per_line(store, monkeypatch):
    monkeypatch.setattr(runs, "FLUSH_SECONDS", 3600)
    commits = []
    orig = runs.RunRecorder.flush

    def counting_flush(self):
        commits.append(len(self._buffer))
        orig(self)

    monkeypatch.setattr(runs.RunRecorder, "flush", counting_flush)
    rec = RunRecorder.start(store, "templates", trigger="test")
    for i in range(runs.FLUSH_LINES * 2 + 5):
        rec.info(f"line {i}")
    assert runs.count_run_log(store, rec.id) == runs.FLUSH_LINES * 2
    rec.finish("succeeded")
    assert runs.count_run_log(store, rec.id) == runs.FLUSH_LINES * 2 + 5
    assert commits == [runs.FLUSH_LINES, runs.FLUSH_LINES, 5]


def test_action_lines_form_the_plan_and_failures_filter(store):
    seen = []
    rec = RunRecorder.start(store, "docebo_to_credly", trigger="test", dry_run=True, callbacks=Callbacks(on_log=seen.append))
    rec.info("reading courses")
    rec.action("issue_badge", "a@x.com / T1", "would issue T1 to a@x.com")
    rec.error("could not read user 7", object="user 7")
    rec.action("revoke_badge", "b@x.com / T2", "would revoke")
    s = rec.finish("succeeded")
    assert [a["action"] for a in s.actions] == ["issue_badge", "revoke_badge"]
    assert [a["action"] for a in runs.run_actions(store, rec.id)] == ["issue_badge", "revoke_badge"]
    fails = runs.query_run_log(store, rec.id, failures_only=True)
    assert [f["message"] for f in fails] == ["could not read user 7"]
    assert runs.count_run_log(store, rec.id, actions_only=True) == 2
    assert len(seen) == 4 and seen[1].action == "issue_badge"
    assert runs.get_run(store, rec.id)["dry_run"] == 1


def test_progress_is_coalesced_but_final_value_always_sent(store, monkeypatch):
    monkeypatch.setattr(runs, "PROGRESS_INTERVAL", 3600)
    calls = []
    rec = RunRecorder.start(
        store, "templates", trigger="test", callbacks=Callbacks(on_progress=lambda d, t: calls.append((d, t)))
    )
    rec.set_total(1000)
    for _ in range(1000):
        rec.advance()
    rec.finish("succeeded")
    assert calls[0] == (0, 1000) and calls[-1] == (1000, 1000)
    assert len(calls) <= 3
    row = runs.get_run(store, rec.id)
    assert (row["progress_done"], row["progress_total"]) == (1000, 1000)


def test_cancellation_is_sticky(store):
    flags = iter([False, True, False])
    rec = RunRecorder.start(store, "templates", trigger="test", callbacks=Callbacks(should_cancel=lambda: next(flags)))
    rec.check_cancel()
    with pytest.raises(runs.Cancelled):
        rec.check_cancel()
    assert rec.cancel_requested()
    assert rec.finish("cancelled").status == "cancelled"


def test_running_row_of_a_dead_process_becomes_interrupted(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with store.write():
        store.db.execute(
            "INSERT INTO runs (flow, trigger, status, started_at, pid) VALUES ('docebo_to_credly', 'cli', 'running', "
            "'2024-01-01T00:00:00Z', ?)",
            (proc.pid,),
        )
        run_id = store.db.execute("SELECT max(id) FROM runs").fetchone()[0]
    notifications.notify_error(store, "boom", run_id=run_id, in_digest=True)
    assert runs.get_run(store, run_id)["status"] == "interrupted"
    digests = notifications.list_notifications(store, kind="digest")
    assert len(digests) == 1 and digests[0]["run_id"] == run_id


def test_our_own_live_run_is_not_reaped(store):
    rec = RunRecorder.start(store, "templates", trigger="test")
    assert runs.reap_interrupted(store) == []
    rec.finish("succeeded")


def test_flow_lock_refuses_second_holder_and_takes_over_stale(store, tmp_path):
    rec = RunRecorder.start(store, "dropdown", trigger="test")
    runs.acquire_lock(store, "dropdown", rec.id)
    with pytest.raises(FlowBusyError):
        runs.acquire_lock(store, "dropdown", 999)
    assert runs.lock_holder(store, "dropdown")["run_id"] == rec.id
    runs.release_lock(store, "dropdown", rec.id)
    assert runs.lock_holder(store, "dropdown") is None
    # A lock row left by a dead process is stale.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with store.write():
        store.db.execute("INSERT INTO flow_locks (flow, run_id, pid, acquired_at) VALUES ('dropdown', 5, ?, 'x')", (proc.pid,))
    runs.acquire_lock(store, "dropdown", rec.id)
    assert runs.lock_holder(store, "dropdown")["run_id"] == rec.id
    runs.release_lock(store, "dropdown", rec.id)
    rec.finish("succeeded")


def test_lock_held_by_another_live_process_is_refused(store):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with store.write():
            store.db.execute("INSERT INTO flow_locks (flow, run_id, pid, acquired_at) VALUES ('all', 5, ?, 'x')", (proc.pid,))
        with pytest.raises(FlowBusyError, match="already running"):
            runs.acquire_lock(store, "all", 6)
    finally:
        proc.kill()
        proc.wait()


def test_paged_run_queries(store):
    ids = []
    for i in range(5):
        r = RunRecorder.start(store, "templates" if i % 2 else "dropdown", trigger="test")
        r.finish("succeeded" if i < 4 else "failed", reason="x" if i == 4 else "")
        ids.append(r.id)
    assert [r["id"] for r in runs.query_runs(store, limit=2)] == [ids[4], ids[3]]
    assert [r["id"] for r in runs.query_runs(store, limit=2, offset=2)] == [ids[2], ids[1]]
    assert runs.count_runs(store, flow="dropdown") == 3
    assert runs.count_runs(store, status="failed") == 1
    assert runs.last_run(store, "templates")["id"] == ids[3]


def test_history_leaves_out_automatic_triggers_and_finds_a_runs_page(store):
    ids = {}
    for n, trigger in enumerate(["console", "webhook", "cli", "schedule", "webhook", "console"]):
        ids[n] = RunRecorder.start(store, "dropdown", trigger=trigger).id
    hidden = runs.AUTOMATIC_TRIGGERS
    assert [r["id"] for r in runs.query_runs(store, exclude_triggers=hidden)] == [ids[5], ids[2], ids[0]]
    assert runs.count_runs(store, exclude_triggers=hidden) == 3 and runs.count_runs(store) == 6
    # newest first: run 0 is third of the filtered list, sixth of all; a hidden run has no place
    assert runs.run_position(store, ids[0], exclude_triggers=hidden) == 2
    assert runs.run_position(store, ids[0]) == 5
    assert runs.run_position(store, ids[1], exclude_triggers=hidden) is None
    assert runs.run_position(store, 10_000) is None
