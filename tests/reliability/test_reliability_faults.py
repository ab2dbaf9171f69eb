"""Faults during batches, both directions (issue 8; F7, F6, "never twice", N1).

tests/flows/test_flow_runs.py already runs `all` on a handful of items with 10 % 5xx or dropped
connections. Here each batch has real volume (several `/badges/batch` calls for F7, one create
call per external training and award for F6) and every kind of fault is ALSO forced onto the
batch's own write calls, so the faults are certain to hit the writes whose outcome is ambiguous:

* 5xx: 10 % of all calls answered 503, and the first two write calls;
* 429 bursts: a rate-limit window of 20 calls per 30 s (Retry-After up to 30 s; played out on a
  virtual clock the sandbox and the clients' retry pauses share) and the first two write calls;
* dropped connections: 10 % of calls processed and then cut without an answer, and the first two
  write calls (the client cannot know whether the badge, training or award was created).

Each run must end exactly as the same run without faults (same badges, trainings and awards with
the same dates), nothing twice, no failed item and no unsettled ledger intent.
"""

from __future__ import annotations

import pytest

from services.sandbox.faults import FaultConfig
from tests.flows.world import World
from tests.reliability.reliability_world import (
    VirtualClock,
    assert_no_duplicates,
    both_ways_data,
    end_state,
    prepare,
)

WRITES = {
    "docebo-to-credly": [("credly", "POST /v1/organizations/{org}/badges/batch")],
    "credly-to-docebo": [("docebo", "POST /learn/v1/external_training"), ("docebo", "POST /certification/v1/awards")],
}
FAULTS = {
    "5xx": ({"fail_rate": 0.1}, "fail", {503}),
    "429": ({"rate_limit": 20, "rate_window_s": 30.0}, "rate_limit", {429}),
    "drop": ({"drop_rate": 0.1}, "drop", {0}),  # the sandbox records a dropped answer as status 0
}
_expected: dict[str, tuple] = {}


async def _reference(store_factory, flow: str) -> tuple:
    """The end state of the same batch without faults (computed once per direction)."""
    if flow not in _expected:
        store = store_factory("reference.db")
        w = World(store, both_ways_data())
        try:
            w.configure()
            await prepare(w)
            s = await w.run(flow)
            assert s.status == "succeeded" and s.counts["failed"] == 0, s.reason
            assert_no_duplicates(w)
            _expected[flow] = end_state(w)
        finally:
            await w.aclose()
            store.close()
    return _expected[flow]


@pytest.fixture
def store_factory(tmp_path):
    from services.store.db import Store

    return lambda name: Store(tmp_path / name)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("flow", ["docebo-to-credly", "credly-to-docebo"])
async def test_F7_F6_batch_under_faults_ends_as_without_faults_and_never_twice(store, store_factory, flow, fault):
    expected = await _reference(store_factory, flow)
    settings, kind, statuses = FAULTS[fault]
    clock = VirtualClock()
    faults = {s: FaultConfig(seed=seed, clock=clock.now, **settings) for s, seed in (("credly", 11), ("docebo", 12))}
    w = World(store, both_ways_data(), credly_faults=faults["credly"], docebo_faults=faults["docebo"])
    w.credly.policy.sleep = clock.sleep  # both clients share one policy: retry pauses advance the clock
    try:
        w.configure()
        await prepare(w)  # set-up under faults as well (F1, F2)
        for service, route in WRITES[flow]:
            faults[service].force(kind, route=route, times=2)
        s = await w.run(flow)
        assert s.status == "succeeded", s.reason
        assert s.counts["failed"] == 0
        # the faults really hit the batch's own write calls
        for service, route in WRITES[flow]:
            seen = w.calls(service)  # per-route calls; statuses below
            assert seen.get(route, 0) >= 3, f"{route} was called {seen.get(route, 0)} times"
            app = w.credly_app if service == "credly" else w.docebo_app
            answered = app.state.sandbox.calls.statuses().get(route, {})
            assert statuses & set(answered), f"no {fault} answer on {route}: {answered}"
        if fault == "429":
            assert max(clock.sleeps) >= 1.0  # Retry-After obeyed (whole seconds, on the virtual clock)
        assert end_state(w) == expected
        assert_no_duplicates(w)
        # and a second run has nothing left to do
        again = await w.run(flow)
        assert again.status == "succeeded" and again.counts["failed"] == 0
        assert again.counts["issued"] + again.counts["created"] == 0
        assert end_state(w) == expected
    finally:
        await w.aclose()
