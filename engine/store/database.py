"""What the tables of this package are written against: one database connection, SQLite's
(``sqlite.Connection``, the default) or PostgreSQL's (``postgres.Connection``, when
``SANDBOX_DATABASE_URL`` names one), opened by ``connect``."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, Protocol

from .sqlite import Connection as SqliteConnection
from .sqlite import Params, Row

Dialect = Literal["sqlite", "postgresql"]


class Transaction(Protocol):
    """The statements of one open transaction."""

    def execute(self, sql: str, params: Params = ()) -> int: ...

    def insert(self, sql: str, params: Params = ()) -> int: ...

    def many(self, sql: str, rows: Iterable[Params]) -> None: ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...

    def all(self, sql: str, params: Params = ()) -> list[Row]: ...


class Database(Protocol):
    """One connection (or pool) to the engine's database, thread-safe."""

    @property
    def dialect(self) -> Dialect: ...

    def restrict(self) -> None: ...

    def close(self) -> None: ...

    def script(self, sql: str) -> None: ...

    def execute(self, sql: str, params: Params = ()) -> int: ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...

    def all(self, sql: str, params: Params = ()) -> list[Row]: ...

    def columns(self, table: str) -> set[str]: ...

    def add_columns(self, added: dict[str, dict[str, str]]) -> None: ...

    def transaction(self) -> AbstractContextManager[Transaction]: ...


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def connect(path: Path, url: str = "") -> Database:
    """The engine's database: the SQLite file ``path``, or the PostgreSQL database ``url``
    names (``path`` unused then)."""
    if not url:
        return SqliteConnection(path)
    if not is_postgresql(url):
        raise ValueError(f"SANDBOX_DATABASE_URL must be empty or postgresql://..., not {url!r}")
    from .postgres import Connection as PostgresConnection

    return PostgresConnection(url)
