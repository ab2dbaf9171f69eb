"""The local store: one SQLite file (WAL mode) read and written through sqlite-utils.

Design notes: docs/design/store.md
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from services.core.errors import EXIT_BUSY, EXIT_USAGE, CredlyConsoleError

# The integration name of every S row (SPEC §1: "one row per key, integration = CREDLY").
INTEGRATION = "CREDLY"

# The eight setting keys of SPEC §1, in the order the seed lists them. They exist from the first
# start, with empty values (migration 1 inserts them).
SETTING_KEYS: tuple[str, ...] = (
    "BATCH_SYNC_START_DATE",
    "NOTIFICATION_MAIL_ID",
    "SYNC_REVOCATION",
    "CREDLY_DEFAULT_EXPIRATION_DAYS",
    "EXTERNAL_TRAINING_INSTITUTE_NAME",
    "COURSE_ADDITIONAL_FIELD",
    "CREDLY_INTEGRATION_MASTER",
    "EVIDENCE_TITLE",
)

_SCHEMA_V1 = """
-- S: integration settings (SPEC §1, S1-S3). One row per key; value '' = not set.
CREATE TABLE settings (
    integration TEXT NOT NULL DEFAULT 'CREDLY',
    key         TEXT NOT NULL,
    value       TEXT NOT NULL DEFAULT '',
    updated_at  TEXT,
    PRIMARY KEY (integration, key)
);

-- T: Credly badge templates (SPEC §1, T1-T3), filled only by F1.
CREATE TABLE badge_templates (
    template_id         TEXT PRIMARY KEY,            -- Credly's UUID (T1)
    name                TEXT NOT NULL,               -- unique (F1 keeps the first of a name)
    is_active           INTEGER NOT NULL DEFAULT 1,  -- 0/1; the only column admins edit (T2)
    dropdown_element_id TEXT NOT NULL DEFAULT '',    -- Docebo option id, '' while none (T3)
    credly_state        TEXT NOT NULL DEFAULT 'active',  -- active|archived as F1 last saw it
    admin_deactivated   INTEGER NOT NULL DEFAULT 0,  -- 1 when an admin set is_active=0 (F1 never re-activates)
    option_label        TEXT NOT NULL DEFAULT '',    -- label last written to the Docebo option (F2 rename)
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX badge_templates_name ON badge_templates(name);
CREATE INDEX badge_templates_dropdown ON badge_templates(dropdown_element_id);

-- M: integration mappings (SPEC §1, M1-M4), entered by admins.
CREATE TABLE mappings (
    id                          INTEGER PRIMARY KEY,
    template_id                 TEXT NOT NULL,
    template_name               TEXT NOT NULL DEFAULT '',
    learning_plan_id            TEXT NOT NULL DEFAULT '',
    import_as_external_training INTEGER NOT NULL DEFAULT 0,
    certification_code          TEXT NOT NULL DEFAULT '',
    is_active                   INTEGER NOT NULL DEFAULT 1,
    check_status                TEXT NOT NULL DEFAULT '',   -- '' unchecked | ok | broken (M3)
    check_message               TEXT NOT NULL DEFAULT '',
    checked_at                  TEXT,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    UNIQUE (template_id, learning_plan_id, certification_code)   -- M2
);
CREATE INDEX mappings_template ON mappings(template_id);
CREATE INDEX mappings_learning_plan ON mappings(learning_plan_id) WHERE learning_plan_id != '';
CREATE INDEX mappings_certification ON mappings(certification_code) WHERE certification_code != '';

-- Runs of flows (SPEC §2: "every flow writes a run record (start, end, status, counts)").
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    flow           TEXT NOT NULL,      -- templates|dropdown|course_completion|certification|badge_event|
                                       -- docebo_to_credly|credly_to_docebo
    trigger        TEXT NOT NULL,      -- console|cli|schedule|webhook|test
    dry_run        INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,      -- running|succeeded|failed|cancelled|skipped|interrupted
    reason         TEXT NOT NULL DEFAULT '',
    started_at     TEXT NOT NULL,
    ended_at       TEXT,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    examined       INTEGER NOT NULL DEFAULT 0,
    issued         INTEGER NOT NULL DEFAULT 0,
    replaced       INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0,
    created        INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    skipped        INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    pid            INTEGER,            -- process that ran it; a 'running' row whose pid is gone was interrupted
    parent_run_id  INTEGER             -- 'all' runs its parts as child runs
);
CREATE INDEX runs_flow ON runs(flow, id);
CREATE INDEX runs_status ON runs(status);

