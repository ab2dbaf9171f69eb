"""Stories of the other screens: toggle a template (T2), open a notification and see its context,
retry a failed inbox event (W3), settings edited in place (S1–S2) with connections, the dashboard."""

from __future__ import annotations

import asyncio
import threading

from textual.widgets import Input

from screens.widgets.paged_table import PagedTable
from services.store import inbox
from services.store.db import Store
from services.store.health import read_health
from services.store.notifications import get_notification
from services.store.settings import get_setting
from services.store.templates import get_template
from tests.console.conftest import SIZE, T_FIRE, T_SAFETY, make_app, screen_text, settle, tid


async def test_toggle_a_template(seeded_ctx):
    app = make_app(seeded_ctx, "templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.current_key == tid(4)  # Certified Operator, first by name, deactivated by an admin
        await pilot.press("down")  # Fire Warden
        await pilot.press("space")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            row = get_template(store, T_FIRE)
        assert row["is_active"] is False and row["admin_deactivated"] is True
        assert "off" in str(table.get_row(T_FIRE)[1])
        await pilot.press("space")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_template(store, T_FIRE)["is_active"] is True
        assert "yes" in str(table.get_row(T_FIRE)[1])
        # An archived template cannot be activated: the refusal is a toast, nothing changes.
        await pilot.press("down", "space")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_template(store, tid(3))["is_active"] is False
        assert any("archived in Credly" in n.message for n in app._notifications)
        # The usage panel names the mappings of the highlighted template.
        await pilot.press("up")
        await settle(pilot)
        assert "Used by 2 mappings" in str(app.screen.query_one("#template-usage").render())


async def test_filter_templates_as_you_type(seeded_ctx):
    app = make_app(seeded_ctx, "templates")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"war")
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.row_count == 1 and table.current_key == T_FIRE


async def test_template_sync_now_and_courses_using_it(world):
    from services.store.templates import count_templates

    app = make_app(world.ctx, "templates")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.query_one(PagedTable).row_count == 0
        await pilot.press("s")
        await settle(pilot)
        assert count_templates(world.store) == 4  # three active, one archived (F1)
        assert world.store.get_meta("docebo.course_field_id")  # F2 ran after F1
        field_id = int(world.store.get_meta("docebo.course_field_id"))
        world.docebo_state.set_course_value(101, field_id, label="Safety Basics")
        table = app.screen.query_one(PagedTable)
        table.move_cursor(row=table.get_row_index(T_SAFETY))
        await pilot.press("c")
        await settle(pilot)
        assert "101: Safety 101" in str(app.screen.query_one("#template-courses").render())


async def test_open_a_notification_and_see_its_context(seeded_ctx):
    app = make_app(seeded_ctx, "notifications")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("v")  # from the problems to every notification
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert str(table.get_row("3")[0]) == "●" and str(table.get_row("1")[0]) == "●"
        table.move_cursor(row=table.get_row_index("1"))  # the badge error
        await pilot.press("enter")
        await settle(pilot)
        context = str(app.screen.query_one("#notification-context").render())
        for expected in ("Badge could not be issued to user4@example.com", "Flow:      docebo_to_credly (run #3)",
                         "Object:    user4@example.com / Safety Basics", "Call:      POST /organizations/{org}/badges",
                         "Service:   [recipient] is invalid", "check the learner's e-mail address"):
            assert expected in context
        with Store(seeded_ctx.database_path) as store:
            assert get_notification(store, 1)["read_at"] is not None
        assert str(table.get_row("1")[0]).strip() == ""
        await pilot.press("y")
        assert "Service:   [recipient] is invalid" in app.clipboard
        await pilot.press("u")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_notification(store, 1)["read_at"] is None
        await pilot.press("R")
        await settle(pilot)
        assert "0 unread" in str(app.screen.query_one("#notifications-status").render())


def _run_inbox_worker_until(ctx_factory, db_path, item_id: int, done: threading.Event) -> None:
    """What `credly-console serve` does beside the console: its inbox worker, in its own
    thread and event loop, on the same database, until the item is processed."""
    from services.flows import FlowContext
    from services.serve.inbox_worker import InboxWorker

    async def main() -> None:
        credly, docebo = ctx_factory()
        store = Store(db_path)
        stop = asyncio.Event()
        worker = InboxWorker(FlowContext(store, credly, docebo), poll_s=0.05)
        task = asyncio.create_task(worker.run(stop))
        try:
            for _ in range(400):
                status = store.db.execute("SELECT status FROM inbox WHERE id = ?", (item_id,)).fetchone()[0]
                if status in ("done", "failed", "skipped"):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            await credly.aclose()
            await docebo.aclose()
            store.close()
            done.set()

    asyncio.run(main())


