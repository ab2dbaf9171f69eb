"""Deterministic demo data for both sandboxes (issue 3).

`generate(size, seed)` builds one consistent world: a Docebo tenant (users, courses, learning
plans, enrollments, certifications and their awards) and a Credly organisation (badge templates
and issued badges) whose recipients overlap the Docebo users. The same `(size, seed)` always
gives the same data (Python's `random.Random` and a seeded Faker instance; no clock, no set
iteration order).

What each size contains (seed 0; other seeds differ by a few per cent; generation time measured
by benchmarks/docebo_sandbox.py on 2 cores):

=====================  =======  ========  =========
                       small    medium    large
=====================  =======  ========  =========
Docebo users           60       2,000     20,000
courses                20       150       1,000
learning plans         6        25        120
LP enrollments         41       985       13,526
course enrollments     357      9,919     103,171
  of which completed   233      6,270     65,041
certifications         5        12        40
certification awards   34       718       9,639
badge templates        60       120       320
issued badges          80       2,500     25,000
Credly-only people     8        150       1,500
generation time        0.2 s    0.3 s     1.6 s
=====================  =======  ========  =========

Cases present at EVERY size (the flows must handle them; tests/sandbox/test_demo_data.py
checks each one): more than 50 templates (Credly pages hold 50); three pairs of templates
sharing a name (F1); archived and draft templates; templates that allow duplicate badges;
learning plans with completed and with unfinished enrollments (F3b); certifications with awards,
with and without expiry (F4, E1); badges in states pending, accepted, rejected and revoked (F5),
some issued by the integration (`issuer_earner_id` = the Docebo user id as a string, L1) and
some by hand (`issuer_earner_id` None); badge recipients unknown to Docebo and Docebo users with
no badge; one badge whose recipient e-mail differs only in letter case from its Docebo user's;
courses whose completions carry an expiry (`validity_end`) and courses without.

Date formats: the Docebo half uses Docebo's `"YYYY-MM-DD HH:MM:SS"` (UTC); the Credly half uses
ISO 8601 with milliseconds and `Z` (`"2025-03-13T14:58:26.000Z"`), as each API returns them. All
dates lie before `REFERENCE_TIME` (2026-11-01 00:00:00 UTC).

Keys beyond the team contract (common.md), told to the lead: `size`, `seed`; courses carry
`validity_days` (int or None: completions of that course expire that many days later);
`lp_enrollments: [{learning_plan_id, user_id, enrolled_at}]` (who is enrolled in which plan; a
plan's status is derived from the course enrollments of its courses); `course_fields: [{id, name,
type, options: [{id, label}]}]` (additional fields that already exist on the tenant, unrelated
to the badge dropdown, so the product must pick its field by name) and `course_field_values:
[{course_id, field_id, value}]`.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from faker import Faker

Size = Literal["small", "medium", "large"]

REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
_WINDOW_START = REFERENCE_TIME - timedelta(days=3 * 365)
_WINDOW_SECONDS = int((REFERENCE_TIME - _WINDOW_START).total_seconds())
_DAY = 86_400


@dataclass(frozen=True)
class _Plan:
    users: int
    courses: int
    learning_plans: int
    lp_users: tuple[int, int]  # learners enrolled per plan (min, max)
    enrollments_per_user: tuple[int, int]
    certifications: int
    awards_share: float  # share of users holding an award of some certification
    templates: int
    badges: int
    credly_only: int


PLANS: dict[str, _Plan] = {
    "small": _Plan(60, 20, 6, (5, 9), (2, 6), 5, 0.45, 60, 80, 8),
    "medium": _Plan(2_000, 150, 25, (25, 55), (1, 6), 12, 0.3, 120, 2_500, 150),
    "large": _Plan(20_000, 1_000, 120, (80, 150), (1, 5), 40, 0.4, 320, 25_000, 1_500),
}


@dataclass
class DemoData:
    """One generated world: plain dicts only, ready for `from_demo` of either sandbox."""

    size: str
    seed: int
    # Credly half
    organization_id: str
    templates: list[dict[str, Any]]
    badges: list[dict[str, Any]]
    # Docebo half
    users: list[dict[str, Any]]
    courses: list[dict[str, Any]]
    learning_plans: list[dict[str, Any]]
    enrollments: list[dict[str, Any]]
    certifications: list[dict[str, Any]]
    awards: list[dict[str, Any]]
    lp_enrollments: list[dict[str, Any]] = field(default_factory=list)
    course_fields: list[dict[str, Any]] = field(default_factory=list)
    course_field_values: list[dict[str, Any]] = field(default_factory=list)


# --- vocabulary -----------------------------------------------------------------------------

_TOPICS = [
    "Cloud Security", "Data Privacy", "Workplace Safety", "Project Management", "Agile Delivery",
    "Customer Success", "Sales Negotiation", "Leadership Essentials", "Financial Literacy",
    "Python Programming", "Data Analytics", "Machine Learning", "Network Fundamentals",
    "Kubernetes Operations", "DevOps Practices", "UX Research", "Technical Writing",
    "Supply Chain", "Lean Manufacturing", "Quality Assurance", "Risk Management",
    "Anti-Bribery Compliance", "Diversity and Inclusion", "First Aid", "Fire Warden",
    "Forklift Operation", "Food Hygiene", "Conflict Resolution", "Public Speaking",
    "Time Management", "Coaching Skills", "Change Management", "Product Management",
    "Service Design", "IT Service Management", "Cyber Awareness", "Incident Response",
    "Identity and Access", "Database Administration", "SQL Querying", "Excel Modelling",
    "Business Writing", "Procurement", "Contract Law Basics", "Export Controls",
    "Environmental Health", "Sustainability Reporting", "Clinical Documentation",
    "Infection Control", "Patient Experience", "Retail Operations", "Hospitality Service",
    "Warehouse Logistics", "Fleet Safety", "Electrical Safety", "Working at Height",
    "Manual Handling", "Mental Health First Aid", "Remote Team Leadership", "Hiring and Interviewing",
    "Performance Reviews", "Budget Planning", "Accounts Payable", "Payroll Compliance",
    "Brand Guidelines", "Content Marketing", "Search Marketing", "Social Media Strategy",
    "Customer Onboarding", "Partner Enablement", "API Design", "Software Testing",
]
_LEVELS = ["Foundations", "Practitioner", "Associate", "Professional", "Expert", "Champion"]
_COURSE_KINDS = [
    "Fundamentals", "Essentials", "Workshop", "Deep Dive", "Hands-on Lab", "Refresher",
    "Masterclass", "Case Studies", "Assessment", "Bootcamp", "Primer", "for Managers",
    "in Practice", "Advanced Topics", "Quick Start", "Certification Prep",
]
_PLAN_KINDS = ["Learning Path", "Certification Track", "Onboarding Journey"]
_COURSE_TYPES = ["elearning", "elearning", "elearning", "classroom", "webinar"]


# --- helpers ----------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _docebo_dt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _random_time(rng: random.Random, start: datetime = _WINDOW_START, end: datetime = REFERENCE_TIME) -> datetime:
    span = int((end - start).total_seconds())
    if span <= 1:
        return start
    return start + timedelta(seconds=rng.randrange(span))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _name_pool(fake: Faker, method: str, n: int) -> list[str]:
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < n and attempts < n * 20:
        value = getattr(fake, method)()
        attempts += 1
        if _slug(value):
            seen.setdefault(value, None)
    return list(seen)


# --- generator --------------------------------------------------------------------------------


def generate(size: Size = "small", seed: int = 0) -> DemoData:
    """Build the demo world for `size` ("small", "medium" or "large"), deterministic by `seed`."""
    if size not in PLANS:
        raise ValueError(f"unknown demo data size {size!r}; expected one of {', '.join(PLANS)}")
    plan = PLANS[size]
    rng = random.Random(f"credly-console-demo:{size}:{seed}")
    fake = Faker("en_US")
    fake.seed_instance(seed)

    first_names = _name_pool(fake, "first_name", 400)
    last_names = _name_pool(fake, "last_name", 600)
    company = fake.company()
    domain = (_slug(company.split(",")[0].split(" ")[0]) or "acme") + "-learning.example"
    partner_domains = [(_slug(fake.last_name()) or "partner") + f"{i}.example" for i in range(6)]

    users = _users(rng, plan, first_names, last_names, domain)
    courses = _courses(rng, plan)
    course_fields, course_field_values = _course_fields(rng, courses)
    enrollments = _enrollments(rng, plan, users, courses)
    learning_plans, lp_enrollments = _learning_plans(rng, plan, users, courses, enrollments)
    certifications, awards = _certifications(rng, plan, users)
    organization_id = _uuid(rng)
    templates = _templates(rng, plan)
    badges = _badges(rng, plan, users, templates, first_names, last_names, partner_domains)

    return DemoData(
        size=size,
        seed=seed,
        organization_id=organization_id,
        templates=templates,
        badges=badges,
        users=users,
        courses=courses,
        learning_plans=learning_plans,
        enrollments=list(enrollments.values()),
        certifications=certifications,
        awards=awards,
        lp_enrollments=lp_enrollments,
        course_fields=course_fields,
        course_field_values=course_field_values,
    )


def _users(rng, plan: _Plan, first_names, last_names, domain) -> list[dict]:
    users = []
    taken: dict[str, int] = {}
    for i in range(plan.users):
        first = rng.choice(first_names)
        last = rng.choice(last_names)
        base = f"{_slug(first)}.{_slug(last)}"
        n = taken.get(base, 0) + 1
        taken[base] = n
        username = base if n == 1 else f"{base}{n}"
        users.append(
            {
                "user_id": 10_001 + i,
                "username": username,
                "first_name": first,
                "last_name": last,
                "email": f"{username}@{domain}",
            }
        )
    return users


def _courses(rng, plan: _Plan) -> list[dict]:
    combos = [(t, k) for t in _TOPICS for k in _COURSE_KINDS]
    rng.shuffle(combos)
    courses = []
    for i in range(plan.courses):
        topic, kind = combos[i % len(combos)]
        name = f"{topic} {kind}" if kind.startswith(("for ", "in ")) else f"{topic}: {kind}"
        if i >= len(combos):
            name += f" (Part {i // len(combos) + 1})"
        # Every fourth course (and course 0) gives completions an expiry; course 1 never does.
        if i == 0 or (i != 1 and rng.random() < 0.25):
            validity = rng.choice([365, 730, 1095])
        else:
            validity = None
        courses.append(
            {
                "id_course": 101 + i,
                "name": name,
                "code": f"CRS-{101 + i:04d}",
                "course_type": rng.choice(_COURSE_TYPES),
                "validity_days": validity,
            }
        )
    return courses


def _course_fields(rng, courses) -> tuple[list[dict], list[dict]]:
    fields = [
        {
            "id": 1,
            "name": "Delivery region",
            "type": "dropdown",
            "options": [{"id": 1, "label": "AMER"}, {"id": 2, "label": "EMEA"}, {"id": 3, "label": "APAC"}],
        },
        {"id": 2, "name": "Cost center", "type": "textfield", "options": []},
    ]
    values = []
    for course in courses:
        if rng.random() < 0.6:
            values.append({"course_id": course["id_course"], "field_id": 1, "value": rng.randint(1, 3)})
        if rng.random() < 0.3:
            values.append({"course_id": course["id_course"], "field_id": 2, "value": f"CC-{rng.randint(100, 999)}"})
    return fields, values


def _enrollment(rng, user_id: int, course: dict, status: str, enrolled_at: datetime | None = None) -> dict:
    if enrolled_at is None:
        enrolled_at = _random_time(rng, _WINDOW_START, REFERENCE_TIME - timedelta(days=2))
    record = {
        "course_id": course["id_course"],
        "user_id": user_id,
        "status": status,
        "enrolled_at": _docebo_dt(enrolled_at),
        "completed_at": None,
        "validity_end": None,
    }
    if status == "completed":
        _complete(rng, record, course, enrolled_at)
    return record


def _complete(rng, record: dict, course: dict, enrolled_at: datetime) -> None:
    latest = min(REFERENCE_TIME - timedelta(hours=1), enrolled_at + timedelta(days=120))
    done = _random_time(rng, enrolled_at + timedelta(hours=1), latest)
    record["status"] = "completed"
    record["completed_at"] = _docebo_dt(done)
    if course["validity_days"]:
        record["validity_end"] = _docebo_dt(done + timedelta(days=course["validity_days"]))


def _enrollments(rng, plan: _Plan, users, courses) -> dict[tuple[int, int], dict]:
    enrollments: dict[tuple[int, int], dict] = {}
    lo, hi = plan.enrollments_per_user
    k_max = min(hi, len(courses))
    for user in users:
        if rng.random() < 0.08:
            continue  # some learners have no enrollment at all
        for course in rng.sample(courses, rng.randint(min(lo, k_max), k_max)):
            r = rng.random()
            status = "completed" if r < 0.63 else ("in_progress" if r < 0.86 else "not_started")
            key = (course["id_course"], user["user_id"])
            enrollments[key] = _enrollment(rng, user["user_id"], course, status)
    return enrollments


def _learning_plans(rng, plan: _Plan, users, courses, enrollments) -> tuple[list[dict], list[dict]]:
    by_id = {c["id_course"]: c for c in courses}
    kinds = [(t, k) for t in _TOPICS for k in _PLAN_KINDS]
    rng.shuffle(kinds)
    lps: list[dict[str, Any]] = []
    for i in range(plan.learning_plans):
        topic, kind = kinds[i % len(kinds)]
        title = f"{topic} {kind}" + (f" {i // len(kinds) + 1}" if i >= len(kinds) else "")
        n_courses = rng.randint(2, min(5, len(courses)))
        lps.append(
            {
                "learning_plan_id": 11 + i,
                "code": f"LP-{11 + i:03d}",
                "title": title,
                "course_ids": sorted(c["id_course"] for c in rng.sample(courses, n_courses)),
            }
        )

    # Decide who is enrolled in each plan and whether they finish it. Completed plan enrollments
    # are applied first so that "unfinished" ones can keep one course open without being undone.
    wanted: list[tuple[dict, dict, bool]] = []
    for j, lp in enumerate(lps):
        members = rng.sample(users, min(len(users), rng.randint(*plan.lp_users)))
        for m, user in enumerate(members):
            finish = rng.random() < 0.45
            if j == 0 and m == 0:
                finish = True  # at least one completed plan enrollment
            if j == 0 and m == 1:
                finish = False
            wanted.append((lp, user, finish))

    lp_enrollments = []
    forced: dict[int, set[int]] = {}  # user -> courses completed because of a completed plan
    for lp, user, finish in sorted(wanted, key=lambda w: not w[2]):
        uid = user["user_id"]
        for cid in lp["course_ids"]:
            key = (cid, uid)
            existing = enrollments.get(key)
            if finish:
                forced.setdefault(uid, set()).add(cid)
                if existing is None:
                    enrollments[key] = _enrollment(rng, uid, by_id[cid], "completed")
                elif existing["status"] != "completed":
                    enrolled = datetime.strptime(existing["enrolled_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                    _complete(rng, existing, by_id[cid], enrolled)
            elif existing is None:
                enrollments[key] = _enrollment(rng, uid, by_id[cid], rng.choice(["completed", "in_progress", "not_started"]))
        if not finish:
            open_candidates = [c for c in lp["course_ids"] if c not in forced.get(uid, set())]
            if open_candidates and all(enrollments[(c, uid)]["status"] == "completed" for c in lp["course_ids"]):
                rec = enrollments[(rng.choice(open_candidates), uid)]
                rec.update(status="in_progress", completed_at=None, validity_end=None)
        earliest = min(enrollments[(c, uid)]["enrolled_at"] for c in lp["course_ids"])
        lp_enrollments.append({"learning_plan_id": lp["learning_plan_id"], "user_id": uid, "enrolled_at": earliest})
    lp_enrollments.sort(key=lambda e: (e["learning_plan_id"], e["user_id"]))
    return lps, lp_enrollments


def _certifications(rng, plan: _Plan, users) -> tuple[list[dict], list[dict]]:
    certs: list[dict[str, Any]] = []
    topics = rng.sample(_TOPICS, plan.certifications)
    for i in range(plan.certifications):
        if i == 0:
            validity = None
        elif i == 1:
            validity = 365
        else:
            validity = rng.choice([None, 365, 730, 1095])
        certs.append(
            {
                "id_cert": 1 + i,
                "code": "CERT-" + "".join(w[0] for w in topics[i].split()).upper() + f"-{1 + i:02d}",
                "title": f"Certified {topics[i]} Specialist",
                "validity_days": validity,
            }
        )
    awards: list[dict[str, Any]] = []
    holders = rng.sample(users, max(2, int(len(users) * plan.awards_share)))
    for n, user in enumerate(holders):
        how_many = 1 if rng.random() < 0.8 else 2
        chosen = [certs[n % 2]] if n < 4 else rng.sample(certs, how_many)  # first holders: both kinds
        for cert in chosen:
            issued = _random_time(rng)
            expire = issued + timedelta(days=cert["validity_days"]) if cert["validity_days"] else None
            awards.append(
                {
                    "id_award": 5_001 + len(awards),
                    "id_cert": cert["id_cert"],
                    "user_id": user["user_id"],
                    "issued_on": _docebo_dt(issued),
                    "expire_on": _docebo_dt(expire) if expire else None,
                }
            )
    return certs, awards


def _templates(rng, plan: _Plan) -> list[dict]:
    combos = rng.sample([(t, lvl) for t in _TOPICS for lvl in _LEVELS], plan.templates)
    names = [f"{t} {lvl}" for t, lvl in combos]
    # Three later templates reuse earlier names (F1: first retrieved wins, later ones skipped).
    for dup, orig in ((plan.templates - 1, 3), (plan.templates - 5, 10), (plan.templates // 2, 20)):
        names[dup] = names[orig]
    n_archived = max(3, plan.templates * 8 // 100)
    n_draft = max(2, plan.templates * 4 // 100)
    indices = list(range(30, plan.templates - 6))  # keep the duplicated names' originals active
    rng.shuffle(indices)
    archived = set(indices[:n_archived])
    draft = set(indices[n_archived : n_archived + n_draft])
    templates = []
    for i, name in enumerate(names):
        state = "archived" if i in archived else ("draft" if i in draft else "active")
        templates.append(
            {
                "id": _uuid(rng),
                "name": name,
                "state": state,
                "allow_duplicate_badges": i == 7 or rng.random() < 0.04,
                "description": f"Earners of this badge have shown {combos[i][1].lower()}-level skill in "
                f"{combos[i][0].lower()}.",
                "default_expires_in_days": rng.choice([None, None, None, 365, 730]) if i != 0 else None,
            }
        )
    return templates


def _badges(rng, plan: _Plan, users, templates, first_names, last_names, partner_domains) -> list[dict]:
    issuable = [t for t in templates if t["state"] in ("active", "archived")]
    active = [t for t in templates if t["state"] == "active"]
    outsiders = []
    for i in range(plan.credly_only):
        first, last = rng.choice(first_names), rng.choice(last_names)
        outsiders.append(
            {
                "first_name": first,
                "last_name": last,
                "email": f"{_slug(first)}.{_slug(last)}{i}@{partner_domains[i % len(partner_domains)]}",
                "user_id": None,
            }
        )
    holding: set[tuple[str, str]] = set()  # (template id, e-mail lower) with a pending/accepted badge
    badges: list[dict] = []

    def add(person: dict, template: dict, state: str, by_integration: bool, email: str | None = None) -> None:
        email = email or person["email"]
        key = (template["id"], email.lower())
        if state in ("pending", "accepted"):
            if key in holding and not template["allow_duplicate_badges"]:
                return
            holding.add(key)
        issued = _random_time(rng)
        days = template["default_expires_in_days"]
        if days is None and rng.random() < 0.2:
            days = rng.choice([365, 730])
        expires = issued + timedelta(days=days) if days else None
        badges.append(
            {
                "id": _uuid(rng),
                "badge_template_id": template["id"],
                "recipient_email": email,
                "issued_to_first_name": person["first_name"],
                "issued_to_last_name": person["last_name"],
                "issued_at": _iso(issued),
                "expires_at": _iso(expires) if expires else None,
                "state": state,
                "issuer_earner_id": str(person["user_id"]) if by_integration else None,
            }
        )

    # The cases every size must show, first and explicitly.
    u = users
    add(u[0], active[0], "pending", True)
    add(u[1], active[1], "accepted", True)
    add(u[2], active[2], "revoked", True)
    add(u[3], active[3], "rejected", False)
    add(u[4], active[4], "accepted", False)
    add(u[5], active[5], "pending", False)
    add(outsiders[0], active[6], "accepted", False)
    add(outsiders[1], active[0], "pending", False)
    mixed = u[6]["email"][0].upper() + u[6]["email"][1:]
    add(u[6], active[8], "accepted", False, email=mixed)

    # The rest at random: about one recipient in five is unknown to Docebo (when there are any).
    badge_users = rng.sample(users, max(1, len(users) * 2 // 5))
    while len(badges) < plan.badges:
        if rng.random() < 0.8:
            person = rng.choice(badge_users)
        else:
            person = rng.choice(outsiders)
        template = rng.choice(issuable)
        r = rng.random()
        state = "accepted" if r < 0.62 else "pending" if r < 0.82 else "revoked" if r < 0.92 else "rejected"
        by_integration = person["user_id"] is not None and rng.random() < 0.5
        add(person, template, state, by_integration)
    return badges
