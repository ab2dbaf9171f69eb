"""One error family (issue 11): the inputs that used to escape as tracebacks now end with one
`error:` line naming the file, key or value, and a documented exit status (docs/cli.md)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading

import httpx
import pytest
from click.testing import CliRunner

from console.cli import cli
from services.core.config import config_path, database_path
from services.core.errors import EXIT_BUSY, EXIT_USAGE, CredlyConsoleError, is_expected
from services.serve.receiver import MAX_JSON_DEPTH, InboxWriter, ReceiverSettings, create_receiver_app
from services.store import db as store_db
from services.store.db import DatabaseBusyError, Store, StoreError

SECRET = "s3cr3t-For-Tests_0123456789"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def assert_one_error_line(result, *needles: str) -> str:
    """No traceback, one `error:` line on stderr that names every needle."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- databases this program cannot use ----------------------------------------------------------


@pytest.mark.parametrize("content", [b"hello, not a database\n", os.urandom(4096)], ids=["text", "random"])
def test_a_file_that_is_not_sqlite_is_refused(tmp_path, content):
    path = tmp_path / "not.db"
    path.write_bytes(content)
    result = invoke("settings", "list", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "not a credly-console database")
    assert path.read_bytes() == content  # nothing written over it


def test_a_path_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("x")
    path = tmp_path / "plain" / "credly.db"
    result = invoke("settings", "list", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "is a file, not a directory")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_is_named_for_what_it_is_not_a_disk_error(tmp_path, kind):
    path = tmp_path / "credly.db"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    result = invoke("settings", "list", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    line = assert_one_error_line(result, str(path), "a directory" if kind == "directory" else "not a regular file")
    assert "disk" not in line


def _immutable(path):
    """Make `path` read-only even for root (chattr +i); the tests run as root on CI."""
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: path.chmod(0o755 if path.is_dir() else 0o644)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only file here: {done.stderr.strip()}")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_file_is_refused_on_write(tmp_path):
    path = tmp_path / "ro.db"
    Store(path).close()
    undo = _immutable(path)
    try:
        result = invoke("settings", "set", "EVIDENCE_TITLE", "Badge", env={"CREDLY_CONSOLE_DB": str(path)})
    finally:
        undo()
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "cannot write to the database")


def test_a_read_only_directory_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    undo = _immutable(folder)
    try:
        result = invoke("settings", "list", env={"CREDLY_CONSOLE_DB": str(folder / "credly.db")})
    finally:
        undo()
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(folder / "credly.db"))


def test_an_sqlite_database_of_another_program_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other-app.db"
    other = sqlite3.connect(str(path))
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    other.commit()
    other.close()
    before = path.read_bytes()
    result = invoke("settings", "list", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "another program", "invoices")
    assert path.read_bytes() == before  # no schema written into it, not even the WAL switch


def test_the_first_migration_is_atomic_so_a_failure_leaves_no_half_schema(tmp_path, monkeypatch):
    """A half schema at version 0 would be refused for ever after (as another program's file);
    the migration runs in one transaction (sqlite-utils' executescript does not COMMIT first)."""
    path = tmp_path / "half.db"
    real = store_db.MIGRATIONS[0]

    def create_then_fail(db) -> None:
        real(db)
        raise sqlite3.OperationalError("disk I/O error")  # e.g. the process losing its disk mid-way

    monkeypatch.setattr(store_db, "MIGRATIONS", [create_then_fail, *store_db.MIGRATIONS[1:]])
    with pytest.raises(StoreError):
        Store(path)
    check = sqlite3.connect(str(path))
    tables = check.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    version = check.execute("PRAGMA user_version").fetchone()[0]
    check.close()
    assert (tables, version) == ([], 0)
    monkeypatch.setattr(store_db, "MIGRATIONS", [real, *store_db.MIGRATIONS[1:]])
    with Store(path) as store:
        assert store.schema_version == len(store_db.MIGRATIONS)


def test_a_command_without_its_own_handler_still_reports_one_line(tmp_path, monkeypatch):
    """`mappings check` opens the store inside its flow: the root group reports the error."""
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[credly]\nbase_url = "http://127.0.0.1:9/v1"\norganization_id = "org"\n'
                      '[docebo]\nbase_url = "http://127.0.0.1:9"\nclient_id = "c"\n', encoding="utf-8")
    monkeypatch.setenv("CREDLY_TOKEN", "t0ken-for-tests")
    monkeypatch.setenv("DOCEBO_CLIENT_SECRET", "s3cret-for-tests")
    path = tmp_path / "text.db"
    path.write_text("not a database\n" * 10, encoding="utf-8")
    result = invoke("mappings", "check", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "not a credly-console database")


def test_an_export_under_a_regular_file_names_the_real_problem(tmp_path):
    (tmp_path / "plain").write_text("x")
    target = tmp_path / "plain" / "out" / "mappings.csv"
    result = invoke("mappings", "export", str(target))
    assert result.exit_code == EXIT_USAGE
    line = assert_one_error_line(result, str(target), "is a file, not a directory")
    assert "File exists" not in line  # what mkdir's errno says, which misleads


