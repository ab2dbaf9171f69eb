"""A small, exactly known world in both sandboxes (in-process, httpx.ASGITransport) for the flow
tests, with the store, the settings and the two clients wired into a FlowContext."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.clients.http import HttpPolicy
from services.flows import FlowContext, run_flow
from services.sandbox.credly.app import create_credly_app
from services.sandbox.credly.state import CredlyState
from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.docebo.state import DoceboState
from services.sandbox.faults import FaultConfig
from services.store import runs
from services.store import settings as settings_service
from tests.support.world import SETTINGS as BASE_SETTINGS
from tests.support.world import (
    course,
    credly_client,
    demo_data,
    docebo_client,
    learner,
    no_sleep,
    template,
    template_id,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ORG = "6d0f2f5e-0000-4000-8000-000000000001"
tid = template_id

T_SAFETY, T_FIRE, T_ARCHIVED, T_DRAFT, T_CERT, T_IMPORT = (tid(i) for i in range(1, 7))

SETTINGS = {
    **BASE_SETTINGS,
    "CREDLY_DEFAULT_EXPIRATION_DAYS": "",
    "CREDLY_INTEGRATION_MASTER": "",
    "BATCH_SYNC_START_DATE": "",
}


def base_data(**overrides: Any) -> DemoData:
    """Three learners, three courses (two in learning plan 501), one certification, and
    templates in every state."""
    return demo_data(
        ORG,
        dict(
            templates=[
                template(T_SAFETY, "Safety Basics"),
                template(T_FIRE, "Fire Warden"),
                template(T_ARCHIVED, "Old Badge", state="archived"),
                template(T_DRAFT, "Draft Badge", state="draft"),
                template(T_CERT, "Certified Operator", expires_in_days=365),
                template(T_IMPORT, "Partner Skills"),
            ],
            users=[
                learner(1, username="alice", first_name="Alice", last_name="Archer", email="alice@example.com"),
                learner(2, username="bob", first_name="Bob", last_name="Baker", email="bob@example.com"),
                learner(3, username="carol", first_name="Carol", last_name="Cook", email="Carol@Example.com"),
            ],
            courses=[course(101, "Safety 101", "S101"), course(102, "Fire 1", "F1"), course(103, "Fire 2", "F2")],
            learning_plans=[{"learning_plan_id": 501, "code": "LP-FIRE", "title": "Fire plan", "course_ids": [102, 103]}],
            certifications=[
                {"id_cert": 1, "code": "CERT-OP", "title": "Operator", "validity_days": None},
                {"id_cert": 2, "code": "CERT-PARTNER", "title": "Partner", "validity_days": None},
            ],
        ),
        overrides,
    )


class World:
    """Both sandboxes in-process, the clients, the store and the settings."""

    def __init__(self, store, data: DemoData, *, credly_faults: FaultConfig | None = None,
                 docebo_faults: FaultConfig | None = None) -> None:
        self.store = store
        self.data = data
        self.credly_state = CredlyState.from_demo(data)
        self.docebo_state = DoceboState.from_demo(data)
        self.credly_faults = credly_faults or FaultConfig()
        self.docebo_faults = docebo_faults or FaultConfig()
        self.credly_app = create_credly_app(self.credly_state, self.credly_faults)
        self.docebo_app = create_docebo_app(self.docebo_state, self.docebo_faults)
        policy = HttpPolicy(sleep=no_sleep)
        self.credly = credly_client(self.credly_state, self.credly_app, policy)
        self.docebo = docebo_client(self.docebo_state, self.docebo_app, policy)
        # A fixed "now": batches skip objects whose own expiry has passed (docebo_to_credly._current).
        self.ctx = FlowContext(store, self.credly, self.docebo, now=lambda: NOW)

    # -- driving ---------------------------------------------------------------------------
    def configure(self, **values: str) -> None:
        settings_service.set_settings(self.store, {**SETTINGS, **values})

    async def run(self, name: str, **kw: Any):
        return await run_flow(name, self.ctx, trigger="test", **kw)

    async def prepare_dropdown(self, course_templates: dict[int, str] | None = None) -> int:
        """F1 + F2, then set courses' dropdown values (course id → template name)."""
        assert (await self.run("templates")).status == "succeeded"
        assert (await self.run("dropdown")).status == "succeeded"
        field_id = int(self.store.get_meta("docebo.course_field_id"))
        for course_id, name in (course_templates or {}).items():
            self.docebo_state.set_course_value(course_id, field_id, label=name)
        return field_id

    def add_mapping(self, template_id: str, *, lp: str = "", et: bool = False, cert: str = "", active: bool = True) -> int:
        from services.store.mappings import MappingInput, add_mapping

        row = add_mapping(
            self.store,
            MappingInput(
                template_id=template_id,
                learning_plan_id=lp,
                import_as_external_training=et,
                certification_code=cert,
                is_active=active,
            ),
        )
        return row["id"]

    # -- observing -------------------------------------------------------------------------
    def badges(self, *, states: tuple[str, ...] = ("pending", "accepted")) -> list[Any]:
        return [b for b in self.credly_state.badges.values() if b.state in states]

    def badge_keys(self) -> list[tuple[str, str]]:
        return sorted((b.recipient_email.lower(), b.template_id) for b in self.badges())

    def trainings(self) -> list[dict]:
        return sorted(self.docebo_state.external_trainings.values(), key=lambda t: t["id"])

    def awards(self) -> list[dict]:
        return sorted(self.docebo_state.awards.values(), key=lambda a: a["id_award"])

    def calls(self, service: str) -> dict[str, int]:
        app = self.credly_app if service == "credly" else self.docebo_app
        return app.state.sandbox.calls.snapshot()

    def issue_calls(self) -> int:
        calls = self.calls("credly")
        return calls.get("POST /v1/organizations/{org}/badges", 0) + calls.get("POST /v1/organizations/{org}/badges/batch", 0)

    def writes(self) -> dict[str, int]:
        """Write calls seen by both sandboxes (anything but GET and the token)."""
        out = {}
        for service in ("credly", "docebo"):
            for key, n in self.calls(service).items():
                if not key.startswith("GET") and "oauth2" not in key:
                    out[key] = n
        return out

    async def aclose(self) -> None:
        await self.credly.aclose()
        await self.docebo.aclose()


# -- incremental runs (issue 8): clocks and the sandboxes' call counters -----------------------


def travel(w, seconds: int = 600) -> None:
    """Both services' clocks move on (the next scheduled run comes minutes later)."""
    w.docebo_state.advance(seconds)
    w.credly_state.advance(seconds)


def calls(w) -> dict[str, int]:
    return {f"{svc} {route}": n for svc in ("credly", "docebo") for route, n in w.calls(svc).items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


def first_line(w, summary) -> str:
    return runs.query_run_log(w.store, summary.run_id, limit=1)[0]["message"]
