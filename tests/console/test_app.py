"""The app shell: sections as modes with one key each, remappable keymap, the palette reaching
every action, the theme remembered, `?` showing the keys, one route for worker failures, and the
CLI opening the console."""

from __future__ import annotations

import io

from rich.console import Console
from textual.binding import Binding
from textual.widgets import HelpPanel
from textual.widgets._key_panel import BindingsTable

from console.app import SECTIONS, CredlyConsoleApp, all_binding_ids
from console.commands import palette_commands
from screens.base import ConsoleScreen, is_expected_error, report_worker_failure
from screens.error import ErrorScreen
from screens.mappings import MappingsScreen
from services.core.config import AppConfig, load_config, save_config
from services.core.errors import FileAccessError, MissingError
from services.store.db import StoreError
from services.store.mappings import MappingError
from tests.console.conftest import SIZE, make_app, screen_text, settle


async def test_each_section_has_one_key_shown_on_screen_and_question_mark_shows_its_keys(seeded_ctx):
    app = make_app(seeded_ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for section in SECTIONS:
            await pilot.press(section.key)
            await settle(pilot)
            assert app.current_mode == section.mode
            assert isinstance(app.screen, section.screen)
            text = screen_text(app)
            assert all(f"{s.key} {s.title}" in text for s in SECTIONS)
            # `?` shows this screen's keys, and hides them again.
            app.screen.set_focus(None)  # keys typed into a filter box would not reach the app
            await pilot.press("question_mark")
            await pilot.pause()
            console = Console(width=200, record=True, file=io.StringIO())
            console.print(app.screen.query_one(BindingsTable).render_bindings_table())
            first = next(b for b in section.screen.BINDINGS if b.show)
            assert first.description in console.export_text(), (section.mode, first.description)
            await pilot.press("question_mark")
            await pilot.pause()
            assert not app.screen.query(HelpPanel)


def test_every_binding_has_an_id_and_a_description_and_ids_are_unique():
    ids = all_binding_ids()
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    from screens import MODAL_CLASSES, WIDGET_CLASSES

    for cls in [CredlyConsoleApp, *(s.screen for s in SECTIONS), *MODAL_CLASSES, *WIDGET_CLASSES]:
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding) and binding.id and binding.description, (cls, binding)


async def test_palette_reaches_every_action_of_every_section(seeded_ctx):
    app = make_app(seeded_ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = palette_commands(app)
        texts = {c.text for c in commands}
        for section in SECTIONS:
            assert f"Go to {section.title}" in texts
            for binding in section.screen.BINDINGS:
                assert f"{section.title}: {binding.description}" in texts
        # Chosen in the palette from another section: switches there and runs it.
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"Mappings: Add")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "mappings"
        from screens.mapping_form import MappingForm

        assert isinstance(app.screen, MappingForm)


