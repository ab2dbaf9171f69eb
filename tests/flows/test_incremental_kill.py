"""SIGKILL during INCREMENTAL batches (issue 8, resumable as issue 5 asks): the `sync` CLI in a
subprocess against both sandboxes on real servers, a full run first, then changes, then
incremental runs killed at several points, then one more incremental run: it converges, with
nothing created twice, and the watermark only moves on the clean run."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest

from services.flows.incremental import read_state
from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.store.db import Store
from tests.flows.test_kill_and_cli import (
    N_LEARNERS,
    CredlyIssueKill,
    DoceboCreateKill,
    PidBox,
    _cli,
    _prepare,
    _write_config,
    big_data,
)
from tests.flows.world import T_CERT, T_IMPORT, T_SAFETY
from tests.support.world import completed

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

# Learners who completed course 101 before the full run; the other 360 complete after it: 8 batch
# calls of at most 50, so the kill points (which let up to 0 + 3 + 4 calls in flight finish before
# the last kill) always leave that last point a call to kill. With 300 (6 calls) a loaded machine
# could finish the work before it, and the run was not killed (flaky under -n 2).
FIRST = 40


async def _sync(env, flow, *extra) -> dict:
    proc = await _cli(env, "sync", flow, "--json", *extra)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def _kill_runs(env, sb, flow, arm) -> int:
    kills = 0
    for point in arm.points:
        box = PidBox()
        fired = arm.install(sb, point, box)
        proc = await _cli(env, "sync", flow)
        box.set(proc.pid)
        await proc.communicate()
        arm.uninstall(sb)
        assert proc.returncode == -signal.SIGKILL, f"the run at kill point {point} was not killed ({proc.returncode})"
        assert fired()
        kills += 1
    return kills


async def test_F7_incremental_run_killed_with_sigkill_converges_without_duplicates(tmp_path):
    data = big_data()
    data = dataclasses.replace(data, enrollments=[e for e in data.enrollments if e["user_id"] <= FIRST])
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        env = _write_config(tmp_path, sb)
        db = os.environ["CREDLY_CONSOLE_DB"]
        with Store(db) as store:
            await _prepare(sb, store, [{"template_id": T_CERT, "certification_code": "CERT-OP"}])
        full = await _sync(env, "docebo-to-credly")
        assert full["mode"] == "full" and full["counts"]["issued"] == FIRST + 20
        with Store(db) as store:
            watermark = read_state(store, "docebo_to_credly")
        sb.docebo.state.advance(600)
        sb.credly.state.advance(600)
        for uid in range(FIRST + 1, N_LEARNERS + 1):  # 360 more learners complete course 101
            sb.docebo.state.enroll(101, uid)
            sb.docebo.state.set_enrollment(101, uid, status="completed", date_complete="2026-10-01 10:00:00")
        kills = await _kill_runs(env, sb, "docebo-to-credly", CredlyIssueKill())
        with Store(db) as store:
            assert read_state(store, "docebo_to_credly") == watermark  # killed runs never move it
        last = await _sync(env, "docebo-to-credly")
        assert last["mode"] == "incremental" and last["status"] == "succeeded" and last["counts"]["failed"] == 0
        again = await _sync(env, "docebo-to-credly", "--full")  # a full reconciliation finds nothing to do
        assert again["mode"] == "full" and again["counts"]["issued"] == 0 and again["counts"]["failed"] == 0
        live = sorted((b.recipient_email.lower(), b.template_id) for b in sb.credly.state.badges.values()
                      if b.state in ("pending", "accepted"))
    assert kills == 4
    assert len(live) == len(set(live)) == N_LEARNERS + 20  # one Safety badge each, 20 certification badges
    assert sum(1 for _, t in live if t == T_SAFETY) == N_LEARNERS


async def test_F6_incremental_run_killed_with_sigkill_converges_without_duplicates(tmp_path):
    old = [
        {
            "id": f"b{i:04d}-0000-4000-8000-000000000000",
            "badge_template_id": T_IMPORT,
            "recipient_email": f"learner{i}@example.com",
            "issued_to_first_name": "F",
            "issued_to_last_name": "L",
            "issued_at": "2025-05-01T10:00:00.000Z",
            "expires_at": None,
            "state": "accepted",
            "issuer_earner_id": None,
        }
        for i in range(1, 11)
    ]
    data = dataclasses.replace(big_data(), badges=old, awards=[], enrollments=[completed(101, 1)])
    mappings = [{"template_id": T_IMPORT, "import_as_external_training": True, "certification_code": "CERT-PARTNER"}]
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        env = _write_config(tmp_path, sb)
        db = os.environ["CREDLY_CONSOLE_DB"]
        with Store(db) as store:
            await _prepare(sb, store, mappings)
        full = await _sync(env, "credly-to-docebo")
        assert full["mode"] == "full" and full["counts"]["created"] == 20
        sb.docebo.state.advance(600)
        sb.credly.state.advance(600)
        for i in range(11, 61):  # 50 badges issued by hand in Credly after the full run
            sb.credly.state.issue(
                {
                    "recipient_email": f"learner{i}@example.com",
                    "issued_to_first_name": "F",
                    "issued_to_last_name": "L",
                    "badge_template_id": T_IMPORT,
                    "issued_at": "2026-10-01T10:00:00Z",
                }
            )
        kills = await _kill_runs(env, sb, "credly-to-docebo", DoceboCreateKill())
        last = await _sync(env, "credly-to-docebo")
        assert last["mode"] == "incremental" and last["status"] == "succeeded" and last["counts"]["failed"] == 0
        trainings = [t["user_id"] for t in sb.docebo.state.external_trainings.values()]
        awards = [a["user_id"] for a in sb.docebo.state.awards.values()]
    assert kills == 4
    assert sorted(trainings) == sorted(set(trainings)) == list(range(1, 61))  # no duplicate external training
    assert sorted(awards) == sorted(set(awards)) == list(range(1, 61))  # no duplicate award
