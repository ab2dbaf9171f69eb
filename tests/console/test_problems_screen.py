"""Issue 16 in the console: one expired Credly token is one problem (dashboard tile and the
Problems section), its keys act from there, and it closes itself when Credly works again."""

from __future__ import annotations

from screens.confirm import ConfirmScreen
from screens.widgets.paged_table import PagedTable
from services.core.errors import AuthenticationError
from services.store import inbox
from services.store.health import read_health
from services.store.notifications import list_problems, notify_exception
from tests.console.conftest import make_app, settle

CAUSE = "credly|401|you must provide a valid authorization token"


def _expired_token_failures(store, n: int = 5) -> None:
    for i in range(n):
        exc = AuthenticationError("Credly", "POST /organizations/{org}/badges", 401,
                                  "You must provide a valid authorization token")
        notify_exception(store, exc, title="Badge could not be issued", run_id=7, object=f"user{i}@example.com")


async def test_an_expired_token_is_one_problem_that_says_where_to_fix_it_and_closes_itself(world):
    _expired_token_failures(world.store)
    world.credly_state.token_expired = True
    app = make_app(world.ctx, "dashboard")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tile = str(app.screen.query_one("#notification-summary").render())  # the Problems tile, unwrapped
        assert tile.count("Credly HTTP 401") == 1 and "fix the Credly token in Settings → Connections" in tile
        assert "5 event(s), 1 run(s)" in tile

        await pilot.press("6")
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.row_count == 1 and app.screen.current_key == CAUSE
        detail = str(app.screen.query_one("#notification-context").render())
        assert "What to do: Credly refused the credentials" in detail and "user4@example.com" in detail

        await pilot.press("t")  # test the connection from the problem: the token is still expired
        await settle(pilot)
        assert not read_health(world.store)["credly"]["ok"]
        assert len(list_problems(world.store)) == 1

        world.credly_state.token_expired = False
        await pilot.press("t")  # a successful real call closes the service-wide problem
        await settle(pilot)
        assert read_health(world.store)["credly"]["ok"]
        assert list_problems(world.store) == []
        await pilot.press("r")
        await settle(pilot)
        assert table.row_count == 0
        assert "No open problems" in str(app.screen.query_one("#notification-context").render())


async def test_retry_asks_with_the_count_and_close_closes_by_hand(world):
    _expired_token_failures(world.store, 2)
    inbox.insert_items(world.store, [inbox.NewItem(source="docebo", delivery_key="docebo:m:1", learner_key="1",
                                                   event_type="course.enrollment.completed", payload={},
                                                   status="failed", last_error="Credly ... HTTP 401")])
    app = make_app(world.ctx, "notifications")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Queue 1 failed event again?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await settle(pilot)
        assert inbox.counts(world.store).get("failed", 0) == 0
        await pilot.press("c")
        await settle(pilot)
        assert list_problems(world.store) == []
        await pilot.press("e")
        await settle(pilot)
        assert app.current_mode == "settings"


async def test_clearing_a_value_asks_first_and_focus_stays_on_its_table(seeded_ctx):
    """Issue 16: `x` on an optional setting asked nothing and moved focus to Connections, so the
    next `x` deleted the Credly token unasked. Now each clear asks, and focus stays."""
    from textual.widgets import DataTable

    from services.store.db import Store
    from services.store.settings import get_setting, set_settings

    seeded_ctx.secrets.set("credly_token", "tok-123")
    with Store(seeded_ctx.database_path) as store:
        set_settings(store, {"CREDLY_DEFAULT_EXPIRATION_DAYS": "365"})
    app = make_app(seeded_ctx, "settings")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        settings = app.screen.query_one("#settings-table", DataTable)
        settings.move_cursor(row=settings.get_row_index("CREDLY_DEFAULT_EXPIRATION_DAYS"))
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Clear the setting CREDLY_DEFAULT_EXPIRATION_DAYS?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_setting(store, "CREDLY_DEFAULT_EXPIRATION_DAYS") == ""
        assert app.screen.query_one("#settings-table").has_focus

        connections = app.screen.query_one("#connections-table", DataTable)
        connections.focus()
        connections.move_cursor(row=connections.get_row_index("secret:credly_token"))
        await pilot.press("x")
        await settle(pilot)
        assert "Delete the Credly token from the keyring?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")  # declined: the token stays
        await settle(pilot)
        assert seeded_ctx.secrets.get("credly_token") == "tok-123"
        assert app.screen.query_one("#connections-table").has_focus
