"""CLI of real-time sync: `serve`, `webhooks`, `schedule` (SPEC §3, W1–W4).

Services are imported inside the command bodies so `credly-console --help` stays light.
"""

from __future__ import annotations

import logging
import sys

import click

from console.cli.common import EXIT_USAGE, echo_json, echo_table, fail, handle_errors, open_store

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line for log shippers (`serve --log-format json`, issue 15): time (UTC,
    ISO 8601), level, logger, message, and the traceback as `exc_info` text. The standard library
    suffices for these fields, so no extra dependency."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime as dt
        import json

        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log lines to stderr, as text or JSON lines. httpx's own request lines stay quiet (they
    would show URLs)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- serve ---------------------------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default=None, help="Interface to listen on (default: [server] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [server] port, 8787; 0 = any free port, printed in the first log line).")
@click.option("--public-url", default="", metavar="URL",
              help="Base URL Docebo and Credly reach (behind a reverse proxy); only shown in the log.")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Events processed at once (always in order per learner).")
@click.option("--no-scheduler", is_flag=True, help="Do not run scheduled flows (F1, F2, F6, F7).")
@click.option("--no-mail", is_flag=True, help="Do not send notification mail.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (time, level, logger, message) for log shippers.")
@handle_errors
def serve(host: str | None, port: int | None, public_url: str, workers: int, no_scheduler: bool, no_mail: bool,
          log_level: str, log_format: str) -> None:
    """Receive Docebo and Credly webhooks, process them, run the schedule and send mail.

    One process: the webhook receiver (W1, W2), the inbox workers (W3), the scheduler (W4) and
    the notification mail (N1). Every delivery is stored before it is acknowledged; stop with
    SIGTERM or Ctrl+C: requests in flight are answered, events in hand finish or go back to the
    queue, and nothing acknowledged is lost. The first log line says where it listens.
    """
    from services.core.config import database_path, load_config
    from services.core.secrets import KeyringSecrets
    from services.serve.receiver import ReceiverConfigError
    from services.serve.service import ServeOptions, run_serve

    setup_logging(log_level, log_format)
    config = load_config()
    # A database this program cannot use is refused before anything listens (no "listening on"
    # line followed by an error).
    from services.store.db import Store

    Store(database_path()).close()
    options = ServeOptions(host=host, port=port, public_url=public_url, workers=workers,
                           scheduler=not no_scheduler, mail=not no_mail)
    try:
        run_serve(config, KeyringSecrets(), database_path(), options)
    except ReceiverConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        shown_host = host or config.server.host
        shown_port = config.server.port if port is None else port
        fail(f"cannot listen on {shown_host}:{shown_port}: {exc.strerror or exc}")


# -- webhooks ------------------------------------------------------------------------------------


@click.command("webhooks")
@click.option("--public-url", default="", metavar="URL",
              help="Base URL Docebo and Credly reach, e.g. https://sync.example.org (reverse proxy); "
                   "default http://[server] host:port.")
@click.option("--new-secret", is_flag=True,
              help="Generate a new webhook secret and store it in the keyring first (the old URLs stop working).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def webhooks(public_url: str, new_secret: bool, as_json: bool) -> None:
    """Print the two webhook URLs to paste into Docebo and Credly (W1).

    \b
    Docebo: Webhooks app → the webhook's endpoint URL (events course.enrollment.completed and
            the certification events); with [server] docebo_basic_auth_user set, choose
            Basic authentication with that user and the webhook secret as password.
    Credly: the organization's webhook URL (Developers → Webhooks), events badge.* and
            badge_template.*.
    The URLs contain the webhook secret: treat them like passwords.
    """
    import secrets as pysecrets

    from services.core.config import load_config
    from services.core.secrets import KeyringSecrets
    from services.serve.receiver import ReceiverConfigError, ReceiverSettings, base_url, webhook_urls

    config = load_config()
    store = KeyringSecrets()
    if new_secret:
        store.set("webhook_secret", pysecrets.token_urlsafe(32))
        click.echo("a new webhook secret is stored in the keyring; restart `serve` and update both webhooks", err=True)
    try:
        settings = ReceiverSettings.from_config(config, store)
    except ReceiverConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    base = base_url(config.server.host, config.server.port, public_url)
    urls = webhook_urls(base, settings.secret)
    info = {
        "docebo": urls["docebo"],
        "credly": urls["credly"],
        "docebo_basic_auth_user": config.server.docebo_basic_auth_user,
        "credly_organization_id": config.credly.organization_id,
    }
    if as_json:
        echo_json(info)
        return
    click.echo(f"Docebo webhook URL:  {urls['docebo']}")
    if config.server.docebo_basic_auth_user:
        click.echo(f"  HTTP Basic auth:   user {config.server.docebo_basic_auth_user!r}, password = the webhook secret")
    click.echo(f"Credly webhook URL:  {urls['credly']}")
    if not config.credly.organization_id:
        click.echo("warning: [credly] organization_id is not set; Credly notices will be refused until it is", err=True)
    if not public_url and config.server.host in ("127.0.0.1", "localhost", "::1"):
        click.echo("note: these URLs are on loopback; give --public-url with the address Docebo and Credly reach "
                   "(Credly requires HTTPS)", err=True)


# -- schedule ------------------------------------------------------------------------------------


@click.group("schedule")
def schedule_group() -> None:
    """The schedule of `serve` (W4): F1 daily at 02:00 America/Los_Angeles, F2 every 5 minutes,
    F6/F7 every 5 minutes once enabled."""


@schedule_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def schedule_list(as_json: bool) -> None:
    """Each job: on or off, its rule, its last run and when it runs next."""
    from services.serve.scheduler import list_jobs

    with open_store() as store:
        rows = list_jobs(store)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["state"] = "on" if row["enabled"] else "off"
        row["next"] = "due (runs when serve is up)" if row["due_now"] else (row["next_run_at"] or "-")
        row["last"] = row["last_started_at"] or "never"
    echo_table(rows, [("job", "JOB"), ("state", "STATE"), ("next", "NEXT RUN (UTC)"), ("last", "LAST START"),
                      ("last_run_id", "LAST RUN"), ("rule", "RULE")])


def _set(job: str, enabled: bool) -> None:
    from services.core.schedule import job_name
    from services.serve.scheduler import set_enabled

    try:
        key = job_name(job)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    with open_store() as store:
        set_enabled(store, key, enabled)
    click.echo(f"{key}: {'enabled' if enabled else 'disabled'} (a running `serve` picks this up within 30 seconds)")


@schedule_group.command("enable")
@click.argument("job")
@handle_errors
def schedule_enable(job: str) -> None:
    """Switch JOB on (templates, dropdown, docebo-to-credly, credly-to-docebo)."""
    _set(job, True)


@schedule_group.command("disable")
@click.argument("job")
@handle_errors
def schedule_disable(job: str) -> None:
    """Switch JOB off."""
    _set(job, False)
