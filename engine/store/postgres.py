"""The engine's database on PostgreSQL (``SANDBOX_DATABASE_URL=postgresql://...``): the same
tables and the same statements as on SQLite, through a pool of psycopg connections.

The statements of this package are written once, in the SQL both databases share; what SQLite
spells its own way is turned into PostgreSQL's here, once per statement: ``?`` and ``:name``
parameters, ``INSERT OR REPLACE`` (an upsert on the table's key that, as SQLite's, moves the
row last), ``instr``, ``rowid`` (a ``BIGSERIAL`` column of every table, hidden from
``SELECT *`` as SQLite's is) and the column types of the schemas.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal, cast

from .. import errors
from .sqlite import Params, Row

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - the cluster extra is not installed
    raise ImportError(
        "SANDBOX_DATABASE_URL names PostgreSQL, which needs the cluster extra: "
        "pip install 'sandbox-engine[cluster]'"
    ) from exc

POOL_SIZE = 8
SCHEMA_LOCK, WRITER_LOCK = 2202_1, 2202_2
"""Advisory locks: one engine creates the tables at a time; one transaction writes at a time."""
CONNECT_TIMEOUT_S = 10.0


@contextmanager
def sqlite_errors() -> Iterator[None]:
    """The store raises one family of errors whatever its database: DB-API's, as the standard
    library's ``sqlite3`` names them (a broken constraint is an ``IntegrityError``), and a full
    disk as ``errors.StorageFull``."""
    try:
        yield
    except psycopg.errors.DiskFull as exc:
        raise errors.StorageFull(f"the engine's database is full: {exc}") from exc
    except psycopg.IntegrityError as exc:
        raise sqlite3.IntegrityError(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise sqlite3.OperationalError(str(exc)) from exc
    except psycopg.Error as exc:
        raise sqlite3.DatabaseError(str(exc)) from exc


# The key that INSERT OR REPLACE replaces on, for the tables not keyed by ``id``.
REPLACE_KEYS = {
    "session_files": ("session_id", "path"),
    "response_items": ("parent", "id"),
    "vs_sentence_vectors": ("set_id", "digest"),
}
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_REPLACE = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)(.*)", re.DOTALL)
_SELECT_LIST = re.compile(r"^\s*SELECT\s+(.*?)\s+FROM\s", re.DOTALL | re.IGNORECASE)
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(", re.IGNORECASE)


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """A statement of this package, in PostgreSQL's spelling."""
    sql = sql.replace("%", "%%")
    replace = _REPLACE.match(sql.strip())
    if replace:
        table, columns, rest = replace.groups()
        keys = REPLACE_KEYS.get(table, ("id",))
        names = [c.strip() for c in columns.split(",")]
        sets = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
        sql = (
            f"INSERT INTO {table} ({columns}){rest} ON CONFLICT ({', '.join(keys)}) "
            f"DO UPDATE SET {sets}, rowid = DEFAULT"
        )
    sql = sql.replace("?", "%s")
    sql = _NAMED.sub(r"%(\1)s", sql)
    return sql.replace("instr(", "strpos(")


def translate_schema(sql: str) -> str:
    """A schema of this package in PostgreSQL's types, each table with its ``rowid``."""
    sql = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGSERIAL PRIMARY KEY", sql)
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    sql = re.sub(r"\bBLOB\b", "BYTEA", sql)
    return _TABLE.sub(lambda m: f"{m.group(0)}\n    rowid BIGSERIAL,", sql)


def _shown(sql: str, row: Row) -> Row:
    """A row as SQLite gives it: ``rowid`` only when the statement names it."""
    if "rowid" in row:
        listed = _SELECT_LIST.match(sql)
        if listed is None or "rowid" not in listed.group(1):
            del row["rowid"]
    return row


class Connection:
    """A pool of PostgreSQL connections with ``sqlite.Connection``'s methods."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, url: str, *, size: int = POOL_SIZE) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=CONNECT_TIMEOUT_S,
            open=False,
            name="sandbox-engine",
        )
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)

    def restrict(self) -> None:
        """Access to the database is the server's business (its roles), not the engine's."""

    def close(self) -> None:
        self._pool.close()

    def script(self, sql: str) -> None:
        # Several engines may create the same tables at once: one at a time.
        with sqlite_errors(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(cast(Any, translate_schema(sql)))

    def execute(self, sql: str, params: Params = ()) -> int:
        with sqlite_errors(), self._pool.connection() as conn:
            return conn.execute(cast(Any, translate(sql)), params).rowcount

    def one(self, sql: str, params: Params = ()) -> Row | None:
        with sqlite_errors(), self._pool.connection() as conn:
            row = conn.execute(cast(Any, translate(sql)), params).fetchone()
        return None if row is None else _shown(sql, cast(Row, row))

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        with sqlite_errors(), self._pool.connection() as conn:
            rows = conn.execute(cast(Any, translate(sql)), params).fetchall()
        return [_shown(sql, cast(Row, r)) for r in rows]

    def columns(self, table: str) -> set[str]:
        rows = self.all(
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {r["name"] for r in rows} - {"rowid"}

    def add_columns(self, added: dict[str, dict[str, str]]) -> None:
        for table, columns in added.items():
            for name, kind in columns.items():
                self.script(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")

    def has_table(self, name: str) -> bool:
        return self.one("SELECT to_regclass(?) AS t", (name,)) not in (None, {"t": None})

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements that commit together, or not at all; one such transaction at a time on
        the database, as SQLite's ``BEGIN IMMEDIATE`` has it, so that a check and the writes it
        allows (a file still in its store, then its chunks) see no other writer between them."""
        with sqlite_errors(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
            yield Transaction(conn)


class Transaction:
    """The statements of one open transaction (see ``Connection.transaction``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(cast(Any, translate(sql)), params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table keyed by ``id``; the new row's id."""
        row = self._conn.execute(cast(Any, translate(sql) + " RETURNING id"), params).fetchone()
        return int(cast(Row, row)["id"])

    def many(self, sql: str, rows: Iterable[Params]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(cast(Any, translate(sql)), list(rows))

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row = self._conn.execute(cast(Any, translate(sql)), params).fetchone()
        return None if row is None else _shown(sql, cast(Row, row))

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        rows = self._conn.execute(cast(Any, translate(sql)), params).fetchall()
        return [_shown(sql, cast(Row, r)) for r in rows]