def test_serve_refuses_an_unusable_database_before_it_listens(tmp_path, monkeypatch):
    path = tmp_path / "text.db"
    path.write_text("not a database\n", encoding="utf-8")
    monkeypatch.setenv("CREDLY_CONSOLE_WEBHOOK_SECRET", SECRET)
    result = invoke("serve", "--port", "0", "--no-scheduler", "--no-mail", env={"CREDLY_CONSOLE_DB": str(path)})
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(path), "not a credly-console database")
    assert "listening" not in result.output


@pytest.mark.parametrize("value", ["[" * 100_000 + "]" * 100_000, "{a=" * 5_000 + "1" + "}" * 5_000], ids=["arrays", "tables"])
def test_a_config_file_nested_100000_deep_is_a_syntax_error_not_a_recursion_traceback(value):
    config = config_path()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[credly]\nx = {value}\n", encoding="utf-8")
    result = invoke("config", "show")
    assert result.exit_code == EXIT_USAGE
    assert_one_error_line(result, str(config), "(syntax)", "nested deeper")


# -- a write lock held longer than the busy timeout ---------------------------------------------


@pytest.fixture
def held_write_lock(monkeypatch):
    """Another connection holds the database's write lock; writes give up after 0.2 s."""
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.2)
    Store(database_path()).close()
    other = sqlite3.connect(str(database_path()), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield
    other.execute("ROLLBACK")
    other.close()


def test_settings_set_against_a_held_lock_says_busy(held_write_lock):
    result = invoke("settings", "set", "EVIDENCE_TITLE", "Badge")
    assert result.exit_code == EXIT_BUSY
    assert_one_error_line(result, str(database_path()), "locked by another process")


def test_sync_against_a_held_lock_says_busy(held_write_lock, monkeypatch, tmp_path):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[credly]\nbase_url = "http://127.0.0.1:9/v1"\norganization_id = "org"\n', encoding="utf-8")
    monkeypatch.setenv("CREDLY_TOKEN", "t0ken-for-tests")
    result = invoke("sync", "templates")
    assert result.exit_code == EXIT_BUSY
    assert "Traceback" not in result.output
    assert "locked by another process" in result.stderr


def test_a_busy_database_is_an_expected_error():
    exc = DatabaseBusyError("the database x is locked")
    assert is_expected(exc) and isinstance(exc, StoreError) and exc.exit_code == EXIT_BUSY


# -- a sync skipped because the flow is already running -----------------------------------------


def test_a_sync_skipped_because_the_flow_runs_elsewhere_exits_busy(tmp_path, monkeypatch):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[credly]\nbase_url = "http://127.0.0.1:9/v1"\norganization_id = "org"\n', encoding="utf-8")
    monkeypatch.setenv("CREDLY_TOKEN", "t0ken-for-tests")
    with Store(database_path()) as store:  # a live process (pid 1) holds the flow's lock
        store.db.execute("INSERT INTO flow_locks (flow, run_id, pid, acquired_at) VALUES ('templates', 99, 1, 'now')")
    result = invoke("sync", "templates")
    assert result.exit_code == EXIT_BUSY
    assert "already running" in result.output


def test_with_all_a_skipped_flow_never_hides_another_flows_failure():
    from console.cli.sync import _exit_code
    from services.core.errors import EXIT_FAILURE, EXIT_OK
    from services.store.runs import RunSummary

    def child(flow: str, status: str, *, busy: bool = False, failed: int = 0) -> RunSummary:
        return RunSummary(run_id=1, flow=flow, status=status, counts={"failed": failed}, busy=busy)

    skipped = child("dropdown", "skipped", busy=True)
    broken = child("templates", "failed", failed=1)
    assert _exit_code(RunSummary(2, "all", "failed", {}, children=[broken, skipped])) == EXIT_FAILURE
    assert _exit_code(RunSummary(2, "all", "succeeded", {}, children=[child("templates", "succeeded"), skipped])) == EXIT_BUSY
    assert _exit_code(RunSummary(2, "all", "succeeded", {}, children=[child("templates", "succeeded")])) == EXIT_OK


# -- ids, limits and offsets beyond SQLite's 64-bit integers ------------------------------------


@pytest.mark.parametrize("args", [
    ("inbox", "show", "99999999999999999999"),
    ("inbox", "list", "--limit", "99999999999999999999"),
    ("inbox", "list", "--offset", "99999999999999999999"),
    ("mappings", "list", "--limit", "99999999999999999999"),
    ("mappings", "list", "--offset", "99999999999999999999"),
    ("mappings", "edit", "99999999999999999999", "--inactive"),
    ("mappings", "remove", "99999999999999999999"),
    ("notifications", "show", "99999999999999999999"),
    ("templates", "list", "--offset", "99999999999999999999"),
], ids=lambda a: " ".join(a[:3]))
def test_twenty_digit_numbers_are_bad_input(args):
    result = invoke(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "99999999999999999999" in result.stderr and "range" in result.stderr
    assert not isinstance(result.exception, OverflowError)


def test_control_characters_from_webhooks_and_services_never_reach_the_terminal():
    """A webhook or a service message can carry ESC sequences (retitle, clear, recolour the admin's
    terminal); the CLI shows them as \\xNN instead."""
    from services.store import inbox, notifications

    evil = "1\x1b]0;pwned\x07\x1b[2J"
    with Store(database_path()) as store:
        inbox.insert_items(store, [inbox.NewItem("docebo", "k1", "course.enrollment.completed", f"docebo-user:{evil}",
                                                 {"user_id": evil, "course_id": 2})])
        note = notifications.notify_error(store, f"Docebo said {evil}", body=f"line one\nservice message: {evil}")
    outputs = [invoke("inbox", "list").output, invoke("inbox", "show", "1").output,
               invoke("notifications", "list").output, invoke("notifications", "show", str(note)).output]
    for output in outputs:
        assert "\x1b" not in output and "\x07" not in output, output
        assert "\\x1b]0;pwned\\x07" in output, output
    assert "line one\nservice message" in outputs[3]  # a body keeps its lines


# -- a webhook body nested 200,000 deep ---------------------------------------------------------


async def test_a_deeply_nested_webhook_body_is_refused_with_400_and_a_notification(tmp_path):
    path = tmp_path / "serve.db"
    Store(path).close()
    writer = InboxWriter(path).start()
    try:
        app = create_receiver_app(ReceiverSettings(secret=SECRET, organization_id="org"), writer)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            deep = b"[" * 200_000 + b"]" * 200_000
            answer = await client.post(f"/webhooks/docebo/{SECRET}", content=deep,
                                       headers={"content-type": "application/json"})
            shallow_enough = {"message_id": "m1", "event": "course.enrollment.completed",
                              "payload": {"user_id": 1, "course_id": 2, "extra": json.loads("[" * 20 + "]" * 20)}}
            ok = await client.post(f"/webhooks/docebo/{SECRET}", json=shallow_enough)
    finally:
        writer.stop()
    assert answer.status_code == 400
    assert f"deeper than {MAX_JSON_DEPTH} levels" in answer.json()["error"]
    assert ok.status_code == 200
    with Store(path) as store:
        notes = list(store.db.query("SELECT object FROM notifications WHERE kind = 'webhook_rejected'"))
        stored = store.db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    assert [n["object"] for n in notes] == ["docebo:malformed"]
    assert stored == 1


async def test_a_webhook_body_with_a_lone_surrogate_is_refused_with_400_not_a_503_retry_loop(tmp_path):
    """`"\\ud800"` parses as JSON but cannot be stored as UTF-8: answering 503 would make the
    sender retry the same poison body for ever."""
    path = tmp_path / "serve.db"
    Store(path).close()
    writer = InboxWriter(path).start()
    try:
        app = create_receiver_app(ReceiverSettings(secret=SECRET, organization_id="org"), writer)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            body = (b'{"message_id": "m\\ud800", "event": "course.enrollment.completed", '
                    b'"payload": {"user_id": 1, "course_id": 2}}')
            answer = await client.post(f"/webhooks/docebo/{SECRET}", content=body, headers={"content-type": "application/json"})
            credly = await client.post(f"/webhooks/credly/{SECRET}", content=b'{"id": "\\udfff"}',
                                       headers={"content-type": "application/json"})
    finally:
        writer.stop()
    assert (answer.status_code, credly.status_code) == (400, 400)
    assert "lone surrogate" in answer.json()["error"] and "\\ud800" in answer.json()["error"]
    with Store(path) as store:
        notes = sorted(n["object"] for n in store.db.query("SELECT object FROM notifications WHERE kind = 'webhook_rejected'"))
        stored = store.db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    assert notes == ["credly:malformed", "docebo:malformed"]
    assert stored == 0


# -- one family -------------------------------------------------------------------------------


def test_every_refusal_the_services_raise_belongs_to_the_family():
    from services.core.config import ConfigError
    from services.core.errors import ApiError, FileAccessError, MissingError
    from services.core.secrets import NoKeyringError, UnknownSecretError
    from services.flows.base import FlowFailed
    from services.serve.inbox_worker import ResolveError
    from services.serve.receiver import ReceiverConfigError, WriterUnavailable
    from services.store.inbox import DeliveryError
    from services.store.locks import FlowBusyError
    from services.store.mappings import MappingError
    from services.store.settings import SettingError
    from services.store.templates import TemplateError

    family = [ConfigError, ApiError, FileAccessError, MissingError, NoKeyringError, UnknownSecretError, FlowFailed,
              ReceiverConfigError, DeliveryError, MappingError, FlowBusyError, SettingError, TemplateError, StoreError,
              ResolveError, WriterUnavailable]
    assert all(issubclass(cls, CredlyConsoleError) for cls in family)
    assert not is_expected(KeyError("x")) and not is_expected(TypeError("x"))


def test_the_store_can_be_opened_while_another_thread_reads(tmp_path):
    """The connection wrapper keeps ordinary statements working (no false 'busy')."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.set_meta("k", "v")
    seen: list[str | None] = []

    def read() -> None:
        with Store(path) as other:
            seen.append(other.get_meta("k"))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == ["v"]
