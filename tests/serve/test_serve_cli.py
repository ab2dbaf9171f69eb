"""The CLI of real-time sync: webhooks, schedule, inbox and notifications (W1-W4, N1)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from console.cli import cli
from services.core.config import AppConfig, database_path, save_config
from services.store import inbox, notifications
from services.store.db import Store
from services.store.inbox import NewItem

SECRET = "cli-secret_0123456789abcdef"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def db():
    with Store(database_path()) as store:
        yield store


def test_webhooks_prints_both_urls_with_the_secret(run):
    cfg = AppConfig()
    cfg.server.port = 9000
    cfg.server.docebo_basic_auth_user = "docebo"
    cfg.credly.organization_id = "org-1"
    save_config(cfg)
    result = run("webhooks", env={"CREDLY_CONSOLE_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 0
    assert f"http://127.0.0.1:9000/webhooks/docebo/{SECRET}" in result.output
    assert f"http://127.0.0.1:9000/webhooks/credly/{SECRET}" in result.output
    assert "user 'docebo'" in result.output
    public = run("webhooks", "--public-url", "https://sync.example.org/", "--json",
                 env={"CREDLY_CONSOLE_WEBHOOK_SECRET": SECRET})
    data = json.loads(public.stdout)
    assert data["docebo"] == f"https://sync.example.org/webhooks/docebo/{SECRET}"
    assert data["credly"] == f"https://sync.example.org/webhooks/credly/{SECRET}"


def test_webhooks_without_a_secret_is_a_configuration_error(run):
    result = run("webhooks")
    assert result.exit_code == 2 and "CREDLY_CONSOLE_WEBHOOK_SECRET" in result.stderr
    # no keyring on this machine: a new secret cannot be stored, and the message says what to do
    result = run("webhooks", "--new-secret")
    assert result.exit_code == 1 and "CREDLY_CONSOLE_WEBHOOK_SECRET" in result.stderr


def test_schedule_list_enable_disable(run):
    result = run("schedule", "list", "--json")
    jobs = {j["job"]: j for j in json.loads(result.stdout)}
    assert jobs["templates"]["enabled"] and not jobs["docebo_to_credly"]["enabled"]
    assert run("schedule", "enable", "docebo-to-credly").exit_code == 0
    assert run("schedule", "disable", "dropdown").exit_code == 0
    jobs = {j["job"]: j for j in json.loads(run("schedule", "list", "--json").stdout)}
    assert jobs["docebo_to_credly"]["enabled"] and not jobs["dropdown"]["enabled"]
    bad = run("schedule", "enable", "everything")
    assert bad.exit_code == 2 and "unknown job" in bad.stderr
    table = run("schedule", "list").output
    assert "templates" in table and "America/Los_Angeles" in table


def put_rows(db) -> None:
    inbox.insert_items(db, [
        NewItem("docebo", "docebo:m1:0", "course.enrollment.completed", "docebo-user:1", {"user_id": 1, "course_id": 7}),
        NewItem("credly", "credly:e1", "badge.created", "?", {"id": "e1"}),
    ])
    [row] = inbox.claim(db, "w")
    inbox.record_failure(db, row["id"], "w", "Credly 422 Invalid template", retry_at=None)


def test_inbox_list_show_and_retry(run, db):
    put_rows(db)
    listed = run("inbox", "list")
    assert listed.exit_code == 0
    assert "course.enrollment.completed" in listed.stdout and "failed" in listed.stdout
    assert "backlog 1" in listed.stderr and "failed 1" in listed.stderr
    data = json.loads(run("inbox", "list", "--status", "failed", "--json").stdout)
    assert data["total"] == 1 and data["items"][0]["last_error"] == "Credly 422 Invalid template"
    shown = run("inbox", "show", "1")
    assert '"course_id": 7' in shown.stdout and "Credly 422 Invalid template" in shown.stdout
    assert json.loads(run("inbox", "show", "1", "--json").stdout)["data"] == {"user_id": 1, "course_id": 7}
    assert run("inbox", "show", "99").exit_code == 1
    not_failed = run("inbox", "retry", "2")
    assert not_failed.exit_code == 1 and "queued" in not_failed.stderr
    assert run("inbox", "retry").exit_code == 2
    assert run("inbox", "retry", "1").exit_code == 0
    assert inbox.get_item(db, 1)["status"] == "queued"
    [row] = inbox.claim(db, "w")
    inbox.record_failure(db, row["id"], "w", "again", retry_at=None)
    result = run("inbox", "retry", "--all-failed")
    assert result.exit_code == 0 and "1 failed event queued again" in result.stdout


def test_notifications_list_show_mark_read(run, db):
    notifications.notify_error(db, "Issuing a badge failed", body="details", flow="course_completion",
                               object="user 1 / course 7", call="Credly POST /organizations/{org}/badges",
                               service_message="Invalid template")
    notifications.create_notification(db, "webhook_rejected", "Docebo webhook request with a wrong secret refused")
    listed = run("notifications", "list", "--unread")
    assert listed.exit_code == 0 and "Issuing a badge failed" in listed.stdout and "*" in listed.stdout
    shown = run("notifications", "show", "1")
    for part in (
        "details",
        "Object: user 1 / course 7",
        "Call: Credly POST",
        "Service message: Invalid template",
        "Mail: pending",
    ):
        assert part in shown.stdout
    unread = json.loads(run("notifications", "list", "--unread", "--json").stdout)
    assert [n["id"] for n in unread] == [2]  # show marked 1 read
    assert run("notifications", "mark-read").exit_code == 2
    assert run("notifications", "mark-read", "--all").stdout.startswith("1 notification marked read")
    assert json.loads(run("notifications", "list", "--unread", "--json").stdout) == []


def test_notifications_test_mail(run, db, smtp_server):
    cfg = AppConfig()
    cfg.smtp.host, cfg.smtp.port, cfg.smtp.starttls = smtp_server.host, smtp_server.port, False
    save_config(cfg)
    assert run("notifications", "test-mail").exit_code == 2  # no recipient
    result = run("notifications", "test-mail", "--to", "me@example.org")
    assert result.exit_code == 0, result.output
    assert smtp_server.wait_for(1)[0]["Subject"] == "[credly-console] test mail"


def test_every_new_command_has_help(run):
    for args in (
        ["serve"],
        ["webhooks"],
        ["schedule", "list"],
        ["inbox", "list"],
        ["inbox", "retry"],
        ["notifications", "show"],
        ["demo"],
    ):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
