"""Fixtures of the console tests: an `AppContext` on a temp database, with Credly and Docebo
clients talking to in-process sandboxes (httpx.ASGITransport), and helpers to drive the app.

Every client is built by the context's factories inside the worker that uses it (each worker
thread has its own event loop); the sandbox apps are plain ASGI apps, usable from any loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.worker import WorkerState

from services.appcontext import AppContext
from services.clients.credly import CredlyClient
from services.clients.docebo import DoceboClient
from services.clients.http import HttpPolicy
from services.core.config import AppConfig
from services.core.secrets import MemorySecrets
from services.sandbox.credly.app import create_credly_app
from services.sandbox.credly.state import CredlyState
from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.docebo.state import DoceboState
from services.store.db import Store
from tests.support.world import (
    SETTINGS,
    completed,
    course,
    credly_client,
    demo_data,
    docebo_client,
    learner,
    no_sleep,
    template,
    template_id,
)

SIZE = (120, 36)
ORG = "6d0f2f5e-0000-4000-8000-0000000000c0"


tid = template_id
T_SAFETY, T_FIRE, T_ARCHIVED, T_CERT = tid(1), tid(2), tid(3), tid(4)


def console_data(learners: int = 4) -> DemoData:
    """A small known world: templates in each state, `learners` learners who all completed
    course 101 and both courses of learning plan 501, one certification."""
    users = [learner(i, username=f"user{i}", email=f"user{i}@example.com") for i in range(1, learners + 1)]
    return demo_data(
        ORG,
        dict(
            templates=[
                template(T_SAFETY, "Safety Basics"),
                template(T_FIRE, "Fire Warden"),
                template(T_ARCHIVED, "Old Badge", state="archived"),
                template(T_CERT, "Certified Operator", expires_in_days=365),
            ],
            users=users,
            courses=[course(101, "Safety 101", "S101"), course(102, "Fire 1", "F1"), course(103, "Fire 2", "F2")],
            learning_plans=[{"learning_plan_id": 501, "code": "LP-FIRE", "title": "Fire plan", "course_ids": [102, 103]}],
            enrollments=[completed(c, u["user_id"]) for u in users for c in (101, 102, 103)],
            certifications=[{"id_cert": 1, "code": "CERT-OP", "title": "Operator", "validity_days": None}],
            lp_enrollments=[{"learning_plan_id": 501, "user_id": u["user_id"], "enrolled_at": "2025-01-01 09:00:00"}
                            for u in users],
        ),
    )


class ConsoleWorld:
    """Both sandboxes in-process and an AppContext whose factories build clients for them."""

    def __init__(self, tmp_path: Path, data: DemoData | None = None) -> None:
        self.data = data or console_data()
        self.credly_state = CredlyState.from_demo(self.data)
        self.docebo_state = DoceboState.from_demo(self.data)
        self.credly_app = create_credly_app(self.credly_state)
        self.docebo_app = create_docebo_app(self.docebo_state)
        self.policy = HttpPolicy(sleep=no_sleep)
        self.db_path = tmp_path / "console.db"
        self.store = Store(self.db_path)
        self.ctx = AppContext(
            config=AppConfig(), secrets=MemorySecrets(), database_path=self.db_path,
            config_path=tmp_path / "config.toml", credly_factory=self.make_credly, docebo_factory=self.make_docebo,
        )

    def make_credly(self) -> CredlyClient:
        return credly_client(self.credly_state, self.credly_app, self.policy)

    def make_docebo(self) -> DoceboClient:
        return docebo_client(self.docebo_state, self.docebo_app, self.policy)

    def configure(self, **values: str) -> None:
        from services.store.settings import set_settings

        set_settings(self.store, {**SETTINGS, **values})

    async def run(self, name: str, **kw: Any):
        from services.flows import FlowContext, run_flow

        credly, docebo = self.make_credly(), self.make_docebo()
        try:
            return await run_flow(name, FlowContext(self.store, credly, docebo), trigger="test", **kw)
        finally:
            await credly.aclose()
            await docebo.aclose()

    async def prepare(self) -> None:
        """F1 + F2 for real, course 101's badge field set to Safety Basics, LP 501 mapped to
        Fire Warden: a dry run of F7 then plans badges for every learner."""
        from services.store.mappings import MappingInput, add_mapping

        assert (await self.run("templates")).status == "succeeded"
        assert (await self.run("dropdown")).status == "succeeded"
        field_id = int(self.store.get_meta("docebo.course_field_id"))
        self.docebo_state.set_course_value(101, field_id, label="Safety Basics")
        add_mapping(self.store, MappingInput(template_id=T_FIRE, learning_plan_id="501"))

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def world(tmp_path) -> ConsoleWorld:
    w = ConsoleWorld(tmp_path)
    w.configure()
    yield w
    w.close()


@pytest.fixture
def bare_ctx(tmp_path) -> AppContext:
    """A context without any client (what a console with no connection configured sees)."""
    return AppContext(config=AppConfig(), secrets=MemorySecrets(), database_path=tmp_path / "bare.db",
                      config_path=tmp_path / "config.toml")


def make_app(ctx: AppContext, section: str = "dashboard"):
    from console.app import CredlyConsoleApp

    return CredlyConsoleApp(ctx, initial_section=section, cursor_blink=False)


async def settle(pilot, rounds: int = 200) -> None:
    """Wait until no worker is pending or running (results delivered, follow-up work done)."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        busy = [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if not busy:
            await pilot.pause()
            if not [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]:
                return
            continue
        await asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)
    raise AssertionError("workers did not settle")


