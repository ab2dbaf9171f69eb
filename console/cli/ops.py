"""CLI for operators (issue 15): `status`, `backup PATH`, `restore PATH`.

Services are imported inside the command bodies so `credly-console --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from console.cli.common import EXIT_USAGE, echo_json, fail, handle_errors


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def status(as_json: bool) -> None:
    """The install's API budget (calls used and left in the window, by real-time, batch and
    console), the inbox backlog, and when each running batch will finish at the current pace."""
    from services.clients.factory import credly_budget, docebo_budget
    from services.core.config import ConfigError, database_path, load_config
    from services.serve.ops import install_status

    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    db = database_path()
    if not db.exists():
        fail(f"there is no database at {db} yet (nothing has run on this install)", EXIT_USAGE)
    budgets = [docebo_budget(config, db)] if config.docebo.base_url else []
    if config.credly.organization_id:
        budgets.append(credly_budget(config, db))
    data = install_status(db, budgets)
    if as_json:
        echo_json(data)
        return
    for line in status_lines(data):
        click.echo(line)


def status_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    if not data["budgets"]:
        lines.append("API budget: no Docebo connection configured")
    for b in data["budgets"]:
        window = "the last hour" if b["window_seconds"] == 3600 else f"the last {b['window_seconds']:g} s"
        if b["limit"] is None:
            lines.append(f"{b['service']} budget: no limit; {b['used']:,} calls in {window}")
        else:
            lines.append(f"{b['service']} budget: {b['used']:,} of {b['limit']:,} calls used in {window}, "
                         f"{b['left']:,} left")
        by = b["by_class"]
        share = f"; a batch may use {b['batch_share']:.0%} of the burst while events wait" if b["limit"] else ""
        lines.append(f"  used by real-time {by['realtime']:,}, batch {by['batch']:,}, console {by['console']:,}{share}")
        if b["paused_until"]:
            lines.append(f"  paused by the service until {b['paused_until']}")
    inbox = data["inbox"]
    age = inbox["oldest_queued_age_seconds"]
    lines.append(f"Inbox: {inbox['inbox_backlog']:,} waiting, {inbox['inbox_failed']:,} failed"
                 + (f", oldest queued {age:,.0f} s ago" if age is not None else ""))
    if not data["running"]:
        lines.append("Running batches: none")
    for run in data["running"]:
        progress = f"{run['done']:,}/{run['total']:,}" if run["total"] else f"{run['done']:,}"
        finish = f", finishes about {run['estimated_finish']}" if run["estimated_finish"] else ""
        lines.append(f"Running: run {run['run_id']} {run['flow']} ({run['trigger']}) {progress}{finish}")
    return lines


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace PATH if it exists.")
@handle_errors
def backup(path: Path, overwrite: bool) -> None:
    """Copy the database to PATH with SQLite's online backup (safe while `serve` runs); the copy
    is checked with PRAGMA integrity_check before it takes the name PATH."""
    from services.core.config import database_path
    from services.store.backup import backup as backup_database

    size = backup_database(database_path(), path, overwrite=overwrite)
    click.echo(f"backed up {database_path()} to {path} ({size:,} bytes, integrity ok)")


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def restore(path: Path) -> None:
    """Replace the database by the backup PATH. Refused while `serve` or a console has the
    database open; the replaced database is kept beside it."""
    from services.core.config import database_path
    from services.store.backup import restore as restore_database

    kept = restore_database(path, database_path())
    click.echo(f"restored {database_path()} from {path}"
               + (f"; the previous database is kept as {kept}" if kept else ""))
