"""The CLI over the lookup tables, secrets and paths (issue 2 acceptance), via click's CliRunner,
plus real runs of the installed `credly-console` script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from services.core.config import config_path, database_path
from services.store.db import Store
from services.store.settings import get_setting
from tests.support.store_rows import T1, T2, hundred_rows, put_template, to_csv


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


def stored(key: str) -> str:
    with Store(database_path()) as store:
        return get_setting(store, key)


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, bad, words",
    [
        ("SYNC_REVOCATION", "True", ["true", "false"]),
        ("BATCH_SYNC_START_DATE", "2024-13-01", ["YYYY-MM-DD"]),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "-5", ["whole number"]),
        ("CREDLY_INTEGRATION_MASTER", "BOTH", ["DOCEBO", "CREDLY"]),
        ("NOTIFICATION_MAIL_ID", "admin(at)acme.example", ["e-mail"]),
    ],
)
def test_settings_set_refuses_bad_values_and_keeps_the_stored_one(run, key, bad, words):
    good = {"SYNC_REVOCATION": "false", "BATCH_SYNC_START_DATE": "2024-01-01",
            "CREDLY_DEFAULT_EXPIRATION_DAYS": "30", "CREDLY_INTEGRATION_MASTER": "CREDLY",
            "NOTIFICATION_MAIL_ID": "admin@acme.example"}[key]
    assert run("settings", "set", key, good).exit_code == 0
    result = run("settings", "set", key, bad)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert key in result.stderr and repr(bad) in result.stderr
    for word in words:
        assert word in result.stderr
    assert stored(key) == good


def test_settings_set_get_list(run):
    result = run("settings", "set", "BATCH_SYNC_START_DATE", "2024-05-01T08:00:00Z")
    assert result.exit_code == 0 and "BATCH_SYNC_START_DATE = 2024-05-01" in result.stdout
    assert run("settings", "get", "BATCH_SYNC_START_DATE").stdout == "2024-05-01\n"
    listing = json.loads(run("settings", "list", "--json").stdout)
    assert [r["key"] for r in listing][:3] == ["BATCH_SYNC_START_DATE", "NOTIFICATION_MAIL_ID", "SYNC_REVOCATION"]
    by_key = {r["key"]: r for r in listing}
    assert by_key["BATCH_SYNC_START_DATE"]["value"] == "2024-05-01"
    assert by_key["SYNC_REVOCATION"]["problem"] and by_key["SYNC_REVOCATION"]["required"] is True
    text = run("settings", "list")
    assert text.exit_code == 0 and "REQUIRED, not set" in text.stdout and "SYNC_REVOCATION" in text.stderr


def test_settings_unknown_key_is_refused(run):
    result = run("settings", "set", "SYNC_REVOKATION", "true")
    assert result.exit_code == 1 and "SYNC_REVOKATION" in result.stderr and "SYNC_REVOCATION" in result.stderr
    assert run("settings", "get", "nope").exit_code == 1


# -- templates --------------------------------------------------------------------------------


def test_templates_list_activate_deactivate(run):
    with Store(database_path()) as store:
        put_template(store, T1, "Cloud Practitioner")
        put_template(store, T2, "Data Analyst", active=False)
    rows = json.loads(run("templates", "list", "--json").stdout)
    assert [(r["name"], r["is_active"]) for r in rows] == [("Cloud Practitioner", True), ("Data Analyst", False)]
    assert run("templates", "activate", T2).exit_code == 0
    result = run("templates", "deactivate", T1)
    assert result.exit_code == 0 and "inactive" in result.stdout
    rows = json.loads(run("templates", "list", "--json", "--active").stdout)
    assert [r["name"] for r in rows] == ["Data Analyst"]
    assert "Data Analyst" in run("templates", "list", "--search", "analyst").stdout
    missing = run("templates", "activate", "no-such-id")
    assert missing.exit_code == 1 and "no-such-id" in missing.stderr


# -- mappings ---------------------------------------------------------------------------------


def test_mappings_add_list_edit_remove(run):
    with Store(database_path()) as store:
        put_template(store, T1, "Cloud Practitioner")
    result = run("mappings", "add", "--template", T1, "--learning-plan", "12", "--external-training")
    assert result.exit_code == 0 and "added mapping 1" in result.stdout and "Cloud Practitioner" in result.stdout
    result = run("mappings", "add", "--template", T2, "--certification", "AWS-CP", "--inactive", "--json")
    assert result.exit_code == 0
    added = json.loads(result.stdout)
    assert (added["is_active"], added["template_known"]) == (False, False)
    assert "not in the local template table" in result.stderr

    rows = json.loads(run("mappings", "list", "--json").stdout)
    assert [(r["id"], r["learning_plan_id"], r["certification_code"]) for r in rows] == [(1, "12", ""), (2, "", "AWS-CP")]
    assert [r["id"] for r in json.loads(run("mappings", "list", "--json", "--inactive").stdout)] == [2]
    assert [r["id"] for r in json.loads(run("mappings", "list", "--json", "--sort", "id", "--desc", "--limit", "1").stdout)] == [
        2
    ]

    result = run("mappings", "edit", "2", "--active", "--learning-plan", "7")
    assert result.exit_code == 0
    row = json.loads(run("mappings", "list", "--json", "--search", "AWS").stdout)[0]
    assert (row["is_active"], row["learning_plan_id"], row["certification_code"]) == (True, "7", "AWS-CP")
    result = run("mappings", "edit", "2", "--learning-plan", "", "--certification", "")
    assert result.exit_code == 1 and "at least one Docebo side" in result.stderr
    assert run("mappings", "edit", "2").exit_code == 2
    assert run("mappings", "deactivate", "1").exit_code == 0
    assert run("mappings", "remove", "1").exit_code == 0
    missing = run("mappings", "remove", "1")
    assert missing.exit_code == 1 and "no mapping with id 1" in missing.stderr
    assert run("mappings", "remove", "abc").exit_code == 2


def test_mappings_add_refuses_duplicates_and_missing_sides(run):
    assert run("mappings", "add", "--template", T1, "--learning-plan", "1").exit_code == 0
    dup = run("mappings", "add", "--template", T1, "--learning-plan", "1")
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    none = run("mappings", "add", "--template", T1)
    assert none.exit_code == 1 and "at least one Docebo side" in none.stderr
    assert run("mappings", "add").exit_code == 2  # --template is required


def test_mappings_import_bad_row_imports_nothing_and_export_reimports(run, tmp_path):
    rows = hundred_rows()
    rows[9][5] = "yes"  # spreadsheet row 11
    bad = tmp_path / "bad.csv"
    bad.write_text(to_csv(rows))
    result = run("mappings", "import", str(bad))
    assert result.exit_code == 1
    assert "row 11: is_active: 'yes'" in result.stderr and "header is row 1" in result.stderr
    assert json.loads(run("mappings", "list", "--json").stdout) == []

    rows[9][5] = "true"
    good = tmp_path / "good.csv"
    good.write_text(to_csv(rows))
    result = run("mappings", "import", str(good))
    assert result.exit_code == 0 and "100 added" in result.stdout
    before = json.loads(run("mappings", "list", "--json", "--limit", "1000").stdout)
    assert len(before) == 100

    out = tmp_path / "export.csv"
    assert run("mappings", "export", str(out)).exit_code == 0
    assert run("mappings", "export", "-").stdout_bytes == out.read_bytes()
    result = run("mappings", "import", "--replace", str(out))
    assert result.exit_code == 0 and "100 unchanged, 0 removed" in result.stdout
    after = json.loads(run("mappings", "list", "--json", "--limit", "1000").stdout)
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in rs]  # noqa: E731
    assert strip(after) == strip(before)

    page = run("mappings", "list", "--json", "--limit", "10", "--offset", "90")
    assert [r["id"] for r in json.loads(page.stdout)] == list(range(91, 101))
    assert "showing 91-100 of 100" in page.stderr


def test_mappings_import_dry_run_and_missing_file(run, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(to_csv([[T1, "", "1", "", "", ""]]))
    result = run("mappings", "import", "--dry-run", str(path))
    assert result.exit_code == 0 and "would import 1" in result.stdout
    assert json.loads(run("mappings", "list", "--json").stdout) == []
    assert run("mappings", "import", str(tmp_path / "nope.csv")).exit_code == 2


# -- config, locate, secrets ------------------------------------------------------------------


def test_invalid_config_exits_2_naming_file_and_key(run):
    config_path().parent.mkdir(parents=True)
    config_path().write_text('[server]\nport = "eighty"\n')
    result = run("config", "show")
    assert result.exit_code == 2
    assert str(config_path()) in result.stderr and "[server] port" in result.stderr and "whole number" in result.stderr


def test_config_show_and_locate(run):
    shown = json.loads(run("config", "show", "--json").stdout)
    assert shown["server"] == {"host": "127.0.0.1", "port": 8787, "docebo_basic_auth_user": "",
                              "run_log_retention_days": 90}
    located = json.loads(run("locate", "--json").stdout)
    assert located["config"] == str(config_path()) and located["database"] == str(database_path())
    assert located["keyring_usable"] is False
    assert str(database_path()) in run("locate").stdout


def test_secrets_set_without_keyring_names_the_env_var(run):
    result = run("secrets", "set", "credly_token", input="tok\n")
    assert result.exit_code == 1
    assert "CREDLY_TOKEN" in result.stderr and "keyring" in result.stderr
    assert "tok" not in result.stderr.replace("token", "")
    assert run("secrets", "set", "bogus").exit_code == 2


def test_secrets_status_shows_sources_never_values(run):
    result = run("secrets", "status", "--json", env={"CREDLY_TOKEN": "super-secret-token-value"})
    data = json.loads(result.stdout)
    assert {s["name"]: s["source"] for s in data["secrets"]}["credly_token"] == "env"
    assert "super-secret-token-value" not in result.output


def test_secrets_set_with_a_keyring_stores_it(run, monkeypatch):
    import keyring

    from tests.support.keyring import DictKeyring

    previous = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    try:
        result = run("secrets", "set", "webhook_secret", input="hook-secret\n")
        assert result.exit_code == 0, result.output
        assert backend.data == {("credly-console", "webhook_secret"): "hook-secret"}
        assert "hook-secret" not in result.output
        assert run("secrets", "delete", "webhook_secret").exit_code == 0
        assert backend.data == {}
    finally:
        keyring.set_keyring(previous)


def test_with_credly_token_and_no_keyring_no_secret_reaches_config_or_database(run, tmp_path, monkeypatch):
    token = "crd-tok-5f1e0c3a9b7d4e2f8a6c0b1d3e5f7a9c"
    monkeypatch.setenv("CREDLY_TOKEN", token)
    env = {"CREDLY_TOKEN": token}
    # Commands work without a keyring...
    assert run("settings", "set", "SYNC_REVOCATION", "true", env=env).exit_code == 0
    assert run("mappings", "add", "--template", T1, "--learning-plan", "1", env=env).exit_code == 0
    path = tmp_path / "m.csv"
    path.write_text(to_csv(hundred_rows()[:5]))
    assert run("mappings", "import", str(path), env=env).exit_code == 0
    status = json.loads(run("secrets", "status", "--json", env=env).stdout)
    assert {s["name"]: s["source"] for s in status["secrets"]}["credly_token"] == "env"
    # ...and writing the config file does not copy the token into it.
    from services.core.config import load_config, save_config
    from services.core.secrets import KeyringSecrets

    assert KeyringSecrets().get("credly_token") == token
    save_config(load_config())
    with Store(database_path()) as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [config_path(), database_path()] + [p for p in database_path().parent.iterdir()]
    assert config_path().exists() and database_path().exists()
    for file in files:
        data = file.read_bytes()
        assert token.encode() not in data, file
        assert token[-12:].encode() not in data, file


# -- the installed script, for real -----------------------------------------------------------


def _script() -> str:
    found = shutil.which("credly-console", path=str(Path(sys.executable).parent))
    assert found, "the credly-console script is not installed in this environment"
    return found


def test_installed_script_refuses_a_bad_boolean(tmp_path):
    env = dict(os.environ)
    result = subprocess.run(
        [_script(), "settings", "set", "SYNC_REVOCATION", "True"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "SYNC_REVOCATION" in result.stderr and "true or false" in result.stderr
    assert result.stdout == ""
    ok = subprocess.run([_script(), "settings", "get", "SYNC_REVOCATION"], env=env, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "\n")


def test_installed_script_help_everywhere():
    for args in (["--help"], ["mappings", "import", "--help"], ["settings", "set", "--help"]):
        result = subprocess.run([_script(), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "Usage: credly-console" in result.stdout


def test_every_command_has_help(run):
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield prefix + [name]
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])

    for path in walk(cli, []):
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout, path
