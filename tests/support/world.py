"""One builder for the test worlds (flows, console, serve, reliability): template ids, the rows of
both sandboxes' data, the settings every world starts from, and the two clients on in-process
sandboxes. Each world keeps only what makes it different (its organization, its learners)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx

from services.clients.credly import CredlyClient
from services.clients.docebo import DoceboClient
from services.clients.http import HttpPolicy
from services.sandbox.credly.state import CredlyState
from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.state import DoceboState

CREDLY_URL = "http://credly.sandbox.test/v1"
DOCEBO_URL = "http://docebo.sandbox.test"

# The settings (table S) every world configures; a world adds or overrides keys.
SETTINGS = {
    "NOTIFICATION_MAIL_ID": "lms-admin@example.com",
    "SYNC_REVOCATION": "true",
    "EXTERNAL_TRAINING_INSTITUTE_NAME": "Credly",
    "COURSE_ADDITIONAL_FIELD": "Credly badge",
    "EVIDENCE_TITLE": "Docebo achievement",
}


def template_id(n: int) -> str:
    """A Credly template id (a UUID) that reads as its number."""
    return str(uuid.UUID(int=n, version=4))


def template(tid: str, name: str, *, state: str = "active", expires_in_days: int | None = None) -> dict[str, Any]:
    return {"id": tid, "name": name, "state": state, "allow_duplicate_badges": False, "description": "",
            "default_expires_in_days": expires_in_days}


def learner(user_id: int, *, username: str | None = None, email: str | None = None,
            first_name: str | None = None, last_name: str | None = None) -> dict[str, Any]:
    """A Docebo user; by default `u<id>`, `First<id> Last<id>`, `learner<id>@example.com`."""
    return {"user_id": user_id, "username": username or f"u{user_id}", "first_name": first_name or f"First{user_id}",
            "last_name": last_name or f"Last{user_id}", "email": email or f"learner{user_id}@example.com"}


def course(id_course: int, name: str, code: str) -> dict[str, Any]:
    return {"id_course": id_course, "name": name, "code": code, "course_type": "elearning"}


def completed(course_id: int, user_id: int, when: str = "2025-03-01 10:00:00",
              validity_end: str | None = None) -> dict[str, Any]:
    """A completed course enrollment (F3a)."""
    return {"course_id": course_id, "user_id": user_id, "status": "completed", "enrolled_at": "2025-01-01 09:00:00",
            "completed_at": when, "validity_end": validity_end}


def demo_data(organization_id: str, parts: dict[str, Any], overrides: dict[str, Any] | None = None) -> DemoData:
    """Both sandboxes' data from a world's `parts` (templates, users, courses, …), a test's
    `overrides` replacing any of them; every list not given is empty."""
    empty: dict[str, Any] = {f.name: [] for f in dataclasses.fields(DemoData)
                             if f.name not in ("size", "seed", "organization_id")}
    return DemoData(size="test", seed=0, organization_id=organization_id, **{**empty, **parts, **(overrides or {})})


async def no_sleep(seconds: float) -> None:
    """HttpPolicy's pause between retries, made instant."""
    return None


def credly_client(state: CredlyState, app: Any, policy: HttpPolicy) -> CredlyClient:
    """The product's Credly client on the in-process sandbox `app` (httpx.ASGITransport)."""
    return CredlyClient(CREDLY_URL, state.organization_id, state.token, policy=policy,
                        transport=httpx.ASGITransport(app=app))


def docebo_client(state: DoceboState, app: Any, policy: HttpPolicy) -> DoceboClient:
    """The product's Docebo client on the in-process sandbox `app` (httpx.ASGITransport)."""
    return DoceboClient(DOCEBO_URL, state.client_id, state.client_secret, policy=policy,
                        transport=httpx.ASGITransport(app=app))
