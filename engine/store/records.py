"""The engine's records (files, sessions, the files a session exported), in SQLite or
PostgreSQL (``database.connect``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Unpack

from .. import errors
from .database import Database, connect
from .sqlite import Params, Row

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
    notice TEXT,
    paused_at INTEGER,
    paused_until INTEGER,
    snapshot TEXT,
    network_policy TEXT
);
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions (owner, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_sandbox ON sessions (sandbox_id);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status);
CREATE INDEX IF NOT EXISTS sessions_thread ON sessions (owner, thread_id);
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
        "paused_at": "INTEGER",
        "paused_until": "INTEGER",
        "snapshot": "TEXT",
        "home": "TEXT",
        "network_policy": "TEXT",
        "node_id": "TEXT",
    },
}
"""Columns added after a table's first release: a database from then gets them at open."""


class PageWindow(TypedDict):
    """Which page of a table: ``limit`` rows in ``order`` (asc or desc) of creation, after or
    before a row's id; checked by the caller (``paging.checked``)."""

    limit: int
    order: str
    after: NotRequired[str | None]
    before: NotRequired[str | None]


class Tables:
    """Tables on one connection: paged in creation order (``paging.page_query``), and open to
    raw statements, for tests and tools."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    def execute(self, sql: str, params: Params = ()) -> int:
        return self.db.execute(sql, params)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        return self.db.one(sql, params)

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return self.db.all(sql, params)

    def page(
        self,
        table: str,
        filters: dict[str, Any],
        *,
        cursor_scope: Collection[str] | None = None,
        **window: Unpack[PageWindow],
    ) -> tuple[list[Row], bool]:
        return page(self.db, table, filters, cursor_scope=cursor_scope, **window)


class Store(Tables):
    """The engine's database (the SQLite file ``path``, or PostgreSQL when ``url`` names it):
    the records' tables, and the connection every other collection of it (documents) is
    opened on."""

    def __init__(
        self, path: Path, url: str = "", home: str | None = None, node: str | None = None
    ) -> None:
        """``home``: on a database several engines share, the id of this engine's data folder,
        which its sessions' rows carry (``SessionRows``); ``node``: the cluster node it runs
        on, which they carry too."""
        super().__init__(connect(path, url))
        self.path = path
        self.db.script(SCHEMA)
        self.db.add_columns(ADDED_COLUMNS)
        self.db.restrict()
        self.file_rows = FileRows(self.db)
        self.session_rows = SessionRows(self.db, home, node)

    def execute_script(self, sql: str) -> None:
        self.db.script(sql)

    def insert(self, table: str, row: Row, *, replace: bool = False) -> None:
        insert(self.db, table, row, replace=replace)

    def owned(
        self, table: str, object_id: object, owner: str | None, missing: errors.NotFound
    ) -> Row:
        return owned(self.db, table, object_id, owner, missing)

    def update(self, table: str, key: str, value: Any, **fields: Any) -> int:
        return update(self.db, table, key, value, **fields)


class FileRows:
    """The ``files`` table: one row per file object (its bytes are in the blob store)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, row: Row) -> None:
        insert(self._db, "files", row)

    def owned(self, file_id: object, owner: str | None, missing: errors.NotFound) -> Row:
        return owned(self._db, "files", file_id, owner, missing)

    def ids(self) -> set[str]:
        return {r["id"] for r in self._db.all("SELECT id FROM files")}

    def owners(self, file_ids: Sequence[str]) -> dict[str, str]:
        """The owner of each of ``file_ids`` that exists (one query per 500 ids)."""
        found: dict[str, str] = {}
        for start in range(0, len(file_ids), 500):
            part = file_ids[start : start + 500]
            marks = ", ".join("?" * len(part))
            for row in self._db.all(f"SELECT id, owner FROM files WHERE id IN ({marks})", part):
                found[row["id"]] = row["owner"]
        return found

    def usage(self, owner: str, excluding: str | None = None) -> tuple[int, int]:
        """How many file objects ``owner`` holds, and their bytes (but ``excluding``'s)."""
        row = self._db.one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM files "
            "WHERE owner = ? AND id != ?",
            (owner, excluding or ""),
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    def delete(self, file_id: str) -> None:
        self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def keep(self, file_id: str) -> None:
        """An output no longer ends with its session."""
        update(self._db, "files", "id", file_id, expires_with_session=None)

    def ends_with(self, file_id: str, session_id: str) -> bool:
        """Whether ``file_id`` is an output of ``session_id`` that nobody kept."""
        row = self._db.one(
            "SELECT id FROM files WHERE id = ? AND session_id = ? AND expires_with_session = 1",
            (file_id, session_id),
        )
        return row is not None

    def session_outputs(self, session_id: str) -> list[str]:
        """The outputs of ``session_id`` that nobody kept."""
        rows = self._db.all(
            "SELECT id FROM files WHERE session_id = ? AND expires_with_session = 1",
            (session_id,),
        )
        return [r["id"] for r in rows]


