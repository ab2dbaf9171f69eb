"""Demo data generator (issue 3): contract keys, determinism, internal consistency, the cases the
flows must meet at every size (F1, F3b, F3c, F4, F5, L1, E1), and the large set's size targets.
Generation time is measured in benchmarks/demo_data.py, not here."""

from __future__ import annotations

import dataclasses
from collections import Counter
from functools import cache

import pytest

from services.sandbox.demo_data import REFERENCE_TIME, DemoData, generate

SIZES = ["small", "medium", "large"]
CONTRACT_KEYS = {
    "templates": {"id", "name", "state", "allow_duplicate_badges", "description", "default_expires_in_days"},
    "badges": {"id", "badge_template_id", "recipient_email", "issued_to_first_name", "issued_to_last_name",
               "issued_at", "expires_at", "state", "issuer_earner_id"},
    "users": {"user_id", "username", "first_name", "last_name", "email"},
    "courses": {"id_course", "name", "code", "course_type", "validity_days"},  # + validity_days (told the lead)
    "learning_plans": {"learning_plan_id", "code", "title", "course_ids"},
    "enrollments": {"course_id", "user_id", "status", "enrolled_at", "completed_at", "validity_end"},
    "certifications": {"id_cert", "code", "title", "validity_days"},
    "awards": {"id_award", "id_cert", "user_id", "issued_on", "expire_on"},
    "lp_enrollments": {"learning_plan_id", "user_id", "enrolled_at"},
    "course_fields": {"id", "name", "type", "options"},
    "course_field_values": {"course_id", "field_id", "value"},
}
DOCEBO_LIMIT = REFERENCE_TIME.strftime("%Y-%m-%d %H:%M:%S")
ISO_LIMIT = REFERENCE_TIME.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@cache
def world(size: str, seed: int = 0) -> DemoData:
    return generate(size, seed)


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="tiny"):
        generate("tiny", 0)  # type: ignore[arg-type]


def test_same_seed_same_world_other_seed_other_world():
    a, b = generate("small", 11), generate("small", 11)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    c = generate("small", 12)
    assert [u["email"] for u in c.users] != [u["email"] for u in a.users]
    assert [t["id"] for t in c.templates] != [t["id"] for t in a.templates]


def test_medium_is_deterministic_too():
    assert dataclasses.asdict(generate("medium", 5)) == dataclasses.asdict(world("medium", 5))


@pytest.mark.parametrize("size", SIZES)
def test_contract_keys(size):
    data = world(size)
    assert isinstance(data.organization_id, str) and len(data.organization_id) == 36
    for name, keys in CONTRACT_KEYS.items():
        rows = getattr(data, name)
        assert rows, name
        assert all(set(r) == keys for r in rows), name


@pytest.mark.parametrize("size", SIZES)
def test_ids_are_unique_and_references_hold(size):
    d = world(size)
    users = {u["user_id"] for u in d.users}
    courses = {c["id_course"] for c in d.courses}
    assert len(users) == len(d.users) and len(courses) == len(d.courses)
    assert len({u["email"].lower() for u in d.users}) == len(d.users)
    assert len({u["username"] for u in d.users}) == len(d.users)
    assert len({t["id"] for t in d.templates}) == len(d.templates)
    assert len({b["id"] for b in d.badges}) == len(d.badges)
    pairs = [(e["course_id"], e["user_id"]) for e in d.enrollments]
    assert len(set(pairs)) == len(pairs)
    assert all(c in courses and u in users for c, u in pairs)
    for lp in d.learning_plans:
        assert lp["course_ids"] and set(lp["course_ids"]) <= courses
    certs = {c["id_cert"] for c in d.certifications}
    assert all(a["id_cert"] in certs and a["user_id"] in users for a in d.awards)
    assert len({(a["id_cert"], a["user_id"]) for a in d.awards}) == len(d.awards)
    assert len({a["id_award"] for a in d.awards}) == len(d.awards)
    templates = {t["id"]: t for t in d.templates}
    assert all(b["badge_template_id"] in templates for b in d.badges)
    assert all(templates[b["badge_template_id"]]["state"] != "draft" for b in d.badges)


