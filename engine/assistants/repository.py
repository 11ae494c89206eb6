"""Assistants, threads, messages, runs and steps, persisted in the engine's SQLite store."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from .. import errors
from ..paging import Page, page_query
from ..store import Store
from .models import Stored

M = TypeVar("M", bound=BaseModel)

SCHEMA = """
CREATE TABLE IF NOT EXISTS assistant_objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS assistant_objects_kind ON assistant_objects (kind, owner, parent);
"""


class Repository:
    """One table, a JSON document per object; ``private`` holds what the API never shows."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.execute_script(SCHEMA)

    def put(self, obj: Stored, kind: str, owner: str, parent: str = "") -> None:
        """Insert, or replace the document of, ``obj``: one statement, so never half done."""
        self._store.execute(
            "INSERT INTO assistant_objects (id, kind, owner, parent, created_at, data) "
            "VALUES (:id, :kind, :owner, :parent, :created_at, :data) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            {
                "id": obj.id,
                "kind": kind,
                "owner": owner,
                "parent": parent,
                "created_at": obj.created_at,
                "data": obj.model_dump_json(),
            },
        )

    def get(
        self, model: type[M], kind: str, object_id: object, owner: str, parent: str | None = None
    ) -> M:
        missing = errors.NotFound(f"No {kind} found with id '{object_id}'.")
        row = self._store.owned("assistant_objects", object_id, owner, missing)
        if row["kind"] != kind or (parent is not None and row["parent"] != parent):
            raise missing
        return model.model_validate_json(row["data"])

    def delete(self, kind: str, object_id: str, owner: str) -> None:
        self._store.execute(
            "DELETE FROM assistant_objects WHERE (id = ? OR parent = ?) AND owner = ?",
            (object_id, object_id, owner),
        )
        if kind == "thread":  # messages, runs and steps hang below the thread or its runs
            self._store.execute(
                "DELETE FROM assistant_objects WHERE parent LIKE 'run_%' AND parent NOT IN "
                "(SELECT id FROM assistant_objects)"
            )

    def page(
        self, model: type[M], kind: str, owner: str, parent: str | None = None, **paging: Any
    ) -> Page[M]:
        filters: dict[str, Any] = {"kind": kind, "owner": owner}
        if parent is not None:
            filters["parent"] = parent
        rows, has_more = page_query(self._store, "assistant_objects", filters, **paging)
        return Page[M].of([model.model_validate_json(r["data"]) for r in rows], has_more)

    def all(self, model: type[M], kind: str, owner: str, parent: str) -> list[M]:
        rows = self._store.all(
            "SELECT data FROM assistant_objects WHERE kind = ? AND owner = ? AND parent = ? "
            "ORDER BY rowid",
            (kind, owner, parent),
        )
        return [model.model_validate_json(r["data"]) for r in rows]

    def ids_where(self, kind: str, data_contains: str) -> list[tuple[str, str]]:
        """(id, owner) of objects of ``kind`` whose JSON contains a fragment; for recovery."""
        rows = self._store.all(
            "SELECT id, owner FROM assistant_objects WHERE kind = ? AND instr(data, ?) > 0",
            (kind, data_contains),
        )
        return [(r["id"], r["owner"]) for r in rows]

    def get_private(self, object_id: str, model: type[M]) -> M:
        row = self._store.one("SELECT private FROM assistant_objects WHERE id = ?", (object_id,))
        return model() if row is None else model.model_validate_json(row["private"])

    def set_private(self, object_id: str, value: BaseModel) -> None:
        self._store.update("assistant_objects", "id", object_id, private=value.model_dump_json())