class SessionRows:
    """The ``sessions`` table, and ``session_files``: one row per file a session exported or
    was given.

    On a database that several engines share, each session's row names the data folder
    (``home``) of the engine that ran it, and an engine recovers only its own folder's: every
    primary engine is the owner ``primary`` of its folder. In a cluster, the row names the node
    that holds the session too (``node_id``), which any replica reads to reach it."""

    def __init__(self, db: Database, home: str | None = None, node: str | None = None) -> None:
        self._db = db
        self._home = home
        self._node = node

    def _stamp(self) -> Row:
        """The columns that say which engine holds a session."""
        stamp: Row = {} if self._home is None else {"home": self._home}
        return stamp if self._node is None else {**stamp, "node_id": self._node}

    def add(self, row: Row) -> None:
        insert(self._db, "sessions", {**row, **self._stamp()})

    def claim(self, session_id: str) -> None:
        """This engine holds the session now (it resumes one that another engine paused)."""
        if stamp := self._stamp():
            update(self._db, "sessions", "id", session_id, **stamp)

    def take(self, session_id: str, previous_node: str) -> bool:
        """Claim a live session of ``previous_node`` (gone) for this engine's node; False if
        another engine took it first."""
        moved = self._db.execute(
            "UPDATE sessions SET node_id = ?, home = ? WHERE id = ? AND node_id = ?",
            (self._node, self._home, session_id, previous_node),
        )
        return moved == 1

    def lookup(self, session_id: str) -> Row | None:
        return self._db.one("SELECT * FROM sessions WHERE id = ?", (session_id,))

    def update(self, session_id: str, **fields: Any) -> None:
        update(self._db, "sessions", "id", session_id, **fields)

    def owned(self, session_id: object, owner: str | None, missing: errors.NotFound) -> Row:
        return owned(self._db, "sessions", session_id, owner, missing)

    def by_sandbox(self, sandbox_id: str) -> Row | None:
        return self._db.one("SELECT * FROM sessions WHERE sandbox_id = ?", (sandbox_id,))

    def unfinished(self, statuses: Sequence[str], engine_owners: Sequence[str | None]) -> list[Row]:
        """Sessions in one of ``statuses`` that these engine owners ran (``None`` in the list
        stands for rows from before owners were recorded)."""
        named = [o for o in engine_owners if o is not None]
        states = ", ".join("?" for _ in statuses)
        marks = ", ".join("?" for _ in named) or "NULL"
        legacy = " OR engine_owner IS NULL" if None in engine_owners else ""
        home = "" if self._home is None else " AND home = ?"
        return self._db.all(
            f"SELECT * FROM sessions WHERE status IN ({states}) "
            f"AND (engine_owner IN ({marks}){legacy}){home}",
            (*statuses, *named, *([] if self._home is None else [self._home])),
        )

    def in_status(self, status: str, owner: str, thread_id: str) -> Row | None:
        """A thread's session in ``status`` (the latest, should there be several)."""
        return self._db.one(
            "SELECT * FROM sessions WHERE owner = ? AND thread_id = ? AND status = ? "
            "ORDER BY created_at DESC LIMIT 1",
            (owner, thread_id, status),
        )

    def due(self, status: str, until_column: str, now: int) -> list[Row]:
        """Sessions in ``status`` whose ``until_column`` (a time) has come."""
        return self._db.all(
            f"SELECT * FROM sessions WHERE status = ? AND {until_column} <= ?", (status, now)
        )

    def ids_in_status(self, status: str, *, held_here: bool = False) -> list[str]:
        """``held_here``: only those whose row names this engine's node."""
        if held_here and self._node is not None:
            rows = self._db.all(
                "SELECT id FROM sessions WHERE status = ? AND node_id = ?", (status, self._node)
            )
        else:
            rows = self._db.all("SELECT id FROM sessions WHERE status = ?", (status,))
        return [r["id"] for r in rows]

    def with_outputs(self, statuses: Sequence[str]) -> list[str]:
        """Sessions in one of ``statuses`` with outputs still bound to them."""
        states = ", ".join("?" for _ in statuses)
        rows = self._db.all(
            "SELECT DISTINCT f.session_id AS id FROM files f JOIN sessions s "
            f"ON f.session_id = s.id WHERE f.expires_with_session = 1 AND s.status IN ({states})",
            tuple(statuses),
        )
        return [r["id"] for r in rows]

    def remember_file(self, row: Row) -> None:
        """A file of a session's folder, and the file object it is (replacing the path's)."""
        insert(self._db, "session_files", row, replace=True)

    def files(self, session_id: str) -> list[Row]:
        return self._db.all("SELECT * FROM session_files WHERE session_id = ?", (session_id,))