async def test_retry_a_failed_inbox_event_and_watch_it_processed_without_a_key_press(world):
    await world.prepare()
    field_id = int(world.store.get_meta("docebo.course_field_id"))
    world.docebo_state.set_course_value(101, field_id, label="Safety Basics")
    payload = world.docebo_state.completion_payload(world.docebo_state.get_enrollment(101, 1))
    # A delivery that failed its last automatic try (W3).
    inbox.insert_items(world.store, [inbox.NewItem(
        source="docebo", delivery_key="docebo:msg-1:0", event_type="course.enrollment.completed",
        learner_key="docebo:1", payload=payload, status="failed", last_error="Credly 503 after 5 attempts")])
    item_id = world.store.db.execute("SELECT id FROM inbox").fetchone()[0]
    app = make_app(world.ctx, "inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert str(table.get_row(str(item_id))[1]) == "failed"
        assert "course.enrollment.completed" in screen_text(app)
        assert '"course_id"' in screen_text(app) or "course_id" in str(app.screen.query_one("#inbox-payload").render())
        await pilot.press("r")
        await settle(pilot)
        row = inbox.get_item(world.store, item_id)
        assert row["status"] == "queued" and row["attempts"] == 0
        assert str(table.get_row(str(item_id))[1]) == "queued"
        # The serve worker (beside the console) processes it; the screen refreshes by itself.
        done = threading.Event()
        thread = threading.Thread(target=_run_inbox_worker_until,
                                  args=(lambda: (world.make_credly(), world.make_docebo()), world.db_path, item_id, done))
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, done.wait, 30)
        thread.join(5)
        assert inbox.get_item(world.store, item_id)["status"] == "done"
        for _ in range(100):  # the 2-second refresh timer, no key pressed
            await asyncio.sleep(0.05)
            await pilot.pause()
            if str(table.get_row(str(item_id))[1]) == "done":
                break
        assert str(table.get_row(str(item_id))[1]) == "done"
        assert len(world.credly_state.badges) == 1  # Safety Basics issued to user 1 (F3a)


async def test_inbox_shows_the_whole_event_and_its_detail(seeded_ctx):
    """Issue 7 polish: the Event column holds `course.enrollment.completed` whole; the detail
    says whose event it is, its status and attempts, the whole last error, the run that processed
    it, where it came from and the payload; `/` filters in SQL; `y` copies it all."""
    payload = {"user_id": 10003, "username": "malik.leonard", "course_id": 101, "course_name": "Safety 101"}
    with Store(seeded_ctx.database_path) as store:
        inbox.insert_items(store, [inbox.NewItem(
            source="docebo", delivery_key="docebo:wh-20250601-0900-5d689e7f-ddab-4224-b6e2-20ef5fd861f1:0",
            event_type="course.enrollment.completed", learner_key="docebo-user:10003", payload=payload)])
        item_id = store.db.execute("SELECT MAX(id) FROM inbox").fetchone()[0]
        store.db.execute("UPDATE inbox SET status = 'failed', attempts = 5, run_id = 3, last_error = ? WHERE id = ?",
                         ("Credly POST /organizations/{org}/badges: 503 [upstream] unavailable\nafter 5 attempts",
                          item_id))
        store.conn.commit()
    app = make_app(seeded_ctx, "inbox")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.current_key == str(item_id)  # newest first
        text = screen_text(app)
        row = next(line for line in text.splitlines() if line.startswith(f" {item_id} "))
        assert "course.enrollment.completed " in row and "malik.leonard" not in row
        assert "Docebo user 10003" in row
        detail = text[text.index("Event ─"):]
        for expected in ("course.enrollment.completed", "failed after 5 attempts",
                         "malik.leonard (Docebo user 10003)", "Docebo, received", "#3 — its log is in Syncs (5)",
                         "docebo:wh-20250601-0900-5d689e7f", "503 [upstream]", "after 5 attempts",
                         '"username": "malik.leonard"'):
            assert expected in detail, expected
        await pilot.press("y")
        assert "Learner:    malik.leonard (Docebo user 10003)" in app.clipboard
        assert '"course_id": 101' in app.clipboard
        # Filter in SQL: by learner, by event.
        await pilot.press("slash", *"malik")
        await settle(pilot)
        assert table.row_count == 0  # the learner key holds the id, not the name
        app.screen.query_one("#inbox-filter").value = "10003"
        await settle(pilot)
        assert table.row_count == 1 and table.current_key == str(item_id)
        app.screen.query_one("#inbox-filter").value = "badge.created"
        await settle(pilot)
        assert table.row_count == 1 and "matching “badge.created”" in screen_text(app)


