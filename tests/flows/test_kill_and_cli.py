"""End to end over real servers: the `sync` CLI in a subprocess against both sandboxes served by
the sandbox runner, killed with SIGKILL at several points and run again (resumability, F7/F6),
plus the CLI's exit codes and JSON summary."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import threading

import pytest

from services.core.config import AppConfig, CredlyConfig, DoceboConfig, save_config
from services.flows import FlowContext, run_flow
from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.store import runs
from services.store.db import Store
from tests.flows.world import SETTINGS, T_CERT, T_IMPORT, World, base_data
from tests.support.world import completed

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

N_LEARNERS = 400


def big_data():
    users = [
        {
            "user_id": i,
            "username": f"u{i}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "email": f"learner{i}@example.com",
        }
        for i in range(1, N_LEARNERS + 1)
    ]
    enr = [completed(101, i, f"2025-03-{1 + i % 28:02d} 10:00:00") for i in range(1, N_LEARNERS + 1)]
    awards = [
        {"id_award": 100 + i, "id_cert": 1, "user_id": i, "issued_on": "2025-04-01 00:00:00", "expire_on": "2099-04-01 00:00:00"}
        for i in range(1, 21)
    ]
    return base_data(users=users, enrollments=enr, awards=awards)


def _state(credly_state, docebo_state):
    badges = sorted(
        (b.recipient_email.lower(), b.template_id, b.state, b.issued_at, b.expires_at) for b in credly_state.badges.values()
    )
    trainings = sorted(
        (t["user_id"], t["course_name"], t["date_from"], t["date_to"]) for t in docebo_state.external_trainings.values()
    )
    awards = sorted((a["user_id"], a["id_cert"], a["issued_on"], a["expire_on"]) for a in docebo_state.awards.values())
    return badges, trainings, awards


def _write_config(tmp_path, sb) -> dict:
    cfg = AppConfig(
        credly=CredlyConfig(base_url=sb.credly.base_url, organization_id=sb.credly.organization_id),
        docebo=DoceboConfig(
            base_url=sb.docebo.base_url, client_id=sb.docebo.client_id, rate_limit_per_hour=1_000_000, burst=1000
        ),
    )
    save_config(cfg)
    env = dict(os.environ)
    env.update(CREDLY_TOKEN=sb.credly.token, DOCEBO_CLIENT_SECRET=sb.docebo.client_secret)
    return env


async def _cli(env, *args) -> tuple[int, str, str, asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from console.cli import main; main()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return proc


async def _prepare(sb, store, mappings):
    """Settings, F1, F2 and the course's dropdown value, in-process against the real servers."""
    from services.clients.credly import CredlyClient
    from services.clients.docebo import DoceboClient
    from services.store import settings as settings_service
    from services.store.mappings import MappingInput, add_mapping

    settings_service.set_settings(store, SETTINGS)
    credly = CredlyClient(sb.credly.base_url, sb.credly.organization_id, sb.credly.token)
    docebo = DoceboClient(sb.docebo.base_url, sb.docebo.client_id, sb.docebo.client_secret)
    try:
        ctx = FlowContext(store, credly, docebo)
        assert (await run_flow("templates", ctx)).status == "succeeded"
        assert (await run_flow("dropdown", ctx)).status == "succeeded"
    finally:
        await credly.aclose()
        await docebo.aclose()
    field_id = int(store.get_meta("docebo.course_field_id"))
    sb.docebo.state.set_course_value(101, field_id, label="Safety Basics")
    for m in mappings:
        add_mapping(store, MappingInput(**m))


async def _reference(store_path, data, mappings, flow):
    """The end state of an uninterrupted run on the same data (in-process sandboxes)."""
    store = Store(store_path)
    w = World(store, data)
    try:
        w.configure()
        await w.prepare_dropdown({101: "Safety Basics"})
        from services.store.mappings import MappingInput, add_mapping

        for m in mappings:
            add_mapping(store, MappingInput(**m))
        s = await w.run(flow)
        assert s.status == "succeeded" and s.counts["failed"] == 0
        return _state(w.credly_state, w.docebo_state)
    finally:
        await w.aclose()
        store.close()


async def _kill_and_rerun(tmp_path, data, mappings, flow, arm):
    """Run `sync FLOW` in a subprocess, SIGKILL it at each point `arm` sets up, then run it to
    the end; return (end state, reference state, runs)."""
    expected = await _reference(tmp_path / "reference.db", data, mappings, flow.replace("-", "_"))
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        env = _write_config(tmp_path, sb)
        db_path = os.environ["CREDLY_CONSOLE_DB"]
        with Store(db_path) as store:
            await _prepare(sb, store, mappings)
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
        proc = await _cli(env, "sync", flow, "--json")
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        summary = json.loads(out)
        assert summary["status"] == "succeeded" and summary["counts"]["failed"] == 0
        with Store(db_path) as store:
            history = runs.query_runs(store, flow=flow.replace("-", "_"), limit=50)
        return _state(sb.credly.state, sb.docebo.state), expected, history, kills


