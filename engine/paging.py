"""Cursor pagination shaped like OpenAI's list envelopes: ``after``/``before`` are object ids.

One set of rules for every list: ``limit`` 1-100, ``order`` asc or desc, ``after`` and ``before``
naming objects of the list. ``page_query`` pages a table, ``page_list`` an already-built list.
``Deleted`` is the other envelope every face shares: the reply to a delete.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from . import errors
from .store import Row

T = TypeVar("T")
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @classmethod
    def of(cls, items: list[T], has_more: bool) -> Page[T]:
        ids = [getattr(i, "id", None) for i in items]
        return cls(
            data=items,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
            has_more=has_more,
        )


class Deleted(BaseModel):
    id: str
    object: str
    """``<kind>.deleted`` ("file" for a file, as OpenAI's)."""
    deleted: bool = True


def check_paging(limit: object, order: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}"
        )
    if order not in ("asc", "desc"):
        raise errors.InvalidRequest(f"order must be 'asc' or 'desc', not {order!r}")


def _unknown_cursor(name: str, cursor: object) -> errors.InvalidRequest:
    return errors.InvalidRequest(f"{name} cursor {cursor!r} does not name an object of this list")


class Database(Protocol):
    """What ``page_query`` reads: the engine's ``Store``, or another SQLite database like it."""

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ...) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ...) -> list[Row]: ...


def page_query(
    store: Database,
    table: str,
    filters: dict[str, Any],
    *,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
    cursor_scope: Collection[str] | None = None,
) -> tuple[list[Row], bool]:
    """Rows in creation order (SQLite's rowid), one page of them, and whether more follow.

    A cursor must name one of the listed rows: it is looked up under the list's filters (or
    the ``cursor_scope`` keys of them), so another tenant's id is as unknown as a made-up one.
    """
    check_paging(limit, order)
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
        row = store.one(f"SELECT rowid FROM {table} WHERE {lookup}", {**scope, "cursor": cursor})
        if row is None:
            raise _unknown_cursor(name, cursor)
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
    rows = store.all(sql, params)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if walk != direction:
        rows.reverse()
    return rows, has_more


def page_list(
    items: Sequence[T],
    *,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Page[T]:
    """A page of a list given oldest first (objects with an ``id``), by ``page_query``'s rules."""
    check_paging(limit, order)
    ordered = list(items) if order == "asc" else list(items)[::-1]
    ids = [getattr(i, "id", None) for i in ordered]
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None and cursor not in ids:
            raise _unknown_cursor(name, cursor)
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(ordered)
    window = ordered[start:end]
    if before is not None and after is None:
        return Page[T].of(window[-limit:], len(window) > limit)
    return Page[T].of(window[:limit], len(window) > limit)