async def test_retry_all_failed_after_confirmation(seeded_ctx):
    app = make_app(seeded_ctx, "inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("R", "y")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert inbox.counts(store)["failed"] == 0 and inbox.counts(store)["queued"] == 2


async def test_settings_invalid_value_inline_error_nothing_saved_then_saved(seeded_ctx):
    app = make_app(seeded_ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # SYNC_REVOCATION
        editor = app.screen.query_one("#editor-input", Input)
        assert editor.has_focus and editor.value == "true"
        editor.value = "True"
        await pilot.press("enter")
        await settle(pilot)
        assert "expected true or false (exactly, lower-case)" in str(app.screen.query_one("#editor-error").render())
        with Store(seeded_ctx.database_path) as store:
            assert get_setting(store, "SYNC_REVOCATION") == "true"
        editor.value = "false"
        await pilot.press("enter")
        await settle(pilot)
        assert not app.screen.query_one("#editor").display
        with Store(seeded_ctx.database_path) as store:
            assert get_setting(store, "SYNC_REVOCATION") == "false"
        # A required setting cannot be cleared (S3).
        await pilot.press("up", "x")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_setting(store, "NOTIFICATION_MAIL_ID") == "lms-admin@example.com"


async def test_connection_edit_is_validated_and_saved_to_the_config_file(seeded_ctx):
    from services.core.config import load_config

    app = make_app(seeded_ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_one("#connections-table").focus()
        await pilot.press("enter")  # Credly API base URL
        editor = app.screen.query_one("#editor-input", Input)
        editor.value = "not a url"
        await pilot.press("enter")
        await settle(pilot)
        assert "[credly] base_url" in str(app.screen.query_one("#editor-error").render())
        assert not seeded_ctx.config_path.exists()
        editor.value = "https://api.credly.com/v1/"
        await pilot.press("enter")
        await settle(pilot)
        assert load_config(seeded_ctx.config_path).credly.base_url == "https://api.credly.com/v1"


async def test_secret_without_keyring_names_the_env_var(seeded_ctx):
    from services.core.secrets import KeyringSecrets

    seeded_ctx.secrets = KeyringSecrets()  # conftest makes the keyring the failing backend
    app = make_app(seeded_ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#connections-table")
        table.focus()
        table.move_cursor(row=table.get_row_index("secret:credly_token"))
        assert "no keyring: set CREDLY_TOKEN" in screen_text(app)
        await pilot.press("enter")
        editor = app.screen.query_one("#editor-input", Input)
        assert editor.password
        editor.value = "s3cr3t-token"
        await pilot.press("enter")
        await settle(pilot)
        error = str(app.screen.query_one("#editor-error").render())
        assert "set the environment variable CREDLY_TOKEN instead" in error
        assert "s3cr3t-token" not in screen_text(app)


async def test_test_connections_records_health_and_dashboard_shows_it(world):
    app = make_app(world.ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        health = read_health(world.store)
        assert health["credly"]["ok"] and health["docebo"]["ok"]
        assert "✔ ok" in str(app.screen.query_one("#health-credly").render())
        await pilot.press("1")
        await settle(pilot)
        text = screen_text(app)
        assert "tested " in text and "API: no client-side limit" in text


async def test_dashboard_shows_the_state_and_refreshes_by_itself(seeded_ctx):
    from services.store.notifications import create_notification

    app = make_app(seeded_ctx, "dashboard")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        for expected in ("✔ ok", "Connected to Credly organization", "✘ failing", "backlog 1", "failed 1",
                         "2 unread", "F7 Docebo → Credly", "examined 12", "✔ every required setting is set and valid"):
            assert expected in text, expected
        with Store(seeded_ctx.database_path) as store:
            store.db.execute("UPDATE settings SET value = '' WHERE key = 'EVIDENCE_TITLE'")
            store.conn.commit()
            create_notification(store, "error", "A new failure", service_message="Invalid token",
                                cause="credly|401|invalid token")
        for _ in range(120):
            await pilot.pause(0.05)
            if "3 unread" in screen_text(app):
                break
        text = screen_text(app)
        assert "3 unread" in text and "Credly HTTP 401: Invalid token" in text
        assert "EVIDENCE_TITLE — not set (required)" in text


async def test_dashboard_lists_every_configuration_problem_and_where_to_fix_them(bare_ctx):
    """S3 on a fresh install: all five required keys are missing; the tile shows each of them,
    none cut off, even on an 80x24 terminal, and says to fix them in Settings (2)."""
    from services.store.settings import OPTIONAL_KEYS, SETTING_KEYS

    with Store(bare_ctx.database_path):
        pass
    required = [key for key in SETTING_KEYS if key not in OPTIONAL_KEYS]
    assert len(required) == 5
    for size in (SIZE, (80, 24)):
        app = make_app(bare_ctx, "dashboard")
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            tile = app.screen.query_one("#tile-problems")
            shown = str(app.screen.query_one("#config-problems").render())
            for key in required:
                assert f"✘ {key} — not set (required)" in shown, (size, key)
            assert "Fix them in Settings (2)" in shown
            # Nothing is cut: the text is wholly inside its tile, which is as tall as needed.
            static = app.screen.query_one("#config-problems")
            assert static.size.height >= len(required) + 1
            assert tile.content_region.contains_region(static.region), (size, tile.content_region, static.region)
            text = screen_text(app)
            assert all(key in text for key in required), size
            assert "not configured yet" not in text  # no client in this console
            assert "no connection in this" in text


async def test_export_mappings_to_csv(seeded_ctx, tmp_path):
    target = tmp_path / "out" / "mappings.csv"
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("x")
        app.screen.query_one("#csv-path", Input).value = "  "
        await pilot.press("enter")  # no path: said so, nothing written, the dialog stays
        await settle(pilot)
        assert "enter a file path" in str(app.screen.query_one("#csv-result").render())
        app.screen.query_one("#csv-path", Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "template_id,template_name,learning_plan_id,import_as_external_training,certification_code,is_active"
    assert len(lines) == 6


async def test_plan_review_keeps_its_buttons_in_view_and_shows_the_highlighted_change_whole(seeded_ctx):
    """A dry run planning 100 changes on an 80x24 terminal: the table takes what the dialog leaves,
    Apply and Close stay whole on screen, and the highlighted change is spelled out under it."""
    from types import SimpleNamespace

    from textual.widgets import Button

    from screens.plan_review import PlanReviewScreen

    summary = SimpleNamespace(
        run_id=9, flow="docebo_to_credly", status="succeeded", reason="", dry_run=True,
        counts={"examined": 100, "issued": 100},
        actions=[{"action": "issue_badge", "object": f"learner.{i}@a-long-company-domain.example / Fire Warden",
                  "message": f"would issue Fire Warden to learner {i} (learning plan 501 completed 2025-03-01)"}
                 for i in range(100)])
    app = make_app(seeded_ctx, "syncs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(PlanReviewScreen(summary))
        await settle(pilot)
        dialog = app.screen.query_one("#plan-dialog")
        for button in app.screen.query(Button):
            assert dialog.content_region.contains_region(button.region), (button.id, button.region)
        await pilot.press("down", "down")
        await pilot.pause()
        detail = str(app.screen.query_one("#plan-detail").render())
        assert "learner.2@a-long-company-domain.example / Fire Warden" in detail
        assert "would issue Fire Warden to learner 2 (learning plan 501 completed 2025-03-01)" in detail



async def test_the_mapping_form_fits_an_80x24_terminal(seeded_ctx):
    """Every field and both buttons of the mapping form show on an 80x24 terminal (short
    terminals get one-line inputs and buttons), nothing needs scrolling."""
    from textual.widgets import Button, Input, Switch

    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen.query_one("#mapping-dialog")
        for widget in [*app.screen.query(Input), *app.screen.query(Switch), *app.screen.query(Button)]:
            assert dialog.content_region.contains_region(widget.region), (widget.id, widget.region)


def test_limiter_text_of_dashboard_and_settings_writes_thousands_separators():
    from screens.dashboard import limit_text
    from services.clients.http import RateLimiter

    assert limit_text(RateLimiter.per_hour(1_000_000)) == "60 calls available now (1,000,000/hour, burst 60)"
    assert limit_text(RateLimiter.per_minute(5_000), brief=True) == "5,000 calls available now"
