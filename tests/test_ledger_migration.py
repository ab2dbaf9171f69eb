"""Issue 12: the ledger migration (user id next to the e-mail, the source's date; I1, O3) upgrades an
existing database in place: a file built at the previous schema, with rows, opens with every row kept."""

from __future__ import annotations

import json
import sqlite3

from services.store import db as store_db
from services.store import ledger
from services.store.db import Store

ROWS = [
    # (system, object_type, object_id, subject, target, origin_type, origin_id, status, details)
    ("credly", "badge", "b-1", "alice@example.com", "t-1", "course", "101", "active",
     {"rule": "F3a", "issued_at": "2025-03-01 10:00:00 +0000", "expires_at": False, "user_id": "1"}),
    ("credly", "badge", "b-0", "bob@example.com", "t-2", "certification_award", "7", "revoked",
     {"rule": "F4", "issued_at": "2024-05-01 00:00:00 +0000", "user_id": "2"}),
    ("docebo", "external_training", "42", "3", "t-3", "credly_badge", "b-9", "active", {"name": "Fire"}),
    ("credly", "badge", "b-5", "carol@example.com", "t-1", "course", "101", "replaced", "not json"),
]


def _build_previous_schema(path, monkeypatch) -> int:
    version = store_db.MIGRATIONS.index(store_db._migration_ledger_identity)
    monkeypatch.setattr(store_db, "MIGRATIONS", store_db.MIGRATIONS[:version])
    with Store(path) as s:
        with s.write():
            for system, otype, oid, subject, target, origin_type, origin_id, status, details in ROWS:
                s.db.execute(
                    "INSERT INTO ledger (system, object_type, object_id, subject, target, origin_type, origin_id, "
                    "status, details, run_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, "
                    "'2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')",
                    (system, otype, oid, subject, target, origin_type, origin_id, status,
                     details if isinstance(details, str) else json.dumps(details)),
                )
        assert s.schema_version == version
    monkeypatch.undo()
    return version


def test_an_existing_database_upgrades_in_place_and_keeps_every_ledger_row(tmp_path, monkeypatch):
    path = tmp_path / "credly-console.db"
    old_version = _build_previous_schema(path, monkeypatch)
    before = sqlite3.connect(path).execute("SELECT * FROM ledger ORDER BY id").fetchall()
    with Store(path) as s:
        assert s.schema_version == len(store_db.MIGRATIONS) > old_version
        after = s.db.execute(
            "SELECT id, system, object_type, object_id, subject, target, origin_type, origin_id, status, details, run_id, "
            "created_at, updated_at FROM ledger ORDER BY id"
        ).fetchall()
        assert after == before  # nothing lost, nothing changed
        ids = {r["object_id"]: r for r in s.db.query("SELECT object_id, user_id, origin_date FROM ledger")}
        assert (ids["b-1"]["user_id"], ids["b-1"]["origin_date"]) == ("1", "2025-03-01 10:00:00 +0000")
        assert ids["b-0"]["user_id"] == "2"
        assert ids["42"]["user_id"] == "3"  # Docebo objects are keyed by the user id already
        assert ids["b-5"]["user_id"] is None  # unreadable details: kept, nothing invented
        # the new code finds the learner's last badge by user id (I1) or, for old rows, by e-mail
        assert ledger.last_badge(s, "1", "alice-new@example.com", "t-1").object_id == "b-1"
        assert ledger.last_badge(s, "99", "carol@example.com", "t-1").object_id == "b-5"
    with Store(path) as s:  # opening again migrates nothing more
        assert s.schema_version == len(store_db.MIGRATIONS)