@pytest.mark.parametrize("size", SIZES)
def test_dates_are_consistent(size):
    d = world(size)
    for e in d.enrollments:
        assert e["enrolled_at"] < DOCEBO_LIMIT
        if e["status"] == "completed":
            assert e["enrolled_at"] < e["completed_at"] < DOCEBO_LIMIT
        else:
            assert e["completed_at"] is None and e["validity_end"] is None
        if e["validity_end"]:
            assert e["validity_end"] > e["completed_at"]
    for a in d.awards:
        assert a["issued_on"] < DOCEBO_LIMIT
        assert a["expire_on"] is None or a["expire_on"] > a["issued_on"]
    for b in d.badges:
        assert b["issued_at"] < ISO_LIMIT and b["issued_at"].endswith("Z")
        assert b["expires_at"] is None or b["expires_at"] > b["issued_at"]


@pytest.mark.parametrize("size", SIZES)
def test_every_size_has_the_cases_the_flows_need(size):
    d = world(size)
    # templates (F1): paging, duplicate names, archived and draft, duplicates allowed
    assert len(d.templates) > 50
    names = Counter(t["name"] for t in d.templates)
    assert sum(1 for n in names.values() if n > 1) >= 3
    states = Counter(t["state"] for t in d.templates)
    assert states["archived"] >= 3 and states["draft"] >= 2 and states["active"] > 40
    assert any(t["allow_duplicate_badges"] for t in d.templates)
    assert any(t["default_expires_in_days"] for t in d.templates)
    assert any(t["default_expires_in_days"] is None for t in d.templates)

    # learning plans (F3b): completed and unfinished plan enrollments; members are enrolled in every course
    status = {(e["course_id"], e["user_id"]): e["status"] for e in d.enrollments}
    plans = {lp["learning_plan_id"]: lp for lp in d.learning_plans}
    outcome = Counter()
    for le in d.lp_enrollments:
        lp = plans[le["learning_plan_id"]]
        assert all((c, le["user_id"]) in status for c in lp["course_ids"])
        done = all(status[(c, le["user_id"])] == "completed" for c in lp["course_ids"])
        outcome["completed" if done else "unfinished"] += 1
    assert outcome["completed"] >= 1 and outcome["unfinished"] >= 1

    # certifications (F4, E1): awards with and without expiry
    assert any(a["expire_on"] for a in d.awards) and any(a["expire_on"] is None for a in d.awards)
    assert any(c["validity_days"] is None for c in d.certifications)
    assert any(c["validity_days"] for c in d.certifications)

    # course completions with and without expiry (E1)
    assert any(e["validity_end"] for e in d.enrollments)
    assert any(e["status"] == "completed" and e["validity_end"] is None for e in d.enrollments)
    assert any(c["validity_days"] for c in d.courses) and any(c["validity_days"] is None for c in d.courses)

    # badges (F3c, F5, L1)
    assert {"pending", "accepted", "revoked", "rejected"} <= {b["state"] for b in d.badges}
    by_email = {u["email"].lower(): u for u in d.users}
    by_integration = [b for b in d.badges if b["issuer_earner_id"] is not None]
    by_hand = [b for b in d.badges if b["issuer_earner_id"] is None and b["recipient_email"].lower() in by_email]
    assert by_integration and by_hand
    for b in by_integration:
        assert b["issuer_earner_id"] == str(by_email[b["recipient_email"].lower()]["user_id"])
    credly_only = {b["recipient_email"].lower() for b in d.badges} - set(by_email)
    assert credly_only
    docebo_only = set(by_email) - {b["recipient_email"].lower() for b in d.badges}
    assert docebo_only
    emails = [b["recipient_email"] for b in d.badges]
    assert any(e != e.lower() and e.lower() in by_email for e in emails)

    # no duplicate pending/accepted badge unless its template allows it (Credly would refuse it)
    allow = {t["id"]: t["allow_duplicate_badges"] for t in d.templates}
    held = Counter(
        (b["badge_template_id"], b["recipient_email"].lower()) for b in d.badges if b["state"] in ("pending", "accepted")
    )
    assert all(n == 1 or allow[key[0]] for key, n in held.items())


def test_small_is_small():
    d = world("small")
    assert len(d.users) == 60 and len(d.courses) == 20 and len(d.enrollments) < 500 and len(d.badges) < 100


def test_large_meets_the_size_targets():
    d = world("large")
    assert len(d.users) >= 20_000
    assert len(d.courses) >= 1_000
    assert len(d.learning_plans) >= 100
    assert len(d.templates) >= 300
    assert sum(1 for e in d.enrollments if e["status"] == "completed") >= 50_000


def test_names_look_real():
    d = world("small")
    assert all(u["first_name"][0].isupper() and u["last_name"][0].isupper() for u in d.users)
    assert all("@" in u["email"] and u["email"] == u["email"].lower() for u in d.users)
    assert all(c["name"] and c["code"].startswith("CRS-") for c in d.courses)
