"""A small, exactly known world in both sandboxes (in-process, httpx.ASGITransport) for the flow
tests, with the store, the settings and the two clients wired into a FlowContext."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import httpx

from services.clients.credly import CredlyClient
from services.clients.docebo import DoceboClient
from services.clients.http import HttpPolicy
from services.flows import FlowContext, run_flow
from services.sandbox.credly.app import create_credly_app
from services.sandbox.credly.state import CredlyState
from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.docebo.state import DoceboState
from services.sandbox.faults import FaultConfig
from services.store import settings as settings_service

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ORG = "6d0f2f5e-0000-4000-8000-000000000001"


def tid(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


T_SAFETY, T_FIRE, T_ARCHIVED, T_DRAFT, T_CERT, T_IMPORT = (tid(i) for i in range(1, 7))

SETTINGS = {
    "NOTIFICATION_MAIL_ID": "lms-admin@example.com",
    "SYNC_REVOCATION": "true",
    "EXTERNAL_TRAINING_INSTITUTE_NAME": "Credly",
    "COURSE_ADDITIONAL_FIELD": "Credly badge",
    "EVIDENCE_TITLE": "Docebo achievement",
    "CREDLY_DEFAULT_EXPIRATION_DAYS": "",
    "CREDLY_INTEGRATION_MASTER": "",
    "BATCH_SYNC_START_DATE": "",
}


def base_data(**overrides: Any) -> DemoData:
    """Three learners, three courses (two in learning plan 501), one certification, and
    templates in every state."""
    data = DemoData(
        size="test",
        seed=0,
        organization_id=ORG,
        templates=[
            {
                "id": T_SAFETY,
                "name": "Safety Basics",
                "state": "active",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": None,
            },
            {
                "id": T_FIRE,
                "name": "Fire Warden",
                "state": "active",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": None,
            },
            {
                "id": T_ARCHIVED,
                "name": "Old Badge",
                "state": "archived",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": None,
            },
            {
                "id": T_DRAFT,
                "name": "Draft Badge",
                "state": "draft",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": None,
            },
            {
                "id": T_CERT,
                "name": "Certified Operator",
                "state": "active",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": 365,
            },
            {
                "id": T_IMPORT,
                "name": "Partner Skills",
                "state": "active",
                "allow_duplicate_badges": False,
                "description": "",
                "default_expires_in_days": None,
            },
        ],
        badges=[],
        users=[
            {"user_id": 1, "username": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@example.com"},
            {"user_id": 2, "username": "bob", "first_name": "Bob", "last_name": "Baker", "email": "bob@example.com"},
            {"user_id": 3, "username": "carol", "first_name": "Carol", "last_name": "Cook", "email": "Carol@Example.com"},
        ],
        courses=[
            {"id_course": 101, "name": "Safety 101", "code": "S101", "course_type": "elearning"},
            {"id_course": 102, "name": "Fire 1", "code": "F1", "course_type": "elearning"},
            {"id_course": 103, "name": "Fire 2", "code": "F2", "course_type": "elearning"},
        ],
        learning_plans=[{"learning_plan_id": 501, "code": "LP-FIRE", "title": "Fire plan", "course_ids": [102, 103]}],
        enrollments=[],
        certifications=[
            {"id_cert": 1, "code": "CERT-OP", "title": "Operator", "validity_days": None},
            {"id_cert": 2, "code": "CERT-PARTNER", "title": "Partner", "validity_days": None},
        ],
        awards=[],
        lp_enrollments=[],
        course_fields=[],
        course_field_values=[],
    )
    return dataclasses.replace(data, **overrides)


def completed(course_id: int, user_id: int, when: str = "2025-03-01 10:00:00", validity_end: str | None = None) -> dict:
    return {
        "course_id": course_id,
        "user_id": user_id,
        "status": "completed",
        "enrolled_at": "2025-01-01 09:00:00",
        "completed_at": when,
        "validity_end": validity_end,
    }


async def _instant(seconds: float) -> None:
    return None


class World:
    """Both sandboxes in-process, the clients, the store and the settings."""

    def __init__(
        self, store, data: DemoData, *, credly_faults: FaultConfig | None = None, docebo_faults: FaultConfig | None = None
    ) -> None:
        self.store = store
        self.data = data
        self.credly_state = CredlyState.from_demo(data)
        self.docebo_state = DoceboState.from_demo(data)
        self.credly_faults = credly_faults or FaultConfig()
        self.docebo_faults = docebo_faults or FaultConfig()
        self.credly_app = create_credly_app(self.credly_state, self.credly_faults)
        self.docebo_app = create_docebo_app(self.docebo_state, self.docebo_faults)
        policy = HttpPolicy(sleep=_instant)
        self.credly = CredlyClient(
            "http://credly.sandbox.test/v1",
            self.credly_state.organization_id,
            self.credly_state.token,
            policy=policy,
            transport=httpx.ASGITransport(app=self.credly_app),
        )
        self.docebo = DoceboClient(
            "http://docebo.sandbox.test",
            self.docebo_state.client_id,
            self.docebo_state.client_secret,
            policy=policy,
            transport=httpx.ASGITransport(app=self.docebo_app),
        )
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
