"""The Learners section (key 8, issue 13): type a learner, see the trace per template with its
reason, jump to the run's log; reachable with one key from the run log."""

from __future__ import annotations

from screens.learners import learner_in
from tests.console.conftest import T_FIRE, T_SAFETY, make_app, screen_text, settle


def test_learner_in_prefers_the_email_then_the_docebo_user_id():
    assert learner_in("user1@example.com / template x") == "user1@example.com"
    assert learner_in("user 12 / template x") == "12"
    assert learner_in("docebo-user:7") == "7"
    assert learner_in("Docebo user 3 was not found") == "3"
    assert learner_in("template x") is None


async def test_type_a_learner_see_the_decisions_then_jump_to_the_run_log(world):
    await world.prepare()
    s = await world.run("docebo-to-credly", full=True)
    assert s.counts["issued"] == 8
    app = make_app(world.ctx, "learners")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        for ch in "user1@example.com":
            await pilot.press(ch)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        ex = screen.explanation
        assert {t.template_id for t in ex.templates} == {T_SAFETY, T_FIRE}
        assert all((t.decision, t.rule) == ("nothing", "F3c") for t in ex.templates)
        text = screen_text(app)
        assert "Safety Basics" in text and "Fire Warden" in text and "F3c" in text
        assert f"run {s.run_id}" in text  # the history names the run that issued it
        await pilot.press("s")
        await settle(pilot)
        assert app.current_mode == "syncs" and app.screen.selected_run == s.run_id
        # back from a run-log line that names the learner: one key
        await pilot.press("8")
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        log_rows = app.screen.log_rows
        line = next(k for k, r in log_rows.items() if "user2@example.com" in r["object"])
        table = app.screen.query_one("#run-log-table")
        table.move_cursor(row=table.get_row_index(line))
        await pilot.press("e")
        await settle(pilot)
        assert app.current_mode == "learners"
        assert app.screen.explanation.email == "user2@example.com"


async def test_unknown_learner_says_so(world):
    await world.prepare()
    app = make_app(world.ctx, "learners")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.screen.show_learner("nobody@example.com")
        await settle(pilot)
        assert "found neither in Docebo nor in Credly" in screen_text(app)


def test_snapshot_learners_at_80x24(snap_compare, world):
    """One learner with nothing done yet (no time-dependent history): the decisions at 80×24."""
    import asyncio

    asyncio.run(world.prepare())
    app = make_app(world.ctx, "learners")

    async def run_before(pilot):
        await settle(pilot)
        app.screen.show_learner("user1@example.com")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def test_inbox_key_shows_the_learners_events_and_back_with_e(world):
    from services.store import inbox

    await world.prepare()
    payload = {"user_id": 2, "course_id": 101, "status": "completed"}
    inbox.insert_items(world.store, [inbox.NewItem("docebo", "docebo:m1:0", "course.enrollment.completed",
                                                   "docebo-user:2", payload)])
    app = make_app(world.ctx, "learners")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.screen.show_learner("2")
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert app.current_mode == "inbox" and app.screen.filter_text == "docebo-user:2"
        assert "course.enrollment.completed" in screen_text(app)
        await pilot.press("e")
        await settle(pilot)
        assert app.current_mode == "learners" and app.screen.explanation.docebo_user_id == "2"
