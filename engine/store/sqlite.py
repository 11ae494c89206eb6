"""The one way the engine opens its SQLite database: every connection to engine.db is made here.

The policy, once: WAL (readers never block the writer; a second connection may write beside the
first), synchronous=NORMAL, foreign keys on, a 10 s busy wait, the database files readable by
the engine's user only, one lock per connection (connections are shared across threads), and a
full disk reported as ``errors.StorageFull``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from .. import errors

DB_FILES = ("", "-wal", "-shm")
BUSY_TIMEOUT_MS = 10_000

Row = dict[str, Any]
DatabaseError = sqlite3.Error
"""What a statement that failed raises (besides ``errors.StorageFull`` for a full disk)."""
Params = Sequence[Any] | dict[str, Any]


class Connection:
    """One thread-safe SQLite connection in autocommit mode, opened by the engine's policy."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.restrict()

    def restrict(self) -> None:
        """The database holds kernels' message keys: readable by the engine's user only."""
        for suffix in DB_FILES:
            with suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def script(self, sql: str) -> None:
        with self._lock, disk_full_is_storage_full():
            self._db.executescript(sql)

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self._lock, disk_full_is_storage_full():
            return self._db.execute(sql, params).rowcount

    def one(self, sql: str, params: Params = ()) -> Row | None:
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def columns(self, table: str) -> set[str]:
        return {r["name"] for r in self.all(f"PRAGMA table_info({table})")}

    def add_columns(self, added: dict[str, dict[str, str]]) -> None:
        """Columns added after a table's first release: a database from then gets them at open."""
        for table, columns in added.items():
            have = self.columns(table)
            for name, kind in columns.items():
                if name not in have:
                    self.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements that commit together, or not at all; other threads wait meanwhile."""
        with self._lock, disk_full_is_storage_full():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


class Transaction:
    """The statements of one open transaction (see ``Connection.transaction``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(sql, params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT; the new row's rowid."""
        return int(self._db.execute(sql, params).lastrowid or 0)

    def many(self, sql: str, rows: Iterable[Params]) -> None:
        self._db.executemany(sql, rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row = self._db.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return [dict(r) for r in self._db.execute(sql, params).fetchall()]


@contextmanager
def disk_full_is_storage_full() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise errors.StorageFull(f"the engine's data folder is full: {exc}") from exc
        raise
