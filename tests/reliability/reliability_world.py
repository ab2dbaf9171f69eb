"""Helpers shared by the reliability tests (issue 8): one world with work in BOTH batch directions, built
from the flow tests' helpers (tests/flows/world.py) so every reliability test drives the same
product code against the same in-process sandboxes.

* F7 (docebo-to-credly): `N_LEARNERS` learners completed course 101, whose dropdown names
  "Safety Basics" (F3a) → N badges, 50 per batch call, i.e. several `/badges/batch` calls; 20
  of them hold the CERT-OP award mapped to "Certified Operator" (F4).
* F6 (credly-to-docebo): `N_IMPORTED` badges of "Partner Skills" issued by hand in Credly,
  mapped to an external training AND to the CERT-PARTNER certification (F5) → one external
  training and one award each, one create call each.
"""

from __future__ import annotations

import dataclasses

from tests.flows.test_kill_and_cli import _state
from tests.flows.world import T_CERT, T_IMPORT, base_data
from tests.support.world import completed, learner

N_LEARNERS = 160
N_AWARDS = 20
N_IMPORTED = 40

MAPPINGS = [
    {"template_id": T_CERT, "certification_code": "CERT-OP"},
    {"template_id": T_IMPORT, "import_as_external_training": True, "certification_code": "CERT-PARTNER"},
]


def both_ways_data(n_learners: int = N_LEARNERS, n_imported: int = N_IMPORTED):
    users = [learner(i) for i in range(1, n_learners + 1)]
    enrollments = [completed(101, i, f"2025-03-{1 + i % 28:02d} 10:00:00") for i in range(1, n_learners + 1)]
    awards = [
        {"id_award": 100 + i, "id_cert": 1, "user_id": i, "issued_on": "2025-04-01 00:00:00", "expire_on": "2099-04-01 00:00:00"}
        for i in range(1, N_AWARDS + 1)
    ]
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
        for i in range(1, n_imported + 1)
    ]
    return dataclasses.replace(base_data(users=users, enrollments=enrollments, awards=awards), badges=badges)


async def prepare(world) -> None:
    """F1, F2, course 101 → "Safety Basics", and the mappings."""
    from services.store.mappings import MappingInput, add_mapping

    await world.prepare_dropdown({101: "Safety Basics"})
    for m in MAPPINGS:
        add_mapping(world.store, MappingInput(**m))


def end_state(world) -> tuple:
    """Badges, external trainings and awards with their dates (tests/flows' comparison)."""
    return _state(world.credly_state, world.docebo_state)


def assert_no_duplicates(world) -> None:
    live = [
        (b.recipient_email.lower(), b.template_id)
        for b in world.credly_state.badges.values()
        if b.state in ("pending", "accepted")
    ]
    assert len(live) == len(set(live)), "a learner holds two live badges of one template"
    trainings = [(t["user_id"], t["course_name"]) for t in world.docebo_state.external_trainings.values()]
    assert len(trainings) == len(set(trainings)), "an external training was created twice"
    awards = [(a["user_id"], a["id_cert"]) for a in world.docebo_state.awards.values()]
    assert len(awards) == len(set(awards)), "a certification was awarded twice"
    left = world.store.db.execute("SELECT count(*) FROM ledger WHERE status = 'intent'").fetchone()[0]
    assert left == 0, "the ledger still holds unsettled intents"


class VirtualClock:
    """Time that passes only when the client sleeps: the sandbox's rate-limit window reads it
    (FaultConfig.clock) and the clients' retry pauses advance it (HttpPolicy.sleep), so 429
    bursts with Retry-After of tens of seconds play out instantly and deterministically."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