-- Per-item log lines of a run. `action` is set on lines that record a write to a service
-- (performed, or planned in a dry run): issue_badge, replace_badge, revoke_badge,
-- create_external_training, ... so a dry run's plan is the list of its action lines.
CREATE TABLE run_log (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    level   TEXT NOT NULL,             -- debug|info|warning|error
    action  TEXT NOT NULL DEFAULT '',
    object  TEXT NOT NULL DEFAULT '',  -- what the line is about, e.g. 'user 12 / course 77'
    message TEXT NOT NULL
);
CREATE INDEX run_log_run ON run_log(run_id, id);
CREATE INDEX run_log_run_level ON run_log(run_id, level, id);

-- Notifications (N1): errors, the deletion notice, rejected webhooks, digests.
CREATE TABLE notifications (
    id                  INTEGER PRIMARY KEY,
    created_at          TEXT NOT NULL,
    kind                TEXT NOT NULL,     -- error|deletion_notice|digest|config|webhook_rejected
    title               TEXT NOT NULL,
    body                TEXT NOT NULL DEFAULT '',
    flow                TEXT NOT NULL DEFAULT '',
    run_id              INTEGER,
    object              TEXT NOT NULL DEFAULT '',   -- the Docebo/Credly object concerned
    call                TEXT NOT NULL DEFAULT '',   -- the API call, e.g. 'POST /organizations/{org}/badges'
    service_message     TEXT NOT NULL DEFAULT '',   -- the service's own error message
    digest_id           INTEGER,                    -- set on errors mailed inside a digest
    read_at             TEXT,
    mail_status         TEXT NOT NULL DEFAULT 'pending',  -- pending|sent|failed|in_digest|not_mailed
    mail_attempts       INTEGER NOT NULL DEFAULT 0,
    mail_error          TEXT NOT NULL DEFAULT '',
    mail_next_attempt_at TEXT,
    mailed_at           TEXT
);
CREATE INDEX notifications_unread ON notifications(read_at, id);
CREATE INDEX notifications_mail ON notifications(mail_status, mail_next_attempt_at);

-- The webhook inbox (W2/W3): each delivered item is committed here before the 200 goes out.
-- A grouped Docebo delivery becomes one row per payload; delivery_key makes re-deliveries no-ops.
CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,             -- docebo|credly
    delivery_key    TEXT NOT NULL UNIQUE,      -- 'docebo:<message_id>:<n>' | 'credly:<event id>'
    event_type      TEXT NOT NULL,
    learner_key     TEXT NOT NULL DEFAULT '',  -- events of one learner are processed in order
    payload         TEXT NOT NULL,             -- JSON of the single item
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',  -- queued|processing|done|failed|skipped
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    processed_at    TEXT,
    run_id          INTEGER,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     TEXT
);
CREATE INDEX inbox_status ON inbox(status, next_attempt_at, id);
CREATE INDEX inbox_learner ON inbox(learner_key, id);

-- The ledger: every object the product creates in either system, with the object it came
-- from. An 'intent' row is committed before the create call goes out and becomes 'active'
-- with the new object's id once the call succeeds; an intent left behind by a crash means
-- "look in the service before creating again" (F3c, F7/F6 resumability).
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    system      TEXT NOT NULL,          -- credly|docebo
    object_type TEXT NOT NULL,          -- badge|external_training|certification_award
    object_id   TEXT NOT NULL DEFAULT '',  -- id in that system; '' while only an intent
    subject     TEXT NOT NULL,          -- badge: recipient e-mail (lower-case); docebo objects: Docebo user id
    target      TEXT NOT NULL,          -- badge/external_training: Credly template id; award: certification code
    origin_type TEXT NOT NULL,          -- course|learning_plan|certification_award|credly_badge
    origin_id   TEXT NOT NULL,          -- course id, learning plan id, award id, Credly badge id
    status      TEXT NOT NULL,          -- intent|active|revoked|replaced|deleted
    details     TEXT NOT NULL DEFAULT '{}',  -- JSON: dates and whatever the flow needs to update it later
    run_id      INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_live ON ledger(object_type, subject, target)
    WHERE status IN ('intent', 'active');
CREATE INDEX ledger_object ON ledger(system, object_id);
CREATE INDEX ledger_origin ON ledger(origin_type, origin_id);

-- One running instance per flow across processes (W4). A row whose pid is dead is stale.
CREATE TABLE flow_locks (
    flow        TEXT PRIMARY KEY,
    run_id      INTEGER,
    pid         INTEGER NOT NULL,
    acquired_at TEXT NOT NULL
);

