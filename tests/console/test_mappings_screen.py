"""Mappings screen stories: edit with an invalid learning plan (inline error, nothing saved), fix
it (saved), duplicates refused inline (M2), paging and filtering in SQL, CSV import with per-row
errors (M4), delete after confirmation, M3 check marking broken rows."""

from __future__ import annotations

from textual.widgets import Input

from screens.confirm import ConfirmScreen
from screens.csv_import import CsvImportScreen
from screens.mapping_form import MappingForm
from screens.mappings import MappingsScreen
from screens.widgets.paged_table import PagedTable
from services.store.mappings import MappingInput, add_mapping, get_mapping
from tests.console.conftest import SIZE, T_FIRE, T_SAFETY, make_app, screen_text, settle


def _error(screen, field: str) -> str:
    widget = screen.query_one(f"#{field}-error")
    return str(widget.render()) if widget.display else ""


async def _open_edit(pilot) -> MappingForm:
    await pilot.press("e")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, MappingForm)
    return form


async def test_edit_with_invalid_learning_plan_shows_inline_error_and_saves_nothing_then_fix_saves(seeded_ctx):
    from services.store.db import Store

    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form = await _open_edit(pilot)  # mapping #1: Fire Warden, learning plan 501
        plan = form.query_one("#learning_plan_id", Input)
        assert plan.value == "501"
        plan.value = "50x"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MappingForm)  # still open: nothing was saved
        assert "'50x' is not a Docebo learning plan id" in _error(form, "learning_plan_id")
        assert plan.has_focus  # the cursor goes to the field to fix
        assert "is not a Docebo learning plan id" in screen_text(app)
        with Store(seeded_ctx.database_path) as store:
            assert get_mapping(store, 1)["learning_plan_id"] == "501"
        # Fix it: the error goes as you type, Save stores it and the table shows it.
        plan.value = "502"
        await pilot.pause()
        assert _error(form, "learning_plan_id") == ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MappingsScreen)
        with Store(seeded_ctx.database_path) as store:
            assert get_mapping(store, 1)["learning_plan_id"] == "502"
        table = app.screen.query_one(PagedTable)
        assert str(table.get_row("1")[2]) == "502"


async def test_unknown_learning_plan_is_flagged_live_against_docebo(world):
    add_mapping(world.store, MappingInput(template_id=T_FIRE, learning_plan_id="501"))
    app = make_app(world.ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form = await _open_edit(pilot)
        assert form.known_learning_plans == {"501"} and form.known_certifications == {"CERT-OP"}
        form.query_one("#learning_plan_id", Input).value = "777"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Docebo has no learning plan with id 777" in _error(form, "learning_plan_id")
        assert get_mapping(world.store, 1)["learning_plan_id"] == "501"
        form.query_one("#certification_code", Input).value = "CERT-NOPE"
        await pilot.pause()
        assert "Docebo has no certification with code 'CERT-NOPE'" in _error(form, "certification_code")


async def test_add_duplicate_is_refused_inline_M2(seeded_ctx):
    from services.store.db import Store

    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, MappingForm)
        form.query_one("#template", Input).value = "fire warden"  # picked from T by name, any case
        form.query_one("#learning_plan_id", Input).value = "501"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MappingForm)
        assert "already exists (id 1)" in str(form.query_one("#form-error").render())
        with Store(seeded_ctx.database_path) as store:
            assert store.db.execute("SELECT count(*) FROM mappings").fetchone()[0] == 5
        # A template that is not in T and not an id is refused by the field's validator.
        form.query_one("#template", Input).value = "No Such Badge"
        await pilot.pause()
        assert "no badge template named 'No Such Badge'" in _error(form, "template_id")
        form.query_one("#template", Input).value = "Fire Warden"
        form.query_one("#learning_plan_id", Input).value = "777"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MappingsScreen)
        with Store(seeded_ctx.database_path) as store:
            row = store.db.execute("SELECT template_id, learning_plan_id FROM mappings WHERE id = 6").fetchone()
        assert row == (T_FIRE, "777")


