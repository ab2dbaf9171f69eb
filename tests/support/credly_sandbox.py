"""A small, exactly known Credly world for the sandbox tests (no demo generator involved); the
fixtures on it are in tests/sandbox/credly/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from services.sandbox.credly.state import CredlyState

ORG = "0b5e2a52-4f7e-4d2b-9a55-1f0c4c1d9e01"
TOKEN = "tok-credly-test"
BASE = "http://credly.test/v1"

T_ACTIVE = "11111111-1111-4111-8111-111111111111"
T_DUPES = "22222222-2222-4222-8222-222222222222"
T_ARCHIVED = "33333333-3333-4333-8333-333333333333"
T_DRAFT = "44444444-4444-4444-8444-444444444444"
T_EXPIRING = "55555555-5555-4555-8555-555555555555"


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def world(extra_templates: int = 0) -> dict:
    """Five named templates (+ ``extra_templates`` active "Course NNN" ones) and six badges."""
    templates = [
        {"id": T_ACTIVE, "name": "Cloud Security Foundations", "state": "active",
         "allow_duplicate_badges": False, "description": "Shows cloud basics.", "default_expires_in_days": None},
        {"id": T_DUPES, "name": "First Aid Practitioner", "state": "active",
         "allow_duplicate_badges": True, "description": "Refreshed every year.", "default_expires_in_days": None},
        {"id": T_ARCHIVED, "name": "Legacy Archery", "state": "archived",
         "allow_duplicate_badges": False, "description": "No longer offered.", "default_expires_in_days": None},
        {"id": T_DRAFT, "name": "Draft Robotics", "state": "draft",
         "allow_duplicate_badges": False, "description": "Work in progress.", "default_expires_in_days": None},
        {"id": T_EXPIRING, "name": "Forklift Operation Expert", "state": "active",
         "allow_duplicate_badges": False, "description": "Licence style badge.", "default_expires_in_days": 365},
    ]
    templates += [
        {"id": f"99999999-0000-4000-8000-{i:012d}", "name": f"Course {i:03d}", "state": "active",
         "allow_duplicate_badges": False, "description": "", "default_expires_in_days": None}
        for i in range(extra_templates)
    ]

    def badge(n, template, email, first, last, state, issued, earner=None, expires=None):
        return {"id": f"bbbbbbbb-0000-4000-8000-{n:012d}", "badge_template_id": template,
                "recipient_email": email, "issued_to_first_name": first, "issued_to_last_name": last,
                "issued_at": issued, "expires_at": expires, "state": state, "issuer_earner_id": earner}

    badges = [
        badge(1, T_ACTIVE, "ada@example.com", "Ada", "Lovelace", "accepted", "2025-01-10T09:00:00.000Z", "101"),
        badge(2, T_ACTIVE, "grace@example.com", "Grace", "Hopper", "pending", "2025-03-01T09:00:00.000Z", "102"),
        badge(3, T_EXPIRING, "Ada@Example.com", "Ada", "Lovelace", "revoked", "2024-06-01T09:00:00.000Z", None,
              "2025-06-01T09:00:00.000Z"),
        badge(4, T_ARCHIVED, "alan@example.com", "Alan", "Turing", "accepted", "2023-02-02T09:00:00.000Z"),
        badge(5, T_DUPES, "grace@example.com", "Grace", "Hopper", "rejected", "2025-02-01T09:00:00.000Z"),
        badge(6, T_EXPIRING, "linus@example.org", "Linus", "Torvalds", "pending", "2025-04-01T09:00:00.000Z", "103",
              "2026-04-01T09:00:00.000Z"),
    ]
    return {"organization_id": ORG, "templates": templates, "badges": badges}


def make_state(extra_templates: int = 0, clock: FixedClock | None = None) -> CredlyState:
    return CredlyState.from_demo(world(extra_templates), token=TOKEN, clock=clock or FixedClock())


def client_for(app, *, auth=(TOKEN, ""), base_url: str = BASE) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, auth=auth)


def org(path: str = "") -> str:
    return f"/organizations/{ORG}{path}"


def issue_fields(**over) -> dict:
    fields = {
        "recipient_email": "new.person@example.com",
        "issued_to_first_name": "New",
        "issued_to_last_name": "Person",
        "badge_template_id": T_ACTIVE,
        "issued_at": "2026-04-01 09:41:00 -0500",
    }
    fields.update(over)
    return {k: v for k, v in fields.items() if v is not ...}
