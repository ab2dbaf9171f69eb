from __future__ import annotations

import sqlite3

import pytest

from services.store.db import MIGRATIONS, SETTING_KEYS, Store, StoreError, Where, like_pattern


def test_new_store_has_every_setting_key_empty(store):
    rows = {r["key"]: r["value"] for r in store.db.query("SELECT key, value FROM settings")}
    assert rows == {k: "" for k in SETTING_KEYS}
    assert len(SETTING_KEYS) == 8


def test_store_is_wal_and_at_latest_schema(store):
    assert store.db.journal_mode == "wal"
    assert store.schema_version == len(MIGRATIONS)


def test_reopening_does_not_rerun_migrations(tmp_path):
    with Store(tmp_path / "s.db") as s:
        s.db.execute("UPDATE settings SET value = 'x' WHERE key = 'EVIDENCE_TITLE'")
    with Store(tmp_path / "s.db") as s:
        assert s.db.execute("SELECT value FROM settings WHERE key='EVIDENCE_TITLE'").fetchone()[0] == "x"


def test_newer_schema_is_refused(tmp_path):
    with Store(tmp_path / "s.db") as s:
        s.db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this program"):
        Store(tmp_path / "s.db")


def test_write_rolls_back_everything_on_error(store):
    with pytest.raises(RuntimeError):
        with store.write() as db:
            db["meta"].insert({"key": "a", "value": "1"})
            db.execute("INSERT INTO meta (key, value) VALUES ('b', '2')")
            raise RuntimeError("boom")
    assert store.db.execute("SELECT count(*) FROM meta").fetchone()[0] == 0


def test_nested_write_is_a_savepoint(store):
    with store.write():
        store.set_meta("outer", "1")
        with pytest.raises(ValueError):
            with store.write():
                store.set_meta("inner", "1")
                raise ValueError
    assert store.get_meta("outer") == "1"
    assert store.get_meta("inner") is None


def test_ledger_allows_one_live_object_per_subject_and_target(store):
    row = dict(system="credly", object_type="badge", subject="a@x.com", target="t1",
               origin_type="course", origin_id="7", status="active", created_at="n", updated_at="n")
    store.db["ledger"].insert(row)
    with pytest.raises(sqlite3.IntegrityError):
        store.db["ledger"].insert(row)
    store.db.execute("UPDATE ledger SET status = 'revoked'")
    store.db["ledger"].insert(row)  # a revoked badge may be issued again later


def test_page_and_count_filter_order_and_page_in_sql(store):
    with store.write():
        for key in ("a", "b_c", "bxc", "d"):
            store.set_meta(f"k.{key}", key.upper())
    where = Where()
    where.add("key LIKE ? ESCAPE '\\'", like_pattern("b_"))  # "_" literally: b_c only, not bxc
    assert store.count("meta", where) == 1
    assert [r["value"] for r in store.page("meta", where, order="key", limit=None)] == ["B_C"]
    everything = Where()
    everything.add("key LIKE ?", "k.%")
    assert store.count("meta", everything) == 4
    assert [r["key"] for r in store.page("meta", everything, order="key DESC", limit=2, offset=1)] == ["k.bxc", "k.b_c"]
    assert store.page("meta", everything, order="key", limit=None, columns="value")[0] == {"value": "A"}
    assert Where().sql == "" and store.count("meta", Where()) >= 4