-- Scheduler state (W4): when each job last ran, and whether the optional batches are on.
CREATE TABLE schedule (
    job             TEXT PRIMARY KEY,   -- templates|dropdown|docebo_to_credly|credly_to_docebo
    enabled         INTEGER NOT NULL DEFAULT 1,
    last_started_at TEXT,
    last_finished_at TEXT,
    last_run_id     INTEGER
);

-- Connection health shown on the dashboard: the last "test connection" of each service.
CREATE TABLE connection_health (
    service    TEXT PRIMARY KEY,        -- credly|docebo|smtp
    checked_at TEXT NOT NULL,
    ok         INTEGER NOT NULL,
    message    TEXT NOT NULL DEFAULT ''
);

-- Small key/value state (e.g. docebo.course_field_id). Never secrets.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(_SCHEMA_V1)
    now = utcnow()
    for key in SETTING_KEYS:
        db.execute(
            "INSERT INTO settings (integration, key, value, updated_at) VALUES (?, ?, '', ?)",
            (INTEGRATION, key, now),
        )
    db.execute(
        "INSERT INTO schedule (job, enabled) VALUES "
        "('templates', 1), ('dropdown', 1), ('docebo_to_credly', 0), ('credly_to_docebo', 0)"
    )


def _migration_ledger_identity(db: sqlite_utils.Database) -> None:
    """Issue 12 (I1, O3): the ledger keeps the Docebo user id next to the e-mail, and the date of the
    source object each row was made for. Existing rows keep everything; both columns are filled
    from what their `details` already recorded (badges: `user_id`, `issued_at`)."""
    for statement in (
        "ALTER TABLE ledger ADD COLUMN user_id TEXT",
        "ALTER TABLE ledger ADD COLUMN origin_date TEXT",
        "UPDATE ledger SET user_id = CASE WHEN json_valid(details) THEN json_extract(details, '$.user_id') END, "
        "origin_date = CASE WHEN json_valid(details) THEN json_extract(details, '$.issued_at') END",
        "UPDATE ledger SET user_id = subject WHERE user_id IS NULL AND object_type != 'badge'",
        "CREATE INDEX ledger_user ON ledger(object_type, user_id, target)",
    ):
        db.execute(statement)


def _migration_notification_causes(db: sqlite_utils.Database) -> None:
    """Issue 16: each notification carries its cause ('credly|401|invalid token', '' = none), so
    the console folds notifications of one cause into one problem, and `resolved_at` closes it."""
    db.execute("ALTER TABLE notifications ADD COLUMN cause TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE notifications ADD COLUMN resolved_at TEXT")
    db.execute("CREATE INDEX notifications_cause ON notifications(cause, resolved_at)")


# Append-only. Each entry runs once, in its own transaction, and bumps PRAGMA user_version.
MIGRATIONS = [_migration_1, _migration_ledger_identity, _migration_notification_causes]


class StoreError(CredlyConsoleError):
    """The database file cannot be opened or is newer than this program."""

    exit_code = EXIT_USAGE


class DatabaseBusyError(StoreError):
    """Another process held the database's write lock for longer than the busy timeout."""

    exit_code = EXIT_BUSY
    retryable = True  # the lock is released when the other process's write ends


# How long a write waits for another process's write lock before giving up (seconds).
BUSY_TIMEOUT_S = 30.0


