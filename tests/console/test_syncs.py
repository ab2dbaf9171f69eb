"""Syncs screen: the batch dry run → review → apply story, cancellation, the history and logs."""

from __future__ import annotations

from textual.widgets import Log, ProgressBar

from screens.plan_review import PlanReviewScreen
from screens.syncs import SyncsScreen
from services.store.runs import get_run, query_runs
from tests.console.conftest import SIZE, make_app, screen_text, settle

F7_INDEX = 2  # position of docebo-to-credly in the flow list


async def _choose_flow(pilot, index: int) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, SyncsScreen)
    screen.query_one("#flow-list").highlighted = index
    await pilot.pause()


async def test_batch_dry_run_review_apply_progress_and_counts_match_store(world):
    await world.prepare()
    app = make_app(world.ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _choose_flow(pilot, F7_INDEX)
        await pilot.press("d")
        await settle(pilot)
        # The dry run changed nothing and its plan is up for review.
        review = app.screen
        assert isinstance(review, PlanReviewScreen)
        assert world.credly_state.badges == {}
        dry = review.summary
        assert dry.dry_run and dry.status == "succeeded"
        planned = [a for a in dry.actions if a["action"] == "issue_badge"]
        assert len(planned) == 8  # 4 learners × (Safety Basics via course 101 + Fire Warden via LP 501)
        text = screen_text(app)
        assert "issue_badge" in text and "user1@example.com" in text
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SyncsScreen)
        bar = screen.query_one("#run-progress", ProgressBar)
        assert bar.total and bar.progress == bar.total and bar.percentage == 1.0
        run = query_runs(world.store, limit=1)[0]
        assert run["dry_run"] == 0 and run["status"] == "succeeded" and run["flow"] == "docebo_to_credly"
        assert run["issued"] == len(world.credly_state.badges) == 8
        counts = str(screen.query_one("#run-counts").render())
        assert f"issued {run['issued']}" in counts and f"examined {run['examined']}" in counts
        assert f"Run #{run['id']}" in str(screen.query_one("#run-title").render())
        assert screen.query_one("#live-log", Log).line_count > 0


async def test_cancel_a_running_batch_marks_it_cancelled(world):
    await world.prepare()
    app = make_app(world.ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _choose_flow(pilot, F7_INDEX)
        screen = app.screen
        screen.start_run("docebo-to-credly", dry_run=False)
        assert screen.running == "docebo-to-credly"
        # Cancel in the same tick as the launch, so the flow sees it before its first item
        # (deterministic); the key binding itself is checked below.
        screen.action_cancel_run()
        await settle(pilot)
        run = query_runs(world.store, limit=1)[0]
        assert run["status"] == "cancelled"
        assert "cancelled" in str(screen.query_one("#run-title").render())
        assert world.credly_state.badges == {}
        # The history shows it, and its log says why.
        assert "cancelled" in screen_text(app)
        assert get_run(world.store, run["id"])["status"] == "cancelled"
        assert any(b.id == "syncs.cancel" and b.key == "c" and b.action == "cancel_run" for b in SyncsScreen.BINDINGS)


async def test_history_shows_runs_and_a_run_log_filters_to_failures(seeded_ctx):
    from screens.widgets.paged_table import PagedTable

    app = make_app(seeded_ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs = app.screen.query_one("#runs-table", PagedTable)
        # by default the runs an admin started; run 3 is the scheduler's
        assert [runs.get_row_at(i)[0].plain for i in range(runs.row_count)] == ["2", "1"]
        assert "batch and manual runs" in screen_text(app)
        await pilot.press("w")
        await settle(pilot)
        assert [runs.get_row_at(i)[0].plain for i in range(runs.row_count)] == ["3", "2", "1"]
        assert "every run" in screen_text(app)
        await pilot.press("h", "g")  # the newest: the scheduler's run 3
        await settle(pilot)
        log = app.screen.query_one("#run-log-table", PagedTable)
        assert app.screen.selected_run == 3 and log.row_count == 5
        await pilot.press("f")
        await settle(pilot)
        assert log.row_count == 1 and "422" in log.get_row_at(0)[2].plain
        assert "failures only" in screen_text(app)
        await pilot.press("h", "down")
        await settle(pilot)
        assert app.screen.selected_run == 2 and log.row_count == 0


async def test_new_runs_appear_in_the_history_without_a_key_press(seeded_ctx):
    from screens.widgets.paged_table import PagedTable
    from services.store.db import Store
    from services.store.runs import RunRecorder

    app = make_app(seeded_ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:  # e.g. `credly-console sync` in a terminal
            rec = RunRecorder.start(store, "dropdown", trigger="cli")
            rec.finish("succeeded")
        runs = app.screen.query_one("#runs-table", PagedTable)
        for _ in range(120):
            await pilot.pause(0.05)
            if runs.page_total == 3:
                break
        assert runs.page_total == 3  # runs 1, 2 and the new one (run 3 is the scheduler's)


async def test_after_apply_the_applied_run_is_selected_whatever_webhook_runs_came_meanwhile(world, monkeypatch):
    """A busy receiver writes a run per webhook event while a batch runs. With every run shown
    (`w`), 150 newer webhook runs push the applied run to the second page: after Apply it is
    selected there. Hidden again (the default), the webhook runs are gone from the history and
    the applied run stays selected."""
    from screens.widgets.paged_table import PagedTable
    from services.flows import docebo_to_credly
    from services.store.runs import RunRecorder

    await world.prepare()
    original = docebo_to_credly.batch_docebo_to_credly

    async def with_webhook_runs_meanwhile(job):
        if not job.dry_run:
            for _ in range(150):
                RunRecorder.start(job.store, "badge_event", trigger="webhook").finish("succeeded")
        await original(job)

    monkeypatch.setattr(docebo_to_credly, "batch_docebo_to_credly", with_webhook_runs_meanwhile)
    app = make_app(world.ctx, "syncs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await _choose_flow(pilot, F7_INDEX)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, PlanReviewScreen)
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        applied = query_runs(world.store, exclude_triggers=("webhook",), limit=1)[0]
        assert applied["dry_run"] == 0 and applied["status"] == "succeeded"
        assert query_runs(world.store, limit=1)[0]["trigger"] == "webhook"  # newer than the applied run
        runs = screen.query_one("#runs-table", PagedTable)
        assert runs.page_offset == 100 and runs.current_key == str(applied["id"])
        assert screen.selected_run == applied["id"] and f"Log of run #{applied['id']}" in screen_text(app)
        for _ in range(100):  # more events: a refresh keeps the selected run in view, a page further
            RunRecorder.start(world.store, "badge_event", trigger="webhook").finish("succeeded")
        await pilot.press("r")
        await settle(pilot)
        assert runs.page_offset == 200 and runs.current_key == str(applied["id"])
        await pilot.press("w")  # batch and manual runs only
        await settle(pilot)
        shown = [runs.get_row_at(i)[2].plain for i in range(runs.row_count)]
        assert runs.page_offset == 0 and runs.page_total == len(shown) and "webhook" not in shown
        assert runs.current_key == str(applied["id"]) and screen.selected_run == applied["id"]