def insert(db: Database, table: str, row: Row, *, replace: bool = False) -> None:
    columns = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    db.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", row)


def update(db: Database, table: str, key: str, value: Any, **fields: Any) -> int:
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    return db.execute(f"UPDATE {table} SET {sets} WHERE {key} = :_key", {**fields, "_key": value})


def owned(
    db: Database, table: str, object_id: object, owner: str | None, missing: errors.NotFound
) -> Row:
    """The row ``object_id`` of ``table`` if ``owner`` owns it (any owner when None).

    The tenant-isolation rule, kept here once: another tenant's row is reported exactly like
    a row that does not exist, so ids cannot be probed across tenants.
    """
    if not isinstance(object_id, str):
        raise errors.InvalidRequest(f"an id must be a string, not {type(object_id).__name__}")
    row = db.one(f"SELECT * FROM {table} WHERE id = ?", (object_id,))
    if row is None or (owner is not None and row["owner"] != owner):
        raise missing
    return row


def unknown_cursor(name: str, cursor: object) -> errors.InvalidRequest:
    return errors.InvalidRequest(f"{name} cursor {cursor!r} does not name an object of this list")


def page(
    db: Database,
    table: str,
    filters: dict[str, Any],
    *,
    cursor_scope: Collection[str] | None = None,
    **window: Unpack[PageWindow],
) -> tuple[list[Row], bool]:
    """Rows in creation order (SQLite's rowid), one page of them, and whether more follow.

    A cursor must name one of the listed rows: it is looked up under the list's filters (or
    the ``cursor_scope`` keys of them), so another tenant's id is as unknown as a made-up one.
    """
    limit, order = window["limit"], window["order"]
    after, before = window.get("after"), window.get("before")
    where = [f"{k} = :{k}" for k in filters]
    params: dict[str, Any] = dict(filters)
    scope = (
        filters if cursor_scope is None else {k: filters[k] for k in cursor_scope if k in filters}
    )
    lookup = " AND ".join([*(f"{k} = :{k}" for k in scope), "id = :cursor"])
    forward = ">" if order == "asc" else "<"
    backward = "<" if order == "asc" else ">"
    for name, cursor, op in (("after", after, forward), ("before", before, backward)):
        if cursor is None:
            continue
        row = db.one(f"SELECT rowid FROM {table} WHERE {lookup}", {**scope, "cursor": cursor})
        if row is None:
            raise unknown_cursor(name, cursor)
        where.append(f"rowid {op} :{name}")
        params[name] = row["rowid"]
    direction = "ASC" if order == "asc" else "DESC"
    # `before` walks backwards from the cursor; the page is then put back in order.
    walk = (
        direction
        if before is None or after is not None
        else ("DESC" if direction == "ASC" else "ASC")
    )
    sql = f"SELECT * FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY rowid {walk} LIMIT {limit + 1}"
    rows = db.all(sql, params)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if walk != direction:
        rows.reverse()
    return rows, has_more
