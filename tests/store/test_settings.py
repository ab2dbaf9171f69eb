"""services/store/settings.py: S1-S3."""

from __future__ import annotations

import datetime as dt

import pytest

from services.store.db import SETTING_KEYS
from services.store.settings import (
    REQUIRED_KEYS,
    SettingError,
    SettingErrors,
    configuration_problems,
    get_setting,
    read_settings,
    set_setting,
    set_settings,
    validate_setting,
)

GOOD = {
    "BATCH_SYNC_START_DATE": "2024-01-31",
    "NOTIFICATION_MAIL_ID": "lms-admin@acme.example",
    "SYNC_REVOCATION": "true",
    "CREDLY_DEFAULT_EXPIRATION_DAYS": "365",
    "EXTERNAL_TRAINING_INSTITUTE_NAME": "Credly",
    "COURSE_ADDITIONAL_FIELD": "Credly badge",
    "CREDLY_INTEGRATION_MASTER": "DOCEBO",
    "EVIDENCE_TITLE": "Completed in Docebo",
}


def test_required_keys_are_all_but_the_three_optional_ones():
    assert set(REQUIRED_KEYS) == set(SETTING_KEYS) - {
        "BATCH_SYNC_START_DATE", "CREDLY_DEFAULT_EXPIRATION_DAYS", "CREDLY_INTEGRATION_MASTER"}


@pytest.mark.parametrize(
    "key, value, expected_words",
    [
        ("SYNC_REVOCATION", "True", ["true", "false"]),
        ("SYNC_REVOCATION", "yes", ["true", "false"]),
        ("SYNC_REVOCATION", "", ["true", "false", "required"]),
        ("BATCH_SYNC_START_DATE", "2024-02-30", ["YYYY-MM-DD"]),
        ("BATCH_SYNC_START_DATE", "31/01/2024", ["YYYY-MM-DD"]),
        ("BATCH_SYNC_START_DATE", "2024-01", ["YYYY-MM-DD"]),
        ("BATCH_SYNC_START_DATE", "2024-01-31Tnoon", ["YYYY-MM-DD"]),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "-1", ["whole number", "0"]),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "1.5", ["whole number"]),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "99999999", ["36500"]),
        ("CREDLY_INTEGRATION_MASTER", "BOTH", ["DOCEBO", "CREDLY"]),
        ("CREDLY_INTEGRATION_MASTER", "docebo", ["DOCEBO", "CREDLY"]),
        ("NOTIFICATION_MAIL_ID", "admin@", ["e-mail"]),
        ("NOTIFICATION_MAIL_ID", "admin acme.example", ["e-mail"]),
        ("NOTIFICATION_MAIL_ID", "a@b", ["e-mail"]),
        ("NOTIFICATION_MAIL_ID", "a@@b.com", ["e-mail"]),
        ("EVIDENCE_TITLE", "two\nlines", ["single line"]),
        ("EVIDENCE_TITLE", "x" * 256, ["255"]),
        ("COURSE_ADDITIONAL_FIELD", "   ", ["required"]),
        ("NO_SUCH_KEY", "x", ["setting keys", "SYNC_REVOCATION"]),
    ],
)
def test_refusals_name_key_value_and_expected_format(store, key, value, expected_words):
    before = dict(store.db.execute("SELECT key, value FROM settings").fetchall())
    with pytest.raises(SettingError) as info:
        set_setting(store, key, value)
    message = str(info.value)
    assert message.startswith(f"{key}: ")
    assert repr(value)[:40] in message
    for word in expected_words:
        assert word in message
    assert (info.value.key, info.value.value) == (key, value)
    assert dict(store.db.execute("SELECT key, value FROM settings").fetchall()) == before


@pytest.mark.parametrize(
    "key, value, stored",
    [
        ("SYNC_REVOCATION", "false", "false"),
        ("SYNC_REVOCATION", " true ", "true"),
        ("BATCH_SYNC_START_DATE", "2024-02-29", "2024-02-29"),
        ("BATCH_SYNC_START_DATE", "2024-03-01T10:15:00", "2024-03-01"),
        ("BATCH_SYNC_START_DATE", "2024-03-01T23:30:00-08:00", "2024-03-01"),  # the date typed (issue 12)
        ("BATCH_SYNC_START_DATE", "2025-01-01T00:30:00+02:00", "2025-01-01"),  # not its UTC date, 2024-12-31
        ("BATCH_SYNC_START_DATE", "2024-03-01T00:30:00Z", "2024-03-01"),
        ("BATCH_SYNC_START_DATE", "2024-03-01 10:15:00.123+00:00", "2024-03-01"),
        ("BATCH_SYNC_START_DATE", "", ""),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "0", "0"),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "007", "7"),
        ("CREDLY_DEFAULT_EXPIRATION_DAYS", "", ""),
        ("CREDLY_INTEGRATION_MASTER", "CREDLY", "CREDLY"),
        ("CREDLY_INTEGRATION_MASTER", "", ""),
        ("NOTIFICATION_MAIL_ID", "first.last+lms@sub.acme-corp.example", "first.last+lms@sub.acme-corp.example"),
        ("EVIDENCE_TITLE", "  Completed: course ", "Completed: course"),
    ],
)
def test_accepted_values_are_normalised_and_stored(store, key, value, stored):
    assert validate_setting(key, value) == stored
    assert set_setting(store, key, value) == stored
    assert get_setting(store, key) == stored


