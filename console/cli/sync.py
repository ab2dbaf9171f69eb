"""`credly-console sync FLOW` and `credly-console mappings check` (SPEC §2, M3).

Design notes: docs/design/console.md
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from console.cli.common import EXIT_BUSY, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, echo_json, fail, terminal_safe

FLOWS = ("templates", "dropdown", "docebo-to-credly", "credly-to-docebo", "all")
NEEDS = {
    "templates": ("credly",),
    "dropdown": ("docebo",),
    "docebo-to-credly": ("credly", "docebo"),
    "credly-to-docebo": ("credly", "docebo"),
    "all": ("credly", "docebo"),
}
PLAIN_PROGRESS_EVERY = 2.0  # seconds between progress lines when stderr is not a terminal


def _connection_problems(config: Any, secrets: Any, services: tuple[str, ...]) -> list[str]:
    problems = []
    if "credly" in services:
        if not config.credly.base_url:
            problems.append("[credly] base_url is not set in the configuration file")
        if not config.credly.organization_id:
            problems.append("[credly] organization_id is not set in the configuration file")
        if not secrets.get("credly_token"):
            problems.append("the Credly token is not set (keyring entry credly_token or the CREDLY_TOKEN environment variable)")
    if "docebo" in services:
        if not config.docebo.base_url:
            problems.append("[docebo] base_url is not set in the configuration file")
        if not config.docebo.client_id:
            problems.append("[docebo] client_id is not set in the configuration file")
        if not secrets.get("docebo_client_secret"):
            problems.append(
                "the Docebo client secret is not set (keyring entry docebo_client_secret or the DOCEBO_CLIENT_SECRET "
                "environment variable)"
            )
        if (config.docebo.grant or "") == "password" and not secrets.get("docebo_password"):
            problems.append(
                "the Docebo password is not set (keyring entry docebo_password or the DOCEBO_PASSWORD environment variable)"
            )
    return problems


class _Progress:
    """A one-line progress bar on a terminal; plain lines otherwise (both on stderr)."""

    def __init__(self, label: str, tty: bool) -> None:
        self.label = label
        self.tty = tty
        self.last_line = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if self.tty:
            if total:
                width = 30
                filled = min(width, int(width * done / total)) if total else 0
                text = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            else:
                text = f"\r{self.label} {done} items"
            click.echo(text, nl=False, err=True)
            self.shown = True
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_PROGRESS_EVERY or (total is not None and done >= total):
            self.last_line = now
            click.echo(f"{self.label}: {done}/{total if total is not None else '?'}", err=True)

    def close(self) -> None:
        if self.tty and self.shown:
            click.echo("", err=True)


def _summary_line(s: Any) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in s.counts.items() if v)
    text = f"{s.flow}: {s.status}" + (f" ({s.mode})" if getattr(s, "mode", "") else "") + (" (dry run)" if s.dry_run else "")
    if counts:
        text += f" — {counts}"
    if s.reason and s.status != "succeeded":
        text += f" — {s.reason}"
    return text + (f" [run {s.run_id}]" if s.run_id else "")


def _exit_code(s: Any) -> int:
    """Worst first: blocked by the configuration (2), then failed (1), then skipped because the
    flow runs elsewhere (3, W4), so with `all` a skipped flow never hides another one's failure."""
    if s.status == "failed" and "blocked by the configuration" in (s.reason or ""):
        return EXIT_USAGE
    if any("blocked by the configuration" in (c.reason or "") for c in s.children):
        return EXIT_USAGE
    if s.status in ("failed", "cancelled") or s.counts.get("failed"):
        return EXIT_FAILURE
    if any(c.status in ("failed", "cancelled") or c.counts.get("failed") for c in s.children):
        return EXIT_FAILURE
    if s.busy or any(c.busy for c in s.children):
        return EXIT_BUSY
    return EXIT_OK


