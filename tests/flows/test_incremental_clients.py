"""The clients' changed-since filters and the service clock (incremental F6/F7)."""

from __future__ import annotations

import datetime as dt
import time

from services.clients.http import ServiceClock
from services.clients.routes import TO_VERIFY
from tests.flows.world import T_SAFETY, base_data
from tests.support.world import completed

UTC = dt.UTC


def test_service_clock_projects_the_date_header_back_as_a_lower_bound():
    clock = ServiceClock()
    assert clock.at(100.0) is None
    clock.observe("Sat, 28 Nov 2026 05:00:10 GMT", mono=110.0)
    assert clock.at(100.0) == dt.datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC)
    assert clock.at(111.5) == dt.datetime(2026, 11, 28, 5, 0, 11, 500000, tzinfo=UTC)
    clock.observe("not a date", mono=200.0)  # ignored
    clock.observe(None)
    assert clock.at(110.0) == dt.datetime(2026, 11, 28, 5, 0, 10, tzinfo=UTC)


def test_changed_since_filters_are_in_the_one_table_of_unverified_routes():
    for key in ("courses_changed", "course_enrollments_changed", "lp_enrollments_changed", "certification_awards_changed"):
        assert TO_VERIFY[key].param == "updated_from" and TO_VERIFY[key].evidence == "I"


async def test_clients_send_the_filters_and_read_the_service_clock(make_world):
    w = make_world(base_data(enrollments=[completed(101, 1)]))
    t0 = w.docebo_state.now()
    assert [c async for c in w.docebo.iter_courses(updated_from=t0)] == []
    assert len([c async for c in w.docebo.iter_courses()]) == 3
    mono = time.monotonic()
    seen = w.docebo.service_clock.at(mono)
    assert seen is not None and abs((seen - w.docebo_state.now()).total_seconds()) <= 2
    w.docebo_state.advance(30)
    w.docebo_state.enroll(102, 2)
    w.docebo_state.set_enrollment(102, 2, status="completed")
    changed = [e async for e in w.docebo.iter_enrollments(statuses=["completed"], updated_from=t0 + dt.timedelta(seconds=1))]
    assert [(e["course_id"], e["user_id"]) for e in changed] == [(102, 2)]
    assert [a async for a in w.docebo.iter_certification_awards(updated_from=t0)] == []
    assert [e async for e in w.docebo.iter_learning_plan_enrollments(updated_from="2099-01-01 00:00:00")] == []
    # Credly: an ISO instant; the counter sees one route whatever the filter
    w.credly_state.advance(30)
    b0 = w.credly_state.now()
    w.credly_state.advance(30)
    w.credly_state.issue({"recipient_email": "bob@example.com", "issued_to_first_name": "B", "issued_to_last_name": "B",
                          "badge_template_id": T_SAFETY, "issued_at": "2025-06-01T00:00:00Z"})
    got = [b async for b in w.credly.iter_badges(updated_at_min=b0)]
    assert [b["recipient_email"] for b in got] == ["bob@example.com"]
    assert w.credly.service_clock.at(time.monotonic()) is not None


async def test_credly_listing_metadata_of_the_first_page_comes_before_its_first_item(make_world):
    badges = [{"id": f"00000000-0000-4000-8000-{n:012d}", "badge_template_id": T_SAFETY,
               "recipient_email": f"l{n}@example.com", "issued_to_first_name": "F", "issued_to_last_name": "L",
               "issued_at": "2025-05-01T10:00:00.000Z", "expires_at": None, "state": "accepted", "issuer_earner_id": None}
              for n in range(1, 121)]
    w = make_world(base_data(badges=badges))
    listing: dict = {}
    seen_first: list = []
    async for _ in w.credly.iter_badges(metadata=listing):
        if not seen_first:
            seen_first.append(dict(listing))
    assert seen_first[0]["total_count"] == 120 and seen_first[0]["current_page"] == 1
    assert listing["current_page"] == 1  # later pages do not overwrite it
