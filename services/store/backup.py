"""`credly-console backup` and `restore` (issue 15 point 3): SQLite's online backup API, so a
copy taken while `serve` writes is consistent; a restore never replaces a database in use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
from pathlib import Path

from services.core.errors import EXIT_USAGE, CredlyConsoleError

# SQLite's WAL index: every connection holds a shared lock on the "dead man switch" byte of the
# -shm file (offset 120 + 8 lock bytes) while the database is open.
_SHM_DMS_OFFSET = 128
_OUR_TABLES = ("runs", "inbox", "ledger")


class BackupError(CredlyConsoleError):
    """A backup or restore that cannot be done; the message says what to do instead."""

    exit_code = EXIT_USAGE


def database_in_use(path: Path) -> bool:
    """Whether another process has the database open (WAL mode: the -shm lock byte is held)."""
    shm = Path(f"{path}-shm")
    if not shm.exists():
        return False
    fd = os.open(shm, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_OFFSET)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_OFFSET)
        return False
    finally:
        os.close(fd)


def check_copy(path: Path) -> None:
    """Raise unless `path` is an intact credly-console database (integrity_check, our tables)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a readable SQLite database ({exc})") from None
    if result != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {result}")
    missing = [t for t in _OUR_TABLES if t not in tables]
    if missing:
        raise BackupError(f"{path} is not a credly-console database (no table {', '.join(missing)})")


def backup(database: Path, target: Path, *, overwrite: bool = False) -> int:
    """Copy `database` to `target` with the online backup API (safe while others write); returns
    the copy's size in bytes. The copy is written beside the target and renamed when complete."""
    database, target = Path(database), Path(target)
    if not database.exists():
        raise BackupError(f"there is no database at {database} to back up (set CREDLY_CONSOLE_DB?)")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists; choose a new file name or pass --overwrite")
    if target.resolve() == database.resolve():
        raise BackupError("the backup must go to another file than the database itself")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    src = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the backup failed: {exc}") from None
    finally:
        src.close()
    check_copy(partial)
    os.replace(partial, target)
    return target.stat().st_size


def restore(source: Path, database: Path) -> Path | None:
    """Replace `database` by the backup `source`. Refused while a process has the database open
    (stop `serve` and close the console first). The replaced database is kept beside it; its
    path is returned (None when there was none)."""
    source, database = Path(source), Path(database)
    if not source.exists():
        raise BackupError(f"there is no backup at {source}")
    check_copy(source)
    if database_in_use(database):
        raise BackupError(f"{database} is in use by another process (serve or the console); "
                          "stop it first, then restore")
    partial = database.with_name(f".{database.name}.restoring")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    kept = None
    if database.exists():
        # Fold the old WAL into the old file, so no stray -wal is applied to the restored one.
        with contextlib.closing(sqlite3.connect(database)) as old:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            old.execute("PRAGMA journal_mode = DELETE")
        if database_in_use(database):
            partial.unlink(missing_ok=True)
            raise BackupError(f"{database} was opened by another process meanwhile; nothing was changed")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = database.with_name(f"{database.name}.before-restore-{stamp}")
        os.replace(database, kept)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    os.replace(partial, database)
    return kept
