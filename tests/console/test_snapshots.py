"""One snapshot per screen and per modal state (pytest-textual-snapshot), on a fixed store with
fixed timestamps, a fixed terminal size and no blinking cursor. Update after a deliberate
change with `pytest tests/console/test_snapshots.py --snapshot-update` and review the SVGs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import screens.dashboard
import screens.syncs
from screens.error import ErrorScreen
from screens.inbox import InboxScreen
from screens.notifications import NotificationsScreen
from screens.plan_review import PlanReviewScreen
from tests.console.conftest import SIZE, make_app, settle

# The screens re-read their tables every 2-3 s. On a loaded machine (pytest -n 2) a snapshot can
# take longer than that, and a timer-driven reload racing the capture made one snapshot flaky
# (with the timers at 20 ms, test_plan_review never settles). A snapshot shows the settled screen
# of a fixed store, so the periodic re-reads are pushed out of its way; tests/console/test_screens.py
# covers the refresh itself.
NO_PERIODIC_REFRESH_S = 3600.0


@pytest.fixture(autouse=True)
def no_periodic_refresh(monkeypatch):
    monkeypatch.setattr(screens.dashboard, "REFRESH_SECONDS", NO_PERIODIC_REFRESH_S)
    monkeypatch.setattr(screens.syncs, "HISTORY_REFRESH_SECONDS", NO_PERIODIC_REFRESH_S)
    monkeypatch.setattr(InboxScreen, "REFRESH_SECONDS", NO_PERIODIC_REFRESH_S)
    monkeypatch.setattr(NotificationsScreen, "REFRESH_SECONDS", NO_PERIODIC_REFRESH_S)


def _snap(snap_compare, ctx, section, *, steps=None, size=SIZE):
    app = make_app(ctx, section)

    async def run_before(pilot):
        await settle(pilot)
        if steps is not None:
            await steps(pilot)
            await settle(pilot)

    return snap_compare(app, terminal_size=size, run_before=run_before)


def test_dashboard(snap_compare, seeded_ctx):
    assert _snap(snap_compare, seeded_ctx, "dashboard")


def test_settings(snap_compare, seeded_ctx):
    assert _snap(snap_compare, seeded_ctx, "settings")


def test_settings_inline_error(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("down", "down", "enter")
        pilot.app.screen.query_one("#editor-input").value = "yes"

    assert _snap(snap_compare, seeded_ctx, "settings", steps=steps)


def test_templates(snap_compare, seeded_ctx):
    assert _snap(snap_compare, seeded_ctx, "templates")


def test_mappings(snap_compare, seeded_ctx):
    assert _snap(snap_compare, seeded_ctx, "mappings")


def test_mapping_form_with_inline_error(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("e")
        await settle(pilot)
        field = pilot.app.screen.query_one("#learning_plan_id")
        field.value = "12x"
        await pilot.press("ctrl+s")

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_mapping_form_new(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("n")

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_confirm_delete(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("d")

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_csv_import_with_row_errors(snap_compare, seeded_ctx, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("template_id,learning_plan_id,is_active\n"
                   "b1e55ed0-0000-4000-8000-000000000001,12,true\n"
                   ",13,true\n"
                   "b1e55ed0-0000-4000-8000-000000000002,abc,maybe\n", encoding="utf-8")

    async def steps(pilot):
        await pilot.press("i")
        await settle(pilot)
        pilot.app.screen.query_one("#csv-path").value = str(bad)
        await pilot.press("enter")
        await settle(pilot)
        pilot.app.screen.query_one("#csv-path").value = "bad.csv"  # a short, machine-independent path

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_csv_export(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("x")

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_syncs(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("h")

    assert _snap(snap_compare, seeded_ctx, "syncs", steps=steps)


def test_syncs_every_run(snap_compare, seeded_ctx):
    """`w`: the scheduler's run 3 joins the history; the newest is selected with its log.

    The history is re-read before `g` is pressed: pressed earlier (a loaded machine delays the
    re-read), `g` moves in the old list and the re-read then keeps that selection."""
    async def steps(pilot):
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("h", "g")

    assert _snap(snap_compare, seeded_ctx, "syncs", steps=steps)


def _plan_summary() -> SimpleNamespace:
    return SimpleNamespace(
        run_id=7, flow="docebo_to_credly", status="succeeded", reason="", dry_run=True,
        counts={"examined": 12, "issued": 3, "skipped": 9},
        actions=[{"action": "issue_badge", "object": f"user{i}@example.com / Fire Warden",
                  "message": "would issue Fire Warden (learning plan 501 completed 2025-03-01)"} for i in (1, 2, 3)],
    )


def test_plan_review(snap_compare, seeded_ctx):
    async def steps(pilot):
        pilot.app.push_screen(PlanReviewScreen(_plan_summary()))

    assert _snap(snap_compare, seeded_ctx, "syncs", steps=steps)


def test_notifications(snap_compare, seeded_ctx):
    assert _snap(snap_compare, seeded_ctx, "notifications")


def test_inbox(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("down")

    assert _snap(snap_compare, seeded_ctx, "inbox", steps=steps)


def test_error_modal(snap_compare, seeded_ctx):
    async def steps(pilot):
        pilot.app.push_screen(ErrorScreen("Loading mappings failed", "KeyError: 'template_id'",
                                          "Traceback (most recent call last):\n  File \"screens/mappings.py\", "
                                          "line 1, in job\nKeyError: 'template_id'"))

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


def test_keys_panel(snap_compare, seeded_ctx):
    async def steps(pilot):
        await pilot.press("question_mark")

    assert _snap(snap_compare, seeded_ctx, "mappings", steps=steps)


# Issue 16: the screens of the three jobs at the smallest supported terminal and a large one; the
# seeded store holds a run with a failed item and one problem (a Credly 422).
async def _history(pilot):
    await pilot.press("w", "h", "g")  # every run: the scheduler's run 3 has a failed item


async def _plan(pilot):
    pilot.app.push_screen(PlanReviewScreen(_plan_summary()))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("section,steps", [("dashboard", None), ("mappings", None), ("syncs", _history),
                                           ("notifications", None), ("syncs", _plan)],
                         ids=["dashboard", "mappings", "syncs-with-failures", "problems", "plan-review"])
def test_sizes(snap_compare, seeded_ctx, section, steps, size):
    assert _snap(snap_compare, seeded_ctx, section, steps=steps, size=size)