def test_multi_key_edit_is_all_or_nothing(store):
    set_settings(store, GOOD)
    with pytest.raises(SettingErrors) as info:
        set_settings(store, {"EVIDENCE_TITLE": "New title", "SYNC_REVOCATION": "TRUE",
                             "CREDLY_DEFAULT_EXPIRATION_DAYS": "-3"})
    assert [e.key for e in info.value.errors] == ["SYNC_REVOCATION", "CREDLY_DEFAULT_EXPIRATION_DAYS"]
    assert "SYNC_REVOCATION" in str(info.value) and "CREDLY_DEFAULT_EXPIRATION_DAYS" in str(info.value)
    assert get_setting(store, "EVIDENCE_TITLE") == GOOD["EVIDENCE_TITLE"]  # valid part not saved
    with pytest.raises(SettingError):
        set_settings(store, {"EVIDENCE_TITLE": "New title", "SYNC_REVOCATION": "TRUE"})
    assert get_setting(store, "EVIDENCE_TITLE") == GOOD["EVIDENCE_TITLE"]


def test_a_failing_write_leaves_everything_unchanged(store, monkeypatch):
    """S2: the values go in one transaction; a failure on the second rolls back the first."""
    set_settings(store, GOOD)

    class Boom(Exception):
        pass

    original_execute = store.db.execute

    def execute(sql, params=None):
        if sql.startswith("INSERT INTO settings") and params and params[1] == "SYNC_REVOCATION":
            raise Boom()
        return original_execute(sql) if params is None else original_execute(sql, params)

    monkeypatch.setattr(store.db, "execute", execute)
    with pytest.raises(Boom):
        set_settings(store, {"EVIDENCE_TITLE": "changed", "SYNC_REVOCATION": "false"})
    monkeypatch.undo()
    assert get_setting(store, "EVIDENCE_TITLE") == GOOD["EVIDENCE_TITLE"]
    assert get_setting(store, "SYNC_REVOCATION") == "true"


def test_configuration_problems_list_unset_required_keys(store):
    problems = configuration_problems(store)
    assert [p.key for p in problems] == list(REQUIRED_KEYS)
    assert all("required" in p.message for p in problems)
    set_settings(store, {k: v for k, v in GOOD.items() if k != "NOTIFICATION_MAIL_ID"})
    assert [p.key for p in configuration_problems(store)] == ["NOTIFICATION_MAIL_ID"]
    assert configuration_problems(store, ["SYNC_REVOCATION", "EVIDENCE_TITLE"]) == []
    set_setting(store, "NOTIFICATION_MAIL_ID", "a@b.example")
    assert configuration_problems(store) == []


def test_a_hand_edited_invalid_value_is_a_problem_and_reads_as_unset(store):
    set_settings(store, GOOD)
    store.db.execute("UPDATE settings SET value = 'maybe' WHERE key = 'SYNC_REVOCATION'")
    [problem] = configuration_problems(store)
    assert problem.key == "SYNC_REVOCATION" and "'maybe'" in problem.message
    assert read_settings(store).sync_revocation is None


def test_read_settings_is_typed(store):
    snapshot = read_settings(store)
    assert snapshot.batch_sync_start_date is None and snapshot.sync_revocation is None
    assert snapshot.default_expiration_days is None and snapshot.integration_master == ""
    set_settings(store, GOOD)
    snapshot = read_settings(store)
    assert snapshot.batch_sync_start_date == dt.date(2024, 1, 31)
    assert snapshot.sync_revocation is True
    assert snapshot.default_expiration_days == 365
    assert snapshot.integration_master == "DOCEBO"
    assert snapshot.notification_mail_id == GOOD["NOTIFICATION_MAIL_ID"]
    assert snapshot.external_training_institute_name == "Credly"
    assert snapshot.course_additional_field == "Credly badge"
    assert snapshot.evidence_title == "Completed in Docebo"
    set_setting(store, "CREDLY_DEFAULT_EXPIRATION_DAYS", "0")
    assert read_settings(store).default_expiration_days == 0


def test_get_setting_of_unknown_key_is_refused(store):
    with pytest.raises(SettingError, match="setting keys"):
        get_setting(store, "sync_revocation")
