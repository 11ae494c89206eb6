"""Cursor pagination shaped like OpenAI's list envelopes: ``after``/``before`` are object ids.

One set of rules for every list: ``limit`` 1-100, ``order`` asc or desc, ``after`` and ``before``
naming objects of the list. ``page_query`` pages a table, ``page_list`` an already-built list.
``Deleted`` is the other envelope every face shares: the reply to a delete.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel

from . import errors
from .store import Row
from .store.base import Pageable
from .store.records import PageWindow, unknown_cursor

T = TypeVar("T")
MAX_LIMIT = 100
Order = Literal["asc", "desc"]


class Window(TypedDict, total=False):
    """A page of a list, as the API's query: ``limit`` 1-100 (20), ``order`` by creation time
    (``desc``), ``after`` and ``before`` object ids."""

    limit: int
    order: Order
    after: str | None
    before: str | None


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


def checked(
    limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None
) -> PageWindow:
    """A list's paging keywords with their defaults, checked (``check_paging``)."""
    check_paging(limit, order)
    return {"limit": limit, "order": order, "after": after, "before": before}


def page_query(
    store: Pageable,
    table: str,
    filters: dict[str, Any],
    *,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
    cursor_scope: Collection[str] | None = None,
) -> tuple[list[Row], bool]:
    """One page of a table's rows, by the rules above (the store's ``records.page``)."""
    window = checked(limit, order, after, before)
    return store.page(table, filters, cursor_scope=cursor_scope, **window)


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
            raise unknown_cursor(name, cursor)
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(ordered)
    window = ordered[start:end]
    if before is not None and after is None:
        return Page[T].of(window[-limit:], len(window) > limit)
    return Page[T].of(window[:limit], len(window) > limit)
