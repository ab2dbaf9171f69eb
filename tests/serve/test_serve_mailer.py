"""Notification mail (N1) to a real SMTP server (aiosmtpd) on loopback: one mail per round, a
batch run's digest with its errors, STARTTLS / implicit TLS / login, unsent mail kept and retried."""

from __future__ import annotations

import datetime as dt

from serve_helpers import free_port

from services.core.config import SmtpConfig
from services.core.secrets import MemorySecrets
from services.serve.mailer import Mailer
from services.store import notifications
from services.store.runs import RunRecorder
from services.store.settings import set_setting

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
ADMIN = "lms-admin@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def mailer_for(server, clock=None, **smtp) -> Mailer:
    config = SmtpConfig(host=server.host, port=server.port, starttls=False, sender="sync@example.org", **smtp)
    return Mailer(config, MemorySecrets({"smtp_password": "pw-123"}), clock=clock, timeout=5,
                  ssl_context=getattr(server, "client_context", None))


def mail_status(store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT mail_status FROM notifications ORDER BY id")]


def test_a_notification_is_mailed_to_the_notification_address(store, smtp_server):
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    notifications.notify_error(store, "Issuing a badge failed", body="Credly POST /organizations/{org}/badges 422",
                               flow="course_completion", run_id=None, object="user 12 / course 77",
                               call="Credly POST /organizations/{org}/badges", service_message="Invalid template")
    result = mailer_for(smtp_server).send_pending(store)
    assert result.sent == 1 and result.ok
    [msg] = smtp_server.wait_for(1)
    assert msg["Subject"] == "[credly-console] Issuing a badge failed"
    assert msg["To"] == ADMIN and msg["X-Envelope-To"] == ADMIN and msg["From"] == "sync@example.org"
    text = msg.get_content()
    for part in ("user 12 / course 77", "Call: Credly POST /organizations/{org}/badges", "Service message: Invalid template",
                 "Flow: course_completion"):
        assert part in text
    assert mail_status(store) == ["sent"]
    assert mailer_for(smtp_server).send_pending(store).sent == 0  # nothing twice


def test_a_batch_run_sends_one_digest_with_its_errors(store, smtp_server):
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    rec = RunRecorder.start(store, "docebo_to_credly", trigger="schedule")
    for user in (11, 12, 13):
        notifications.notify_error(store, "Issuing a badge failed", body=f"Credly 503 for user {user}",
                                   flow="docebo_to_credly", run_id=rec.id, object=f"user {user}", in_digest=True)
    rec.finish("succeeded")
    digest_id = notifications.close_digest(store, rec.id)
    assert digest_id is not None
    result = mailer_for(smtp_server).send_pending(store)
    assert result.sent == 1  # only the digest is mailed; the three errors ride in it
    [msg] = smtp_server.wait_for(1)
    assert "3 errors" in msg["Subject"]
    text = msg.get_content()
    for user in (11, 12, 13):
        assert f"Credly 503 for user {user}" in text
    assert mail_status(store) == ["in_digest"] * 3 + ["sent"]


def test_several_pending_notifications_go_out_as_one_mail(store, smtp_server):
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    for n in range(5):
        notifications.notify_error(store, f"Webhook event {n} failed", body=f"reason {n}")
    assert mailer_for(smtp_server).send_pending(store).sent == 5
    [msg] = smtp_server.wait_for(1)
    assert msg["Subject"] == "[credly-console] 5 notifications (digest)"
    assert all(f"reason {n}" in msg.get_content() for n in range(5))


def test_unsent_mail_is_kept_and_retried_with_backoff(store):
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    notifications.notify_error(store, "Docebo unreachable")
    clock = Clock()
    port = free_port()  # nothing listens here yet
    config = SmtpConfig(host="127.0.0.1", port=port, starttls=False)
    mailer = Mailer(config, MemorySecrets(), clock=clock, timeout=2)
    first = mailer.send_pending(store)
    assert not first.ok and "ConnectionRefusedError" in first.error
    row = notifications.get_notification(store, 1)
    assert row["mail_status"] == "pending" and row["mail_attempts"] == 1 and row["mail_error"]
    assert row["mail_next_attempt_at"] == "2026-01-05T12:01:00.000Z"
    clock.now += dt.timedelta(seconds=30)
    assert mailer.send_pending(store).error == ""  # not due yet: no attempt
    assert notifications.get_notification(store, 1)["mail_attempts"] == 1
    clock.now += dt.timedelta(seconds=31)
    mailer.send_pending(store)
    assert notifications.get_notification(store, 1)["mail_next_attempt_at"] == "2026-01-05T12:06:01.000Z"
    # the server comes up: the kept mail goes out
    from aiosmtpd.controller import Controller
    from serve_helpers import RecordingHandler, SmtpServer

    up = SmtpServer("127.0.0.1", port)
    controller = Controller(RecordingHandler(up), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.now += dt.timedelta(minutes=6)
        assert mailer.send_pending(store).sent == 1
        assert up.wait_for(1)[0]["Subject"] == "[credly-console] Docebo unreachable"
    finally:
        controller.stop()
    row = notifications.get_notification(store, 1)
    assert row["mail_status"] == "sent" and row["mail_attempts"] == 3 and row["mail_error"] == ""


def test_without_recipient_or_server_nothing_is_attempted(store, smtp_server):
    notifications.notify_error(store, "x")
    result = mailer_for(smtp_server).send_pending(store)
    assert "NOTIFICATION_MAIL_ID" in result.error
    unconfigured = Mailer(SmtpConfig(), MemorySecrets())
    assert "SMTP" in unconfigured.send_pending(store).error
    assert notifications.get_notification(store, 1)["mail_attempts"] == 0
    assert smtp_server.messages == []


def test_starttls_with_login(store, smtp_server_factory):
    server = smtp_server_factory(tls="starttls", login=("sync", "pw-123"))
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    notifications.notify_error(store, "over STARTTLS")
    config = SmtpConfig(host=server.host, port=server.port, starttls=True, username="sync")
    mailer = Mailer(config, MemorySecrets({"smtp_password": "pw-123"}), ssl_context=server.client_context, timeout=5)
    assert mailer.send_pending(store).sent == 1
    assert server.wait_for(1)[0]["Subject"] == "[credly-console] over STARTTLS"
    assert server.logins == ["sync"]


def test_implicit_tls(store, smtp_server_factory):
    server = smtp_server_factory(tls="implicit")
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    notifications.notify_error(store, "over TLS")
    config = SmtpConfig(host=server.host, port=server.port, starttls=False, tls=True)
    mailer = Mailer(config, MemorySecrets(), ssl_context=server.client_context, timeout=5)
    assert mailer.send_pending(store).sent == 1
    assert server.wait_for(1)[0]["Subject"] == "[credly-console] over TLS"


def test_a_wrong_password_keeps_the_mail_and_never_records_the_password(store, smtp_server_factory):
    server = smtp_server_factory(login=("sync", "right-password"))
    set_setting(store, "NOTIFICATION_MAIL_ID", ADMIN)
    notifications.notify_error(store, "x")
    config = SmtpConfig(host=server.host, port=server.port, starttls=False, username="sync")
    result = Mailer(config, MemorySecrets({"smtp_password": "wrong-password"}), timeout=5).send_pending(store)
    assert not result.ok and "535" in result.error
    row = notifications.get_notification(store, 1)
    assert row["mail_status"] == "pending" and "wrong-password" not in row["mail_error"]
