"""Crash: `credly-console sync` SIGKILLed at a seeded random point, then run again (issue 8; F7,
F6 "resumable", "never twice").

tests/flows/test_kill_and_cli.py kills each batch at four fixed points in a row. Here every trial
starts from fresh sandboxes and kills ONE run at a point drawn from a seeded generator — while it
reads, just before the sandbox applies the k-th write call of the run (its intents committed,
nothing created), or just after (created, the answer never arrives) — and the next run must
converge on the state an uninterrupted run reaches, with nothing created twice. Three trials per
direction; the machinery (real servers, the CLI in a subprocess, the kill hooks in the sandbox
state) is the flow tests' own.
"""

from __future__ import annotations

import random

import pytest

from tests.flows.test_kill_and_cli import _kill_and_rerun, _Killer
from tests.reliability.reliability_world import MAPPINGS, N_AWARDS, N_IMPORTED, N_LEARNERS, both_ways_data

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

BATCH = 50  # badges per /badges/batch call


class RandomKill(_Killer):
    """One kill point for the run, drawn uniformly by `random.Random(seed)` from every point the
    run passes: its read of the enrollments (F7) / external trainings (F6), and before or after
    each of its write calls."""

    def __init__(self, flow: str, seed: int) -> None:
        rng = random.Random(seed)
        if flow == "docebo-to-credly":
            self.reads, self.writes_on, self.methods = ("docebo", "iter_enrollments"), "credly", ("issue_batch", "issue")
            writes = -(-(N_LEARNERS + N_AWARDS) // BATCH)  # batch calls of the first run
        else:
            self.reads, self.writes_on, self.methods = ("docebo", "iter_trainings"), "docebo", ("create_training", "create_award")
            writes = 2 * N_IMPORTED  # one training and one award per imported badge
        every = [("reads", 1)] + [(when, k) for when in ("before", "after") for k in range(1, writes + 1)]
        self.points = (rng.choice(every),)

    def target(self, sb):
        return getattr(sb, self.writes_on).state

    def install(self, sb, point, pid):
        if point[0] == "reads":
            service, method = self.reads
            return self.arm(getattr(sb, service).state, (method,), ("before", 1), pid)
        return super().install(sb, point, pid)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("flow", ["docebo-to-credly", "credly-to-docebo"])
async def test_F7_F6_sigkill_at_a_random_point_then_rerun_converges_nothing_twice(tmp_path, flow, seed):
    arm = RandomKill(flow, seed)
    end, expected, history, kills = await _kill_and_rerun(tmp_path, both_ways_data(), MAPPINGS, flow, arm)
    assert kills == 1
    assert end == expected, f"kill point {arm.points[0]}: the re-run did not converge"
    badges, trainings, awards = end
    live = [(e, t) for e, t, s, *_ in badges if s in ("pending", "accepted")]
    assert len(live) == len(set(live))
    assert len(trainings) == len({(t[0], t[1]) for t in trainings})
    assert len(awards) == len({(a[0], a[1]) for a in awards})
    if flow == "docebo-to-credly":
        assert len(live) >= N_LEARNERS + N_AWARDS
    else:
        assert len(trainings) == N_IMPORTED
        assert len([a for a in awards if a[1] == 2]) == N_IMPORTED  # CERT-PARTNER, one per imported badge
    assert [r["status"] for r in history][:2] == ["succeeded", "interrupted"]