class PidBox:
    """The pid of the CLI process about to be started: the kill points are armed BEFORE the
    process starts (so a fast run cannot get past them), and a point that fires waits for it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._pid = 0

    def set(self, pid: int) -> None:
        self._pid = pid
        self._event.set()

    def wait(self) -> int:
        assert self._event.wait(30), "the CLI process was never started"
        return self._pid


class _Killer:
    """Wraps sandbox state methods so that the CLI process is SIGKILLed at a chosen point of
    each run: `("before", k)` when the k-th create call of the run arrives, before the sandbox
    applies it (the client committed its intents, nothing was created); `("after", k)` just
    after the sandbox applied it (created, but the client never gets the answer). Other calls in
    flight at that moment go on, as they would against the real service."""

    methods: tuple[str, ...] = ()
    points: tuple = ()

    def target(self, sb):
        raise NotImplementedError

    def install(self, sb, point, pid):
        return self.arm(self.target(sb), self.methods, point, pid)

    def arm(self, obj, methods, point, pid):
        state = {"fired": False, "seen": 0}
        originals = {name: getattr(obj, name) for name in methods}
        when, k = point if isinstance(point, tuple) else (point, 1)

        def kill():
            if not state["fired"]:
                state["fired"] = True
                os.kill(pid.wait(), signal.SIGKILL)

        def wrap(original):
            def wrapped(*a, **kw):
                state["seen"] += 1
                hit = state["seen"] >= k and not state["fired"]
                if hit and when == "before":
                    kill()
                    raise RuntimeError("killed before the sandbox applied the call")
                result = original(*a, **kw)
                if hit and when == "after":
                    kill()
                return result

            return wrapped

        for name, original in originals.items():
            setattr(obj, name, wrap(original))
        self._undo = lambda: [setattr(obj, n, f) for n, f in originals.items()]
        return lambda: state["fired"]

    def uninstall(self, sb):
        self._undo()


class CredlyIssueKill(_Killer):
    """F7: on the Docebo enrollment scan (nothing issued yet), then around Credly issue calls."""

    methods = ("issue_batch", "issue")
    # 420 badges = 9 batch calls; a kill lets the (at most 4) calls in flight finish, so these
    # points always leave work for the next one: 0 + <=3 + <=4 applied before the last kill.
    points = ("reads", ("before", 1), ("after", 1), ("after", 1))

    def target(self, sb):
        return sb.credly.state

    def install(self, sb, point, pid):
        if point == "reads":
            return self.arm(sb.docebo.state, ("iter_enrollments",), ("before", 1), pid)
        return super().install(sb, point, pid)


class DoceboCreateKill(_Killer):
    """F6: around Docebo's external training and award creation."""

    methods = ("create_training", "create_award")
    points = (("after", 1), ("before", 3), ("after", 10), ("before", 1))

    def target(self, sb):
        return sb.docebo.state


async def test_F7_batch_killed_with_sigkill_at_several_points_converges_without_duplicates(tmp_path):
    data = big_data()
    mappings = [{"template_id": T_CERT, "certification_code": "CERT-OP"}]
    end, expected, history, kills = await _kill_and_rerun(tmp_path, data, mappings, "docebo-to-credly", CredlyIssueKill())
    assert kills == 4
    assert end == expected
    live = [(e, t) for e, t, s, *_ in end[0] if s in ("pending", "accepted")]
    assert len(live) == len(set(live)) == N_LEARNERS + 20  # one Safety badge each, 20 certification badges
    assert [r["status"] for r in history][:5] == ["succeeded"] + ["interrupted"] * 4


async def test_F6_batch_killed_with_sigkill_at_several_points_converges_without_duplicates(tmp_path):
    data = big_data()
    badges = [
        {
            "id": f"b{i:04d}-0000-4000-8000-000000000000",
            "badge_template_id": T_IMPORT,
            "recipient_email": f"learner{i}@example.com",
            "issued_to_first_name": "F",
            "issued_to_last_name": "L",
            "issued_at": "2025-05-01T10:00:00.000Z",
            "expires_at": None,
            "state": "accepted" if i % 2 else "pending",
            "issuer_earner_id": None,
        }
        for i in range(1, 61)
    ]
    data = dataclasses.replace(data, badges=badges, awards=[])
    mappings = [{"template_id": T_IMPORT, "import_as_external_training": True, "certification_code": "CERT-PARTNER"}]
    end, expected, history, kills = await _kill_and_rerun(tmp_path, data, mappings, "credly-to-docebo", DoceboCreateKill())
    assert kills == 4
    assert end == expected
    trainings, awards = end[1], end[2]
    assert len(trainings) == len({t[0] for t in trainings}) == 60  # no duplicate external training
    assert len(awards) == len({a[0] for a in awards}) == 60  # no duplicate award


async def test_cli_sync_dry_run_json_and_exit_codes(tmp_path):
    data = base_data(enrollments=[completed(101, 1)])
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        env = _write_config(tmp_path, sb)
        with Store(os.environ["CREDLY_CONSOLE_DB"]) as store:
            await _prepare(sb, store, [])
        proc = await _cli(env, "sync", "docebo-to-credly", "--dry-run", "--json")
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        plan = json.loads(out)
        assert plan["dry_run"] and [a["action"] for a in plan["actions"]] == ["issue_badge"]
        assert sb.credly.state.badges == {}
        proc = await _cli(env, "sync", "docebo-to-credly")
        out, err = await proc.communicate()
        assert proc.returncode == 0 and "issued 1" in out.decode()
        assert "docebo_to_credly: 1/1" in err.decode() or "1/1" in err.decode()  # plain progress lines off a TTY
        # a configuration problem → exit 2
        with Store(os.environ["CREDLY_CONSOLE_DB"]) as store:
            store.db.execute("UPDATE settings SET value = '' WHERE key = 'NOTIFICATION_MAIL_ID'")
        proc = await _cli(env, "sync", "docebo-to-credly")
        out, err = await proc.communicate()
        assert proc.returncode == 2 and "NOTIFICATION_MAIL_ID" in out.decode() + err.decode()
        bad = dict(env)
        bad.pop("CREDLY_TOKEN")
        proc = await _cli(bad, "sync", "templates")
        out, err = await proc.communicate()
        assert proc.returncode == 2 and "CREDLY_TOKEN" in err.decode()