@click.command("sync")
@click.argument("flow", type=click.Choice(FLOWS))
@click.option("--dry-run", is_flag=True, help="List what the flow would do; change nothing in Credly, Docebo or the tables.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary (counts, status, actions) as JSON.")
@click.option(
    "--full",
    is_flag=True,
    help="docebo-to-credly / credly-to-docebo: read everything instead of only what changed "
    "since the last good run (a full reconciliation).",
)
def sync_command(flow: str, dry_run: bool, as_json: bool, full: bool) -> None:
    """Run one sync flow now and print its summary.

    \b
    FLOW is one of:
      templates         F1  Credly badge templates → the templates table
      dropdown          F2  the templates table → the Docebo course dropdown field
      docebo-to-credly  F7  completions and certification awards → Credly badges
      credly-to-docebo  F6  badges of mapped templates → external trainings / awards
      all               the four above, in that order

    docebo-to-credly and credly-to-docebo read only what changed since their last good run
    (incremental) unless --full is given, the configuration that decides what qualifies changed
    since their last full run, or the daily full reconciliation is due (first run after 02:00
    America/Los_Angeles). The summary says which: (full) or (incremental).
    """
    import asyncio  # here, not at module level: `credly-console --help` stays light (~24 ms)

    from services.core.config import ConfigError, load_config
    from services.core.secrets import KeyringSecrets
    from services.store.db import StoreError

    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    secrets = KeyringSecrets()
    problems = _connection_problems(config, secrets, NEEDS[flow])
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE)
    try:
        summary = asyncio.run(_run(flow, config, secrets, dry_run=dry_run, quiet=as_json, full=full))
    except StoreError as exc:
        fail(str(exc), exc.exit_code)
    if as_json:
        echo_json(summary.to_dict())
    else:
        if summary.dry_run and summary.actions:
            click.echo(f"plan ({len(summary.actions)} actions):")
            for a in summary.actions:
                click.echo(terminal_safe(f"  {a['action']:<28} {a['object']}: {a['message']}"))
        for child in summary.children:
            click.echo(terminal_safe(_summary_line(child)))
        click.echo(terminal_safe(_summary_line(summary)))
    raise click.exceptions.Exit(_exit_code(summary))


async def _run(flow: str, config: Any, secrets: Any, *, dry_run: bool, quiet: bool, full: bool = False) -> Any:
    import asyncio
    import signal

    from console.cli.common import open_store
    from services.clients.factory import build_credly, build_docebo
    from services.core.config import database_path
    from services.flows import Callbacks, FlowContext, run_flow

    cancel = {"asked": False}
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if cancel["asked"]:
            raise KeyboardInterrupt
        cancel["asked"] = True
        click.echo("\nstopping after the items in progress (Ctrl-C again to stop now)", err=True)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
        pass
    progress = _Progress(flow, sys.stderr.isatty())

    def on_log(line: Any) -> None:
        if line.level == "error" and not quiet:
            if progress.tty and progress.shown:
                click.echo("", err=True)
            click.echo(terminal_safe(f"error: {line.object + ': ' if line.object else ''}{line.message}", lines=True), err=True)

    needs = NEEDS[flow]
    credly = build_credly(config, secrets, database=database_path()) if "credly" in needs else None
    docebo = build_docebo(config, secrets, database=database_path()) if "docebo" in needs else None
    try:
        with open_store() as store:
            ctx = FlowContext(store, credly, docebo)
            callbacks = Callbacks(on_progress=progress, on_log=on_log, should_cancel=lambda: cancel["asked"])
            try:
                return await run_flow(flow, ctx, dry_run=dry_run, trigger="cli", callbacks=callbacks, full=full)
            finally:
                progress.close()
    finally:
        for client in (credly, docebo):
            if client is not None:
                await client.aclose()


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def mappings_check(as_json: bool) -> None:
    """Check every mapping against Credly and Docebo (M3).

    Flags each mapping `ok` or `broken` with the reason (unknown template id, learning plan id
    or certification code). Nothing else is changed. Exit 1 when a mapping is broken."""
    import asyncio

    from console.cli.common import echo_table, open_store
    from services.clients.factory import build_credly, build_docebo
    from services.core.config import ConfigError, load_config
    from services.core.errors import ApiError
    from services.core.secrets import KeyringSecrets
    from services.flows import FlowContext, check_mappings

    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    secrets = KeyringSecrets()
    problems = _connection_problems(config, secrets, ("credly", "docebo"))
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE)

    async def go() -> list[dict]:
        from services.clients.budget import caller_class
        from services.core.config import database_path

        credly = build_credly(config, secrets, database=database_path())
        docebo = build_docebo(config, secrets, database=database_path())
        try:
            with open_store() as store, caller_class("console"):  # M3: an interactive check, ahead of batches
                return await check_mappings(FlowContext(store, credly, docebo))
        finally:
            await credly.aclose()
            await docebo.aclose()

    try:
        results = asyncio.run(go())
    except ApiError as exc:
        fail(str(exc))
    if as_json:
        echo_json(results)
    else:
        echo_table(results, [("id", "ID"), ("status", "STATUS"), ("template_id", "TEMPLATE"), ("message", "MESSAGE")])
    raise click.exceptions.Exit(EXIT_FAILURE if any(r["status"] == "broken" for r in results) else EXIT_OK)
