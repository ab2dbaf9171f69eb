"""E-mail of notifications (N1) through the ``[smtp]`` server to ``NOTIFICATION_MAIL_ID``.

Design notes: docs/design/serve.md
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from services.store.db import Store
from services.store.notifications import describe_cause

log = logging.getLogger("credly_console.mailer")

BACKOFF_S: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)
MAX_PER_MAIL = 200


@dataclasses.dataclass
class MailResult:
    sent: int = 0  # notifications mailed in this round
    error: str = ""  # why nothing was sent ('' when sent or nothing to send)
    waiting: int = 0  # notifications still pending after this round

    @property
    def ok(self) -> bool:
        return not self.error


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_notification(row: dict[str, Any]) -> str:
    """A notification as plain text, with every piece of context it has."""
    lines = [row["title"], "=" * min(len(row["title"]), 78), ""]
    if row.get("body"):
        lines += [row["body"], ""]
    context = [
        ("When", row.get("created_at")),
        ("Kind", row.get("kind")),
        ("Flow", row.get("flow")),
        ("Run", row.get("run_id")),
        ("Object", row.get("object")),
        ("Call", row.get("call")),
        ("Service message", row.get("service_message")),
        ("Notification", f"#{row['id']}"),
    ]
    lines += [f"{label}: {value}" for label, value in context if value not in (None, "")]
    return "\n".join(lines)


def compose(rows: list[dict[str, Any]], *, sender: str, recipient: str) -> EmailMessage:
    """One mail for ``rows``: the notification itself, or a digest of all of them."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain="credly-console.local")
    if len(rows) == 1:
        msg["Subject"] = f"[credly-console] {rows[0]['title']}"
        msg.set_content(format_notification(rows[0]) + "\n\n-- \ncredly-console\n")
        return msg
    n = len(rows)
    causes = _by_cause(rows)
    if len(causes) == 1 and len(causes[0][1]) == n:
        title, _advice = describe_cause(causes[0][0], rows[-1].get("service_message", ""))
        msg["Subject"] = f"[credly-console] {title} ({n} notifications)"
    else:
        msg["Subject"] = f"[credly-console] {n} notifications (digest)"
    parts = []
    for cause, members in causes:  # one paragraph per cause (issue 16): what happened, what to do
        title, advice = describe_cause(cause, members[-1].get("service_message", ""))
        parts += [f"{title} — {len(members)} notification{'s' if len(members) != 1 else ''}", f"  {advice}", ""]
    parts += [f"{n} notifications since the last mail, oldest first:", ""]
    parts += [f"  {i}. {r['title']}" for i, r in enumerate(rows, 1)]
    for i, r in enumerate(rows, 1):
        parts += ["", "-" * 78, f"{i}. " + format_notification(r)]
    msg.set_content("\n".join(parts) + "\n\n-- \ncredly-console\n")
    return msg


def _by_cause(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows that carry a cause, grouped by it in the order first seen."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("cause"):
            groups.setdefault(row["cause"], []).append(row)
    return list(groups.items())


class Mailer:
    """Sends pending notifications (see the module docstring).

    ``smtp`` is the ``[smtp]`` config section; ``secrets`` a SecretStore; ``clock`` returns an
    aware datetime; ``timeout`` bounds each SMTP connection."""

    def __init__(
        self,
        smtp: Any,
        secrets: Any,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        timeout: float = 30.0,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.smtp = smtp
        self.secrets = secrets
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.timeout = timeout
        self.backoff_s = backoff_s
        self.ssl_context = ssl_context

    @property
    def configured(self) -> bool:
        return bool(getattr(self.smtp, "host", ""))

    def sender(self) -> str:
        return self.smtp.sender or self.smtp.username or f"credly-console@{socket.gethostname()}"

    def send_pending(self, store: Store) -> MailResult:
        """One sending round: mail every due pending notification (one mail), record the result."""
        from services.store.settings import get_setting

        now = self.clock()
        rows = list(
            store.db.query(
                "SELECT * FROM notifications WHERE mail_status = 'pending' "
                "AND (mail_next_attempt_at IS NULL OR mail_next_attempt_at <= ?) ORDER BY id LIMIT ?",
                (_stamp(now), MAX_PER_MAIL),
            )
        )
        waiting = store.conn.execute("SELECT COUNT(*) FROM notifications WHERE mail_status = 'pending'").fetchone()[0]
        if not rows:
            return MailResult(waiting=waiting)
        if not self.configured:
            return MailResult(error="no SMTP server is configured ([smtp] host)", waiting=waiting)
        recipient = get_setting(store, "NOTIFICATION_MAIL_ID").strip()
        if not recipient:
            return MailResult(error="NOTIFICATION_MAIL_ID is not set", waiting=waiting)
        msg = compose(rows, sender=self.sender(), recipient=recipient)
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        try:
            self.deliver(msg)
        except Exception as exc:  # kept and retried (N1)
            error = f"{type(exc).__name__}: {exc}"
            attempts = max(r["mail_attempts"] for r in rows) + 1
            delay = self.backoff_s[min(attempts - 1, len(self.backoff_s) - 1)]
            with store.write():
                store.conn.execute(
                    f"UPDATE notifications SET mail_attempts = mail_attempts + 1, mail_error = ?, "
                    f"mail_next_attempt_at = ? WHERE id IN ({marks})",
                    (error, _stamp(now + dt.timedelta(seconds=delay)), *ids),
                )
            log.warning("could not mail %d notification(s) (attempt %d); retrying in %ds: %s",
                        len(ids), attempts, int(delay), error)
            return MailResult(error=error, waiting=waiting)
        with store.write():
            store.conn.execute(
                f"UPDATE notifications SET mail_status = 'sent', mail_attempts = mail_attempts + 1, mail_error = '', "
                f"mailed_at = ?, mail_next_attempt_at = NULL WHERE id IN ({marks})",
                (_stamp(self.clock()), *ids),
            )
        log.info("mailed %d notification(s) to %s", len(ids), recipient)
        return MailResult(sent=len(ids), waiting=waiting - len(ids))

    def deliver(self, msg: EmailMessage) -> None:
        """Send one message through the configured server (STARTTLS, implicit TLS or plain)."""
        s = self.smtp
        context = self.ssl_context or ssl.create_default_context()
        if s.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        try:
            client.ehlo()
            if s.starttls and not s.tls:
                client.starttls(context=context)
                client.ehlo()
            if s.username:
                password = self.secrets.get("smtp_password") or ""
                if not password:
                    raise smtplib.SMTPAuthenticationError(
                        535, b"no SMTP password is set (secret smtp_password / SMTP_PASSWORD)"
                    )
                client.login(s.username, password)
            client.send_message(msg)
        finally:
            try:
                client.quit()
            except Exception:
                client.close()

    def test(self, recipient: str) -> None:
        """Send a test mail to ``recipient`` now (raises on failure)."""
        msg = EmailMessage()
        msg["From"] = self.sender()
        msg["To"] = recipient
        msg["Subject"] = "[credly-console] test mail"
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg.set_content("This is a test mail from credly-console: notification mail works.\n")
        self.deliver(msg)