def screen_text(app) -> str:
    """Everything on the screen as plain text (for asserting on what the admin sees)."""
    import re
    from html import unescape

    svg = app.export_screenshot()
    lines: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)"[^>]*y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        lines.setdefault(float(m.group(2)), []).append((float(m.group(1)), unescape(m.group(3))))
    out = []
    for _, parts in sorted(lines.items()):
        row = ""
        for x, text in sorted(parts):
            col = int(round(x / 12.2))  # Textual's SVG: 12.2 px per cell
            row += " " * max(0, col - len(row)) + text
        out.append(row.replace("\xa0", " "))
    return "\n".join(out)


# -- deterministic data for snapshots and screen tests --------------------------------------------

T0 = "2025-06-01T09:00:00.000Z"


def seed(store: Store) -> None:
    """A fixed store: settings, templates, mappings (one broken by M3), runs with logs,
    notifications, inbox rows and connection health, every timestamp fixed."""
    from services.store.settings import set_settings

    set_settings(store, {**SETTINGS, "BATCH_SYNC_START_DATE": "2025-01-01"})
    with store.write() as db:
        db.execute("UPDATE settings SET updated_at = ?", (T0,))
        for n, (name, active, state, option, admin_off) in enumerate([
            ("Safety Basics", 1, "active", "11", 0), ("Fire Warden", 1, "active", "12", 0),
            ("Old Badge", 0, "archived", "", 0), ("Certified Operator", 0, "active", "", 1),
        ], start=1):
            db.execute(
                "INSERT INTO badge_templates (template_id, name, is_active, dropdown_element_id, credly_state, "
                "admin_deactivated, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tid(n), name, active, option, state, admin_off, T0, T0))
        mappings = [
            (tid(2), "Fire Warden", "501", 0, "", 1, "ok", ""),
            (tid(4), "Certified Operator", "", 0, "CERT-OP", 1, "", ""),
            (tid(1), "Safety Basics", "", 1, "", 1, "", ""),
            (tid(2), "Fire Warden", "999", 0, "", 0, "broken", "learning plan 999 does not exist in Docebo"),
            (tid(9), "", "", 0, "CERT-GONE", 1, "broken", "template does not exist in Credly"),
        ]
        for m in mappings:
            db.execute(
                "INSERT INTO mappings (template_id, template_name, learning_plan_id, import_as_external_training, "
                "certification_code, is_active, check_status, check_message, checked_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*m, T0 if m[6] else None, T0, T0))
        runs = [
            (
                1,
                "templates",
                "console",
                0,
                "succeeded",
                "",
                "2025-06-01T09:00:00.000Z",
                "2025-06-01T09:00:02.000Z",
                4,
                4,
                4,
                0,
                0,
                0,
                4,
                0,
                0,
            ),
            (
                2,
                "docebo_to_credly",
                "console",
                1,
                "succeeded",
                "",
                "2025-06-01T09:01:00.000Z",
                "2025-06-01T09:01:05.000Z",
                8,
                8,
                12,
                8,
                0,
                0,
                0,
                0,
                0,
            ),
            (
                3,
                "docebo_to_credly",
                "schedule",
                0,
                "succeeded",
                "",
                "2025-06-01T09:05:00.000Z",
                "2025-06-01T09:05:09.000Z",
                8,
                8,
                12,
                7,
                0,
                0,
                0,
                4,
                1,
            ),
        ]
        for r in runs:
            db.execute(
                "INSERT INTO runs (id, flow, trigger, dry_run, status, reason, started_at, ended_at, progress_done, "
                "progress_total, examined, issued, replaced, revoked, created, skipped, failed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                r,
            )
        log = [
            (3, "info", "", "", "examining 12 completions"),
            (3, "info", "issue_badge", "user1@example.com / Fire Warden", "issued"),
            (3, "info", "issue_badge", "user2@example.com / Fire Warden", "issued"),
            (
                3,
                "error",
                "",
                "user4@example.com / Safety Basics",
                "POST /organizations/{org}/badges failed: 422 [recipient] is invalid",
            ),
            (3, "info", "", "", "done"),
        ]
        for run_id, level, action, obj, message in log:
            db.execute(
                "INSERT INTO run_log (run_id, at, level, action, object, message) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, "2025-06-01T09:05:01.000Z", level, action, obj, message),
            )
        notes = [
            (
                "2025-06-01T09:05:09.000Z",
                "error",
                "Badge could not be issued to user4@example.com",
                "docebo_to_credly",
                3,
                "user4@example.com / Safety Basics",
                "POST /organizations/{org}/badges",
                "[recipient] is invalid",
                None,
                "Credly refused the badge; check the learner's e-mail address in Docebo.",
            ),
            (
                "2025-06-01T09:06:00.000Z",
                "config",
                "dropdown flow blocked by the configuration",
                "dropdown",
                None,
                "",
                "",
                "",
                "2025-06-01T10:00:00.000Z",
                "COURSE_ADDITIONAL_FIELD is not set",
            ),
            (
                "2025-06-01T09:07:00.000Z",
                "webhook_rejected",
                "Rejected a Credly notice for another organization",
                "",
                None,
                "event 7f3c",
                "",
                "",
                None,
                "",
            ),
        ]
        for created, kind, title, flow, run_id, obj, call, service, read_at, body in notes:
            db.execute(
                "INSERT INTO notifications (created_at, kind, title, body, flow, run_id, object, call, service_message, "
                "read_at, mail_status, cause) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sent', ?)",
                (created, kind, title, body, flow, run_id, obj, call, service, read_at,
                 f"credly|422|{service}" if kind == "error" else ""),
            )
        items = [
            (
                "docebo",
                "docebo:m-1:0",
                "course.enrollment.completed",
                "docebo:1",
                {"user_id": 1, "course_id": 101},
                "done",
                1,
                "",
            ),
            (
                "credly",
                "credly:ev-2",
                "badge.created",
                "",
                {"id": "ev-2", "event_type": "badge.created"},
                "failed",
                5,
                "Credly GET /organizations/{org}/events/{id}: 503 Service Unavailable",
            ),
            (
                "docebo",
                "docebo:m-3:0",
                "course.enrollment.completed",
                "docebo:2",
                {"user_id": 2, "course_id": 101},
                "queued",
                0,
                "",
            ),
        ]
        import json

        for source, key, event, learner, payload, status, attempts, error in items:
            db.execute(
                "INSERT INTO inbox (source, delivery_key, event_type, learner_key, payload, received_at, status, "
                "attempts, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (source, key, event, learner, json.dumps(payload), T0, status, attempts, error),
            )
        db.execute(
            "INSERT INTO connection_health (service, checked_at, ok, message) VALUES "
            "('credly', ?, 1, 'Connected to Credly organization Acme Learning.'), "
            "('docebo', ?, 0, 'Docebo rejected the client secret (HTTP 401).')",
            (T0, T0),
        )


@pytest.fixture
def seeded_ctx(bare_ctx) -> AppContext:
    with Store(bare_ctx.database_path) as store:
        seed(store)
    return bare_ctx
