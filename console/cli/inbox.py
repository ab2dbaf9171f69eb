"""CLI of the webhook inbox (W2, W3): `inbox list|show ID|retry ID|retry --all-failed`."""

from __future__ import annotations

import json

import click

from console.cli.common import (
    EXIT_USAGE,
    LIMIT_HELP,
    OFFSET,
    ROW_ID,
    echo_json,
    echo_table,
    fail,
    handle_errors,
    open_store,
    paging_note,
    terminal_safe,
)

# -- inbox ---------------------------------------------------------------------------------------


@click.group("inbox")
def inbox_group() -> None:
    """Webhook deliveries: what arrived, what was processed, what failed (W2, W3)."""


@inbox_group.command("list")
@click.option("--status", type=click.Choice(["queued", "processing", "done", "failed", "skipped", "backlog"]),
              default=None, help="Only rows in this state (backlog = queued or processing).")
@click.option("--source", type=click.Choice(["docebo", "credly"]), default=None)
@click.option("--search", default="", help="Text in the event type, delivery key, learner or error.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help=LIMIT_HELP)
@click.option("--offset", type=OFFSET, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (rows and counts).")
@handle_errors
def inbox_list(status: str | None, source: str | None, search: str, limit: int, offset: int, as_json: bool) -> None:
    """Deliveries, newest first, and the counts per state."""
    from services.store import inbox

    with open_store() as store:
        rows = inbox.list_items(store, status=status, source=source, text=search, limit=limit, offset=offset)
        total = inbox.count_items(store, status=status, source=source, text=search)
        counts = inbox.counts(store)
    if as_json:
        echo_json({"items": rows, "total": total, "counts": counts})
        return
    for row in rows:
        row["error"] = (row["last_error"][:60] + "…") if len(row["last_error"]) > 60 else row["last_error"]
    echo_table(rows, [("id", "ID"), ("received_at", "RECEIVED"), ("source", "SOURCE"), ("event_type", "EVENT"),
                      ("learner_key", "LEARNER"), ("status", "STATUS"), ("attempts", "TRIES"),
                      ("run_id", "RUN"), ("error", "LAST ERROR")])
    paging_note(len(rows), offset, total)
    click.echo(
        f"backlog {counts['backlog']} (queued {counts['queued']}, processing {counts['processing']}), "
        f"done {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']}",
        err=True,
    )


@inbox_group.command("show")
@click.argument("item_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def inbox_show(item_id: int, as_json: bool) -> None:
    """One delivery with its payload, attempts and last error."""
    from services.store import inbox

    with open_store() as store:
        row = inbox.get_item(store, item_id)
    if row is None:
        fail(f"no inbox event with id {item_id}")
    row.pop("payload")
    if as_json:
        echo_json(row)
        return
    data = row.pop("data")
    width = max(len(k) for k in row)
    for key, value in row.items():
        click.echo(f"{key.ljust(width)}  {'' if value is None else terminal_safe(str(value))}")
    click.echo("payload:")
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@inbox_group.command("retry")
@click.argument("item_id", type=ROW_ID, required=False)
@click.option("--all-failed", is_flag=True, help="Retry every failed event.")
@handle_errors
def inbox_retry(item_id: int | None, all_failed: bool) -> None:
    """Put a failed (or skipped) event back in the queue, or all failed ones (W3).

    A running `serve` processes it within a second or two.
    """
    from services.store import inbox

    if (item_id is None) == (not all_failed):
        fail("give an event ID or --all-failed (not both)", EXIT_USAGE)
    with open_store() as store:
        if all_failed:
            n = inbox.retry_all_failed(store)
            click.echo(f"{n} failed event{'s' if n != 1 else ''} queued again")
            return
        row = inbox.get_item(store, item_id)
        if row is None:
            fail(f"no inbox event with id {item_id}")
        if not inbox.retry(store, item_id):
            fail(f"inbox event {item_id} is {row['status']}; only failed or skipped events can be retried")
    click.echo(f"inbox event {item_id} queued again")
