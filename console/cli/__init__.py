"""The `credly-console` command line.

Kept free of Textual at import time: `credly-console --help` and every non-UI command start
without importing the console (DESIGN.md; checked by tests/test_layering.py). Subcommands import
what they need inside their function bodies.

Exit codes: 0 success, 1 failure (items failed, a call failed), 2 usage or configuration error.
"""

from __future__ import annotations

import click

from console.cli.admin import config_group, locate, secrets_group
from console.cli.common import ExpectedErrorsGroup
from console.cli.demo import demo
from console.cli.explain import explain
from console.cli.inbox import inbox_group
from console.cli.notifications import notifications_group
from console.cli.ops import backup, restore, status
from console.cli.sandbox import sandbox
from console.cli.serve import schedule_group, serve, webhooks
from console.cli.sync import mappings_check, sync_command
from console.cli.tables import mappings_group, settings_group, templates_group


@click.group(cls=ExpectedErrorsGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credly-console")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep Docebo Learn and Credly in sync, from a terminal console or headless.

    Without a command, opens the console on the configured connections.
    """
    if ctx.invoked_subcommand is None:
        open_console()


def open_console() -> None:
    """Open the Textual console on this machine's config, keyring and database. Textual is
    imported here, not at module level, so `--help` and the other commands start without it."""
    from console.cli.common import EXIT_USAGE, fail
    from services.core.config import ConfigError
    from services.store.db import StoreError

    try:
        from services.appcontext import AppContext

        context = AppContext.from_environment()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    try:
        # Open (and migrate) the database once before the UI starts, so a database this
        # program cannot use is a plain error on stderr, not a screen of failures.
        from services.store.db import Store

        Store(context.database_path).close()
    except StoreError as exc:
        fail(str(exc), exc.exit_code)
        return
    from console.app import run_console

    run_console(context)


for command in (locate, config_group, secrets_group, settings_group, templates_group, mappings_group, sandbox,
                sync_command, serve, webhooks, schedule_group, inbox_group, notifications_group, demo,
                status, backup, restore, explain):
    cli.add_command(command)
mappings_group.add_command(mappings_check)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="credly-console")


