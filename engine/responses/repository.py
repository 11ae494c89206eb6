"""Responses, conversations and their items in the engine's SQLite store.

Two tables: ``response_objects`` (a JSON document per response or conversation, plus a private
document the API never shows) and ``response_items`` (the items of a response's input or of a
conversation, in the order they were added). Ownership is checked once, by ``Store.owned``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from .. import errors
from ..paging import Page, page_list
from ..store import Store
from .models import Item

M = TypeVar("M", bound=BaseModel)
_ITEM: TypeAdapter[Item] = TypeAdapter(Item)

SCHEMA = """
CREATE TABLE IF NOT EXISTS response_objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS response_objects_status ON response_objects (kind, status);
CREATE TABLE IF NOT EXISTS response_items (
    parent TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (parent, id)
);
"""
MAX_LISTED_ITEMS = 10_000


class Repository:
    def __init__(self, store: Store) -> None:
        self._store = store
        store.execute_script(SCHEMA)

    def put(self, obj: Any, kind: str, owner: str, private: BaseModel | None = None) -> None:
        row = {
            "id": obj.id,
            "kind": kind,
            "owner": owner,
            "status": str(getattr(obj, "status", "")),
            "created_at": obj.created_at,
            "data": obj.model_dump_json(),
        }
        sets = "data = excluded.data, status = excluded.status"
        if private is not None:
            row["private"] = private.model_dump_json()
            sets += ", private = excluded.private"
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self._store.execute(
            f"INSERT INTO response_objects ({columns}) VALUES ({marks}) "
            f"ON CONFLICT(id) DO UPDATE SET {sets}",
            row,
        )

    def get(self, model: type[M], kind: str, object_id: object, owner: str, what: str) -> M:
        missing = errors.NotFound(f"{what} with id '{object_id}' not found.")
        row = self._store.owned("response_objects", object_id, owner, missing)
        if row["kind"] != kind:
            raise missing
        return model.model_validate_json(row["data"])

    def private(self, object_id: str, model: type[M]) -> M:
        row = self._store.one("SELECT private FROM response_objects WHERE id = ?", (object_id,))
        return model() if row is None else model.model_validate_json(row["private"])

    def set_private(self, object_id: str, value: BaseModel) -> None:
        self._store.update("response_objects", "id", object_id, private=value.model_dump_json())

    def delete(self, object_id: str, owner: str) -> None:
        self._store.execute(
            "DELETE FROM response_objects WHERE id = ? AND owner = ?", (object_id, owner)
        )
        self._store.execute(
            "DELETE FROM response_items WHERE parent = ? AND owner = ?", (object_id, owner)
        )

    def active(self, kind: str, statuses: list[str]) -> list[tuple[str, str]]:
        """(id, owner) of the objects of ``kind`` in one of ``statuses``; for recovery."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._store.all(
            f"SELECT id, owner FROM response_objects WHERE kind = ? AND status IN ({marks})",
            (kind, *statuses),
        )
        return [(r["id"], r["owner"]) for r in rows]

    # --- items ---

    def add_items(self, parent: str, owner: str, items: list[Item]) -> None:
        for item in items:
            self._store.execute(
                "INSERT OR REPLACE INTO response_items (parent, id, owner, data) "
                "VALUES (?, ?, ?, ?)",
                (parent, item.id, owner, item.model_dump_json()),
            )

    def items(self, parent: str, owner: str) -> list[Item]:
        """The newest ``MAX_LISTED_ITEMS`` items, oldest first."""
        rows = self._store.all(
            "SELECT data FROM response_items WHERE parent = ? AND owner = ? ORDER BY rowid DESC "
            f"LIMIT {MAX_LISTED_ITEMS}",
            (parent, owner),
        )
        return [_ITEM.validate_json(r["data"]) for r in reversed(rows)]

    def item(self, parent: str, owner: str, item_id: str) -> Item:
        row = self._store.one(
            "SELECT data FROM response_items WHERE parent = ? AND owner = ? AND id = ?",
            (parent, owner, item_id),
        )
        if row is None:
            raise errors.NotFound(f"Item with id '{item_id}' not found.")
        return _ITEM.validate_json(row["data"])

    def delete_item(self, parent: str, owner: str, item_id: str) -> None:
        self.item(parent, owner, item_id)
        self._store.execute(
            "DELETE FROM response_items WHERE parent = ? AND owner = ? AND id = ?",
            (parent, owner, item_id),
        )

    def page_items(self, parent: str, owner: str, **paging: Any) -> Page[Item]:
        return page_list(self.items(parent, owner), **paging)