def _explain(path: Path, exc: BaseException) -> StoreError:
    """The one-line reason a database cannot be used, for an error of sqlite3 or the OS."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return DatabaseBusyError(
            f"the database {path} is locked by another process (waited {BUSY_TIMEOUT_S:g} s): "
            "a long sync, a backup or another tool holds it; try again when it has finished"
        )
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return StoreError(
            f"{path} is not a credly-console database (not a usable SQLite file: {text}); "
            "move it away, or point CREDLY_CONSOLE_DB at another file"
        )
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return StoreError(
            f"cannot write to the database {path} ({text}); give this user write access to the "
            "file and its directory, or point CREDLY_CONSOLE_DB at a writable path"
        )
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return StoreError(
            f"cannot create the database {path}: a part of its directory path is a file, not a "
            "directory; point CREDLY_CONSOLE_DB at a file in a directory"
        )
    if "full" in text or "i/o error" in text.lower():
        return StoreError(f"the database {path} cannot be written ({text}); free some disk space or check the disk")
    if isinstance(exc, OSError) or "unable to open" in text:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else text
        return StoreError(
            f"cannot open the database {path} ({reason}); point CREDLY_CONSOLE_DB at a file in a writable directory"
        )
    return StoreError(f"the database {path} cannot be used: {text}")


# sqlite3.OperationalError texts that are the environment (another process, the file system),
# not a bug in a statement: they become a `StoreError` that says what to do.
_ENVIRONMENT = ("locked", "readonly", "disk i/o error", "database or disk is full", "unable to open")


class _Connection(sqlite3.Connection):
    """A connection whose statements turn the environment's failures (a lock held too long, a
    read-only or full disk) into a `StoreError`, so no caller sees a raw sqlite3 traceback."""

    store_path: Path = Path("?")

    def _environment(self, exc: sqlite3.OperationalError) -> None:
        if any(word in str(exc).lower() for word in _ENVIRONMENT):
            raise _explain(self.store_path, exc) from exc

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            self._environment(exc)
            raise

    def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            self._environment(exc)
            raise


def inserted_rowid(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just wrote: sqlite3 types `lastrowid` as optional, an INSERT always sets it."""
    if cursor.lastrowid is None:
        raise RuntimeError("the INSERT reported no rowid")
    return cursor.lastrowid


def utcnow() -> str:
    """Now, as the store writes timestamps: ISO-8601 UTC with milliseconds and a Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % _ and \\ taken literally (use with
    `ESCAPE '\\'`)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclasses.dataclass
class Where:
    """The WHERE clause of a listing, built one condition at a time with its parameters."""

    clauses: list[str] = dataclasses.field(default_factory=list)
    params: list[Any] = dataclasses.field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


class Store:
    """An open store. One per thread; close it (or use it as a context manager) when done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        memory = str(path) == ":memory:"
        conn: sqlite3.Connection | None = None
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._refuse_special_file()
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, factory=_Connection)
            conn.store_path = self.path
            self.db = sqlite_utils.Database(conn)
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            if self.schema_version == 0:
                self._refuse_foreign_database()  # before the WAL switch, which writes the file header
            if not memory:
                self.db.enable_wal()
                self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise _explain(self.path, exc) from exc

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    # -- schema ----------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the database {self.path} has schema version {version}, newer than this "
                f"program knows ({len(MIGRATIONS)}); upgrade credly-console"
            )
        while version < len(MIGRATIONS):
            with self.write():
                # Re-read inside the write lock: another process may have migrated meanwhile.
                version = self.schema_version
                if version >= len(MIGRATIONS):
                    break
                MIGRATIONS[version](self.db)
                version += 1
                self.db.execute(f"PRAGMA user_version = {version}")

    def _refuse_special_file(self) -> None:
        """A directory, FIFO or device is no database file (SQLite's own answer, "disk I/O error",
        would send the admin looking at the disk)."""
        if not self.path.exists() or self.path.is_file():
            return
        what = "a directory" if self.path.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise StoreError(f"the database path {self.path} is {what}; point CREDLY_CONSOLE_DB at a database file")

    def _refuse_foreign_database(self) -> None:
        """An SQLite file at version 0 that already has tables belongs to another program: never
        write this program's schema into it."""
        names = [row[0] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()]
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise StoreError(
                f"{self.path} is not a credly-console database (an SQLite file of another program, with the "
                f"tables {shown}); nothing was written to it: point CREDLY_CONSOLE_DB at a new file"
            )

    # -- transactions ----------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """An atomic write: BEGIN IMMEDIATE (takes the write lock up front, so concurrent
        writers wait on busy_timeout instead of failing on a lock upgrade), or a savepoint
        when already inside a transaction. Commits on success, rolls back on any exception."""
        if self.conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # -- listings (the console's paged tables, the CLI's lists) ------------------------------
    def page(
        self,
        source: str,
        where: Where,
        *,
        order: str,
        limit: int | None,
        offset: int = 0,
        columns: str = "*",
    ) -> list[dict[str, Any]]:
        """One page of rows of `source` (a table, or a table with its joins) matching `where`,
        in `order`; `limit=None` returns every row."""
        sql = f"SELECT {columns} FROM {source}{where.sql} ORDER BY {order}"
        params = list(where.params)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return list(self.db.query(sql, params))

    def count(self, source: str, where: Where) -> int:
        """How many rows of `source` match `where`."""
        return self.db.execute(f"SELECT COUNT(*) FROM {source}{where.sql}", where.params).fetchone()[0]

    # -- small helpers used everywhere -----------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
