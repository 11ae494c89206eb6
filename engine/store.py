"""Persistence: an embedded SQLite database under the data folder. No server needed."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from . import errors

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    session_id TEXT,
    path TEXT
);
CREATE INDEX IF NOT EXISTS files_owner ON files (owner, created_at, id);
CREATE INDEX IF NOT EXISTS files_session ON files (session_id);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    idle_timeout INTEGER NOT NULL,
    sandbox_id TEXT,
    engine_owner TEXT,
    memory_limit_mb INTEGER,
    kernel TEXT,
    running_since REAL,
    notice TEXT
);
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions (owner, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_sandbox ON sessions (sandbox_id);
CREATE TABLE IF NOT EXISTS session_files (
    session_id TEXT NOT NULL,
    path TEXT NOT NULL,
    file_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (session_id, path)
);
"""

ADDED_COLUMNS = {
    "files": {"expires_with_session": "INTEGER"},
    "sessions": {
        "engine_owner": "TEXT",
        "memory_limit_mb": "INTEGER",
        "kernel": "TEXT",
        "running_since": "REAL",
        "notice": "TEXT",
    },
}
"""Columns added after a table's first release: a database from then gets them at open."""
DB_FILES = ("", "-wal", "-shm")

Row = dict[str, Any]


class Store:
    """A thin, thread-safe wrapper over one SQLite connection in WAL mode."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._add_columns()
        self._restrict()

    def _add_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _restrict(self) -> None:
        """The database holds kernels' message keys: readable by the engine's user only."""
        for suffix in DB_FILES:
            with suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def execute_script(self, sql: str) -> None:
        with self._lock:
            self._db.executescript(sql)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        with self._lock, disk_full_is_storage_full():
            return self._db.execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def insert(self, table: str, row: Row, *, replace: bool = False) -> None:
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", row)

    def owned(
        self, table: str, object_id: object, owner: str | None, missing: errors.NotFound
    ) -> Row:
        """The row ``object_id`` of ``table`` if ``owner`` owns it (any owner when None).

        The tenant-isolation rule, kept here once: another tenant's row is reported exactly like
        a row that does not exist, so ids cannot be probed across tenants.
        """
        if not isinstance(object_id, str):
            raise errors.InvalidRequest(f"an id must be a string, not {type(object_id).__name__}")
        row = self.one(f"SELECT * FROM {table} WHERE id = ?", (object_id,))
        if row is None or (owner is not None and row["owner"] != owner):
            raise missing
        return row

    def update(self, table: str, key: str, value: Any, **fields: Any) -> int:
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        return self.execute(
            f"UPDATE {table} SET {sets} WHERE {key} = :_key", {**fields, "_key": value}
        )


@contextmanager
def disk_full_is_storage_full() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise errors.StorageFull(f"the engine's data folder is full: {exc}") from exc
        raise
