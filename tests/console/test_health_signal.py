"""Connection health reaches every screen that shows it through the app's `health_changed`
Signal (issue 11 pt 4), the current screen and the ones waiting in other sections alike."""

from __future__ import annotations

from screens.dashboard import DashboardScreen
from screens.settings import SettingsScreen
from services.store.health import read_health, record_health
from tests.console.conftest import SIZE, make_app, settle


def _health_line(screen, service: str) -> str:
    return str(screen.query_one(f"#health-{service}").render())


async def test_a_recorded_connection_test_reaches_the_shown_and_the_background_screen(world):
    app = make_app(world.ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        settings = app.screen
        app.action_section("dashboard")
        await settle(pilot)
        dashboard = app.screen
        assert isinstance(settings, SettingsScreen) and isinstance(dashboard, DashboardScreen)
        record_health(world.store, "docebo", False, "probe: the token was refused")
        assert "probe" not in _health_line(dashboard, "docebo")  # nothing re-reads by itself
        app._connections_checked({"docebo": read_health(world.store)["docebo"]})
        await settle(pilot)
        assert "probe: the token was refused" in _health_line(dashboard, "docebo")
        assert "probe: the token was refused" in _health_line(settings, "docebo")  # not the current screen
