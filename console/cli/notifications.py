"""CLI of notifications (N1): `notifications list|show ID|mark-read|test-mail`."""

from __future__ import annotations

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


@click.group("notifications")
def notifications_group() -> None:
    """Error notifications, deletion notices and refused webhooks (N1)."""


@notifications_group.command("list")
@click.option("--unread", is_flag=True, help="Only unread notifications.")
@click.option("--kind", type=click.Choice(["error", "deletion_notice", "digest", "config", "webhook_rejected"]),
              default=None)
@click.option("--search", default="", help="Text in the title, body or object.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help=LIMIT_HELP)
@click.option("--offset", type=OFFSET, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def notifications_list(unread: bool, kind: str | None, search: str, limit: int, offset: int, as_json: bool) -> None:
    """Notifications, newest first (* = unread)."""
    from services.store import notifications

    with open_store() as store:
        rows = notifications.list_notifications(store, unread_only=unread, kind=kind, text=search, limit=limit,
                                                offset=offset)
        total = notifications.count_notifications(store, unread_only=unread, kind=kind, text=search)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["new"] = "*" if row["read_at"] is None else ""
    echo_table(rows, [("new", ""), ("id", "ID"), ("created_at", "CREATED"), ("kind", "KIND"), ("title", "TITLE"),
                      ("mail_status", "MAIL")])
    paging_note(len(rows), offset, total)


@notifications_group.command("show")
@click.argument("notification_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--keep-unread", is_flag=True, help="Do not mark it read.")
@handle_errors
def notifications_show(notification_id: int, as_json: bool, keep_unread: bool) -> None:
    """One notification with its full context (flow, run, object, call, service message); marks it read."""
    from services.serve.mailer import format_notification
    from services.store import notifications

    with open_store() as store:
        row = notifications.get_notification(store, notification_id)
        if row is None:
            fail(f"no notification with id {notification_id}")
        if not keep_unread:
            notifications.mark_read(store, [notification_id])
    if as_json:
        echo_json(row)
        return
    click.echo(terminal_safe(format_notification(row), lines=True))
    mail = row["mail_status"] + (f" ({row['mail_error']})" if row["mail_error"] else "")
    click.echo(f"Mail: {terminal_safe(mail)}")


@notifications_group.command("mark-read")
@click.argument("ids", type=ROW_ID, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Mark every notification read.")
@handle_errors
def notifications_mark_read(ids: tuple[int, ...], all_: bool) -> None:
    """Mark the given notifications (or --all) read."""
    from services.store import notifications

    if bool(ids) == all_:
        fail("give notification IDs or --all (not both)", EXIT_USAGE)
    with open_store() as store:
        n = notifications.mark_read(store, None if all_ else list(ids))
    click.echo(f"{n} notification{'s' if n != 1 else ''} marked read")


@notifications_group.command("test-mail")
@click.option("--to", "recipient", default=None, help="Recipient (default: NOTIFICATION_MAIL_ID).")
@handle_errors
def notifications_test_mail(recipient: str | None) -> None:
    """Send a test mail through the [smtp] server now."""
    from services.core.config import load_config
    from services.core.secrets import KeyringSecrets
    from services.serve.mailer import Mailer
    from services.store.settings import get_setting

    config = load_config()
    mailer = Mailer(config.smtp, KeyringSecrets())
    if not mailer.configured:
        fail("no SMTP server is configured: set [smtp] host in the config file", EXIT_USAGE)
    if recipient is None:
        with open_store() as store:
            recipient = get_setting(store, "NOTIFICATION_MAIL_ID")
    if not recipient:
        fail("no recipient: give --to or set NOTIFICATION_MAIL_ID", EXIT_USAGE)
    try:
        mailer.test(recipient)
    except Exception as exc:
        fail(f"the test mail could not be sent: {type(exc).__name__}: {exc}")
    click.echo(f"test mail sent to {recipient}")