async def test_palette_search_finds_actions(seeded_ctx):
    from console.commands import ConsoleCommands

    app = make_app(seeded_ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = ConsoleCommands(app.screen)
        hits = [hit async for hit in provider.search("retry all")]
        assert any(h.text == "Inbox: Retry all failed" for h in hits)


async def test_keymap_from_config_remaps_keys_and_reports_unknown_ids(seeded_ctx):
    seeded_ctx.config.keymap = {"app.section.mappings": "m", "mappings.add": "a", "no.such.binding": "z"}
    app = CredlyConsoleApp(seeded_ctx, cursor_blink=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert any("no.such.binding" in n.message for n in app._notifications)
        await pilot.press("m")
        await settle(pilot)
        assert app.current_mode == "mappings"
        assert "m Mappings" in screen_text(app)
        await pilot.press("a")
        await settle(pilot)
        from screens.mapping_form import MappingForm

        assert isinstance(app.screen, MappingForm)
        assert any(c.text == "Mappings: Add" and "(key a)" in c.help for c in palette_commands(app))


async def test_theme_is_applied_at_start_and_saved_on_change(seeded_ctx):
    cfg = AppConfig()
    cfg.ui.theme = "nord"
    cfg.keymap = {"mappings.add": "a"}
    save_config(cfg, seeded_ctx.config_path)
    seeded_ctx.config = load_config(seeded_ctx.config_path)
    app = make_app(seeded_ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "nord"
        app.theme = "gruvbox"
        await settle(pilot)
        saved = load_config(seeded_ctx.config_path)
        assert saved.ui.theme == "gruvbox"
        assert saved.keymap == {"mappings.add": "a"}  # the rest of the file is kept


async def test_question_mark_shows_the_keys_of_the_screen(seeded_ctx):
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.query(HelpPanel)
        assert "Add a mapping" in screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert not app.screen.query(HelpPanel)


async def test_worker_failures_become_a_toast_or_the_error_modal(seeded_ctx):
    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MappingsScreen)

        def refused(store):
            raise MappingError([], "refused [on purpose]")

        screen.background(refused, group="t1")
        await settle(pilot)
        assert any(n.message == "refused [on purpose]" and not n.markup for n in app._notifications)
        assert not isinstance(app.screen, ErrorScreen)

        def bug(store):
            return {}["missing"]

        screen.background(bug, group="t2", description="Loading something")
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "KeyError" in screen_text(app) and "Loading something failed" in screen_text(app)


def test_expected_errors_are_those_of_the_services_and_the_environment():
    from services.core.errors import NetworkError
    from services.store.settings import SettingError

    assert is_expected_error(SettingError("K", "v", "x"))
    assert is_expected_error(NetworkError("Credly", "GET /x", None, "down"))
    assert is_expected_error(FileAccessError("cannot read nope.csv: No such file or directory"))
    assert is_expected_error(MissingError("mapping #3 no longer exists"))
    assert is_expected_error(StoreError("the database x.db is locked by another process"))
    assert not is_expected_error(FileNotFoundError("nope.csv"))  # a bug: the services wrap the files they open
    assert not is_expected_error(KeyError("x"))
    assert not is_expected_error(TypeError("x"))
    assert report_worker_failure and ConsoleScreen


def test_credly_console_without_arguments_opens_the_console(monkeypatch):
    from click.testing import CliRunner

    import console.app as app_module
    from console.cli import cli

    opened = []
    monkeypatch.setattr(app_module, "run_console", lambda context: opened.append(context))
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0, result.output
    assert len(opened) == 1 and opened[0].config_path is not None


def test_credly_console_with_a_broken_config_exits_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from console.cli import cli

    bad = tmp_path / "bad.toml"
    bad.write_text("[credly\n", encoding="utf-8")
    monkeypatch.setenv("CREDLY_CONSOLE_CONFIG", str(bad))
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 2
    assert "bad.toml" in result.output


def _configure_connections(ctx) -> None:
    from tests.console.conftest import ORG

    ctx.config.credly.organization_id = ORG
    ctx.config.docebo.base_url = "http://docebo.sandbox.test"
    ctx.config.docebo.client_id = "credly-console"


async def test_configured_connections_are_tested_at_start_once_an_hour(world):
    """Issue 7 polish: the dashboard shows both connections' health without the admin asking;
    a second start within the hour makes no call; an old result is tested again."""
    import datetime as dt

    from services.store.health import read_health, record_health

    _configure_connections(world.ctx)
    app = make_app(world.ctx, "dashboard")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        health = read_health(world.store)
        assert health["credly"]["ok"] and health["docebo"]["ok"], health
        await settle(pilot)
        text = screen_text(app)
        assert text.count("✔ ok") == 2 and "not tested yet" not in text
    first = read_health(world.store)

    app = make_app(world.ctx, "dashboard")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
    assert read_health(world.store) == first  # tested less than an hour ago: no call

    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    record_health(world.store, "docebo", True, "an old result", at=old)
    app = make_app(world.ctx, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert read_health(world.store)["docebo"]["checked_at"] > old
        assert read_health(world.store)["credly"] == first["credly"]
        assert "an old result" not in str(app.screen.query_one("#health-docebo").render())


async def test_a_failing_connection_at_start_is_said_in_a_toast(world):
    import httpx

    from services.clients.credly import CredlyClient
    from services.store.health import read_health

    _configure_connections(world.ctx)

    def wrong_token() -> CredlyClient:
        return CredlyClient("http://credly.sandbox.test/v1", world.credly_state.organization_id, "not-the-token",
                            policy=world.policy, transport=httpx.ASGITransport(app=world.credly_app))

    world.ctx.credly_factory = wrong_token
    app = make_app(world.ctx, "mappings")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        health = read_health(world.store)
        assert not health["credly"]["ok"] and health["docebo"]["ok"]
        toasts = [n for n in app._notifications if "Credly connection test failed" in n.message]
        assert toasts and not toasts[0].markup and "Settings, 2" in toasts[0].message


async def test_no_test_at_start_without_a_configured_connection(world):
    from services.store.health import read_health

    app = make_app(world.ctx, "dashboard")  # the world's config names no connection
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert read_health(world.store) == {}
        assert screen_text(app).count("not configured yet") == 2


async def test_at_80_columns_every_section_key_and_every_footer_key_shows_whole(seeded_ctx):
    """An ordinary 80x24 terminal: the line of sections shows all eight (the bold key against its title), and no section's footer
    runs under the palette key (what does not fit is in `?` and the palette)."""
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    from screens.widgets.section_bar import SectionBar

    app = make_app(seeded_ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for section in SECTIONS:
            await pilot.press(section.key)
            await settle(pilot)
            bar = str(app.screen.query_one(SectionBar).render())
            assert all(f"{s.key}{s.title}" in bar for s in SECTIONS) and "…" not in bar, bar
            assert len(bar.rstrip()) <= 80, bar
            keys = list(app.screen.query_one(Footer).query(FooterKey))
            palette = next(k for k in keys if "-command-palette" in k.classes)
            shown = [k for k in keys if k is not palette]
            assert {"Keys", "Quit"} <= {k.description for k in shown}
            assert max(k.region.right for k in shown) <= palette.region.x, (section.mode, [k.description for k in shown])
        # A section clicked in the bar is opened.
        bar = app.screen.query_one(SectionBar)
        start, _, mode = next(span for span in bar._spans if span[2] == "inbox")
        await pilot.click(SectionBar, offset=(start + 1, 0))
        await settle(pilot)
        assert app.current_mode == "inbox"


async def test_dialogs_show_their_own_keys(seeded_ctx):
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    app = make_app(seeded_ctx, "mappings")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        shown = {k.description for k in app.screen.query_one(Footer).query(FooterKey)}
        assert {"Save", "Cancel"} <= shown and "Add" not in shown