async def test_paging_and_filtering_happen_in_sql(seeded_ctx):
    from services.store.db import Store

    with Store(seeded_ctx.database_path) as store, store.write() as db:
        for n in range(1000, 1450):
            db.execute("INSERT INTO mappings (template_id, template_name, learning_plan_id, created_at, updated_at) "
                       "VALUES (?, 'Safety Basics', ?, 'x', 'x')", (T_SAFETY, str(n)))
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.row_count == 200 and table.page_total == 455
        await pilot.press("G")
        await settle(pilot)
        assert table.page_offset == 400 and table.row_count == 55 and table.current_key == "455"
        await pilot.press("g")
        await settle(pilot)
        assert table.page_offset == 0 and table.current_key == "1"
        await pilot.press("slash", *"1449")
        await settle(pilot)
        assert table.page_total == 1 and table.current_key == "455"
        assert "1–1 of 1" in str(app.screen.query_one("#mappings-status").render())
        await pilot.press("escape", "v")  # inactive only after two presses
        await pilot.press("v")
        await settle(pilot)
        assert table.page_total == 0


async def test_csv_import_lists_row_errors_and_changes_nothing_then_imports(seeded_ctx, tmp_path):
    from services.store.db import Store

    bad = tmp_path / "bad.csv"
    bad.write_text(f"template_id,learning_plan_id\n{T_SAFETY},42\n,43\n{T_SAFETY},4x\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text(f"template_id,learning_plan_id\n{T_SAFETY},42\n{T_SAFETY},43\n", encoding="utf-8")
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, CsvImportScreen)
        dialog.query_one("#csv-path", Input).value = str(bad)
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = screen_text(app)
        assert "2 rows with errors" in text
        assert "missing; expected the Credly badge template id" in text and "'4x' is not a Docebo" in text
        with Store(seeded_ctx.database_path) as store:
            assert store.db.execute("SELECT count(*) FROM mappings").fetchone()[0] == 5
        dialog.query_one("#csv-path", Input).value = str(good)
        await pilot.press("enter")  # check first: says what it would do
        await settle(pilot)
        assert "2 would be added" in str(dialog.query_one("#csv-result").render())
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MappingsScreen)
        assert app.screen.query_one(PagedTable).page_total == 7


async def test_delete_after_confirmation(seeded_ctx):
    from services.store.db import Store

    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_mapping(store, 1) is not None
        await pilot.press("d", "y")
        await settle(pilot)
        with Store(seeded_ctx.database_path) as store:
            assert get_mapping(store, 1) is None
        assert app.screen.query_one(PagedTable).current_key == "2"


async def test_toggle_active_and_check_against_docebo_and_credly_marks_broken_rows(world):
    await world.prepare()  # mapping #1: Fire Warden ↔ learning plan 501 (valid)
    add_mapping(world.store, MappingInput(template_id=T_FIRE, learning_plan_id="999"))
    app = make_app(world.ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert get_mapping(world.store, 1)["is_active"] is False
        await pilot.press("m")
        await settle(pilot)
        assert get_mapping(world.store, 1)["check_status"] == "ok"
        broken = get_mapping(world.store, 2)
        assert broken["check_status"] == "broken" and "learning plan 999" in broken["check_message"]
        table = app.screen.query_one(PagedTable)
        assert "broken" in str(table.get_row("2")[6])
        await pilot.press("down")
        await pilot.pause()
        assert "learning plan 999 does not exist in Docebo" in str(app.screen.query_one("#mapping-detail").render())


async def test_csv_import_with_replace_says_how_many_it_removes_and_asks_first(seeded_ctx, tmp_path):
    """Issue 16: Replace deleted 10 of 12 mappings with no preview; now it asks with the counts."""
    from textual.widgets import Switch

    from services.store.db import Store

    good = tmp_path / "two.csv"
    good.write_text(f"template_id,learning_plan_id\n{T_SAFETY},42\n{T_SAFETY},43\n", encoding="utf-8")
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        dialog = app.screen
        dialog.query_one("#csv-path", Input).value = str(good)
        dialog.query_one("#replace", Switch).value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one("#confirm-question").render())
        assert "Replace: 5 mappings will be removed, 2 added, 0 updated." in question
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is dialog
        with Store(seeded_ctx.database_path) as store:
            assert store.db.execute("SELECT count(*) FROM mappings").fetchone()[0] == 5
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, MappingsScreen)
        with Store(seeded_ctx.database_path) as store:
            assert store.db.execute("SELECT count(*) FROM mappings").fetchone()[0] == 2
