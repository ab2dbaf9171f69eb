"""Bulk reads of the flows (services/flows/lookups.py): held badges are kept as the few fields the
F3c / F4 / ledger decisions read, taken as each page arrives (issue 8 memory)."""

from __future__ import annotations

from types import SimpleNamespace

from services.flows.lookups import HELD_FIELDS, HeldBadges, held_badges_of_templates
from tests.flows.world import T_FIRE, T_SAFETY, base_data


def credly_badge(n: int, state: str, *, issued: str, earner: str | None = None, email: str = "Ann@Example.com") -> dict:
    """A badge as Credly lists it: the decisions' fields among many others."""
    return {
        "id": f"b{n}", "state": state, "recipient_email": email, "issuer_earner_id": earner,
        "issued_at": issued, "expires_at": None, "replaces_badge_id": None,
        "badge_template": {"id": T_SAFETY.upper(), "name": "Safety Basics", "description": "x" * 2000,
                           "image": {"url": "https://example.com/i.png"}},
        "issuer": {"entities": [{"entity": {"name": "Org"}}]}, "image_url": "https://example.com/b.png",
        "evidence": [{"title": "t", "description": "d" * 500}], "badge_url": f"https://example.com/{n}",
    }


def test_held_badges_keep_only_the_fields_the_decisions_read():
    held = HeldBadges([
        credly_badge(1, "accepted", issued="2025-01-01T00:00:00Z"),
        credly_badge(2, "pending", issued="2025-03-01T00:00:00Z"),
        credly_badge(3, "accepted", issued="2024-06-01T00:00:00Z", earner="7"),
        credly_badge(4, "revoked", issued="2026-01-01T00:00:00Z"),  # not held: ignored
    ])
    assert len(held) == 3
    records = held.all("ann@example.com", T_SAFETY)
    assert all(set(r) == {*HELD_FIELDS, "badge_template_id"} for r in records)
    assert {r["badge_template_id"] for r in records} == {T_SAFETY.lower()}
    # the choice among several held badges is unchanged: the ledger's, then ours (L1), then the newest
    assert held.get("ANN@example.com", T_SAFETY, prefer_id="b1")["id"] == "b1"
    assert held.get("ann@example.com", T_SAFETY, user_id="7")["id"] == "b3"
    assert held.get("ann@example.com", T_SAFETY)["id"] == "b2"
    assert held.get("ann@example.com", T_FIRE) is None


async def test_held_badges_of_templates_reads_every_page_and_keeps_records(make_world):
    badges = [
        {"id": f"00000000-0000-4000-8000-{n:012d}", "badge_template_id": T_SAFETY if n % 3 else T_FIRE,
         "recipient_email": f"learner{n}@example.com", "issued_to_first_name": "F", "issued_to_last_name": "L",
         "issued_at": "2025-05-01T10:00:00.000Z", "expires_at": None, "state": "accepted" if n % 2 else "pending",
         "issuer_earner_id": None}
        for n in range(1, 131)  # three pages of 50
    ]
    w = make_world(base_data(badges=badges))
    job = SimpleNamespace(credly=w.credly, concurrency=lambda *clients: 4)
    held = await held_badges_of_templates(job, [T_SAFETY.lower()])
    assert len(held) == sum(1 for b in badges if b["badge_template_id"] == T_SAFETY)
    record = held.get("learner1@example.com", T_SAFETY)
    assert set(record) == {*HELD_FIELDS, "badge_template_id"} and record["state"] == "accepted"
    assert held.get("learner3@example.com", T_FIRE) is None  # another template: not read
