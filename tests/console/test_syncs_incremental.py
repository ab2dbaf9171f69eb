"""Syncs screen: F7/F6 run incremental unless `Full run` is ticked (`u`), for the dry run and the
run applied after it (issue 8)."""

from __future__ import annotations

from textual.widgets import Checkbox

from screens.plan_review import PlanReviewScreen
from screens.syncs import SyncsScreen
from services.store.runs import query_runs
from tests.console.conftest import SIZE, make_app, settle

F7_INDEX = 2


async def _dry_run_and_apply(pilot, app) -> None:
    screen = app.screen
    assert isinstance(screen, SyncsScreen)
    screen.query_one("#flow-list").highlighted = F7_INDEX
    await pilot.pause()
    await pilot.press("d")
    await settle(pilot)
    assert isinstance(app.screen, PlanReviewScreen)
    await pilot.press("a")
    await settle(pilot)


async def test_full_run_box_makes_the_dry_run_and_the_applied_run_full(world):
    await world.prepare()
    app = make_app(world.ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _dry_run_and_apply(pilot, app)  # the first run is full (nothing to continue from)
        await _dry_run_and_apply(pilot, app)  # then incremental
        modes = [app.screen.last_summary.mode]
        await pilot.press("u")
        await pilot.pause()
        assert app.screen.query_one("#full-run", Checkbox).value is True
        await _dry_run_and_apply(pilot, app)
        modes.append(app.screen.last_summary.mode)
        assert modes == ["incremental", "full"]
        title = str(app.screen.query_one("#run-title").render())
        assert "(full)" in title
        last_four = query_runs(world.store, flow="docebo_to_credly", limit=4)
        assert [r["dry_run"] for r in last_four] == [0, 1, 0, 1]
