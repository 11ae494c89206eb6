"""JSON documents: one generic collection, used by the faces (Assistants, Responses, E2B).

A collection is one table of documents: ``id``, ``kind``, ``owner``, a tag column (``parent``
for Assistants' objects, which hang below a thread or a run; ``status`` for Responses, which
recovery looks up by status), ``created_at``, ``data`` (the API object's JSON) and ``private``
(what the API never shows). Each face keeps the table it has always had, so that an existing
data folder keeps its objects. A document's items (a response's input, a conversation's
items) live in an ``ItemLists`` table beside it.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, Unpack

from pydantic import BaseModel

from .. import errors
from .records import PageWindow, Store, owned, page, update

M = TypeVar("M", bound=BaseModel)
Tag = Literal["parent", "status"]

ASSISTANT_OBJECTS = """
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
RESPONSE_OBJECTS = """
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
"""
RESPONSE_ITEMS = """
CREATE TABLE IF NOT EXISTS response_items (
    parent TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (parent, id)
);
"""
# E2B's sandboxes (engine/e2b/records.py): documents of the same shape as the Responses'.
E2B_SANDBOXES = RESPONSE_OBJECTS.replace("response_objects", "e2b_sandboxes")
COLLECTIONS: dict[str, tuple[str, Tag]] = {
    "assistant_objects": (ASSISTANT_OBJECTS, "parent"),
    "response_objects": (RESPONSE_OBJECTS, "status"),
    "e2b_sandboxes": (E2B_SANDBOXES, "status"),
}


class Documents:
    """One table of JSON documents (see the module's account)."""

    def __init__(self, store: Store, table: str) -> None:
        schema, self.tag = COLLECTIONS[table]
        self._db = store.db
        self._table = table
        self._db.script(schema)

    def put(
        self,
        obj: Any,
        kind: str,
        owner: str,
        tag: str = "",
        private: BaseModel | None = None,
    ) -> None:
        """Insert ``obj`` (a model with ``id`` and ``created_at``), or replace its document, in
        one statement. A ``status`` tag is replaced with the document, a ``parent`` is not; the
        private document only when one is given."""
        row = {
            "id": obj.id,
            "kind": kind,
            "owner": owner,
            self.tag: tag,
            "created_at": obj.created_at,
            "data": obj.model_dump_json(),
        }
        sets = "data = excluded.data"
        if self.tag == "status":
            sets += ", status = excluded.status"
        if private is not None:
            row["private"] = private.model_dump_json()
            sets += ", private = excluded.private"
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self._db.execute(
            f"INSERT INTO {self._table} ({columns}) VALUES ({marks}) "
            f"ON CONFLICT(id) DO UPDATE SET {sets}",
            row,
        )

    def get(
        self,
        model: type[M],
        kind: str,
        object_id: object,
        owner: str | None,
        missing: errors.NotFound,
        tag: str | None = None,
    ) -> M:
        """The document ``object_id`` of this kind (and tag, when given) if ``owner`` owns it
        (any owner when None); else ``missing``, the same for another tenant's as for none
        (``Store.owned``)."""
        row = owned(self._db, self._table, object_id, owner, missing)
        if row["kind"] != kind or (tag is not None and row[self.tag] != tag):
            raise missing
        return model.model_validate_json(row["data"])

    def private(self, object_id: str, model: type[M]) -> M:
        row = self._db.one(f"SELECT private FROM {self._table} WHERE id = ?", (object_id,))
        return model() if row is None else model.model_validate_json(row["private"])

    def set_private(self, object_id: str, value: BaseModel) -> None:
        update(self._db, self._table, "id", object_id, private=value.model_dump_json())

    def delete(self, object_id: str, owner: str, *, children: bool = False) -> None:
        """Delete a document, and with ``children`` those whose parent it is."""
        if children:
            self._db.execute(
                f"DELETE FROM {self._table} WHERE (id = ? OR parent = ?) AND owner = ?",
                (object_id, object_id, owner),
            )
        else:
            self._db.execute(
                f"DELETE FROM {self._table} WHERE id = ? AND owner = ?", (object_id, owner)
            )

    def delete_orphans(self, parent_prefix: str) -> None:
        """Delete the documents whose parent (an id starting with ``parent_prefix``) is gone."""
        self._db.execute(
            f"DELETE FROM {self._table} WHERE substr(parent, 1, ?) = ? AND parent NOT IN "
            f"(SELECT id FROM {self._table})",
            (len(parent_prefix), parent_prefix),
        )

    def page(
        self,
        model: type[M],
        kind: str,
        owner: str,
        tag: str | None = None,
        **window: Unpack[PageWindow],
    ) -> tuple[list[M], bool]:
        """One page of the documents of a kind (and tag), in creation order (the paging
        arguments checked by the caller: ``paging.check_paging``)."""
        filters: dict[str, Any] = {"kind": kind, "owner": owner}
        if tag is not None:
            filters[self.tag] = tag
        rows, has_more = page(self._db, self._table, filters, **window)
        return [model.model_validate_json(r["data"]) for r in rows], has_more

    def all(self, model: type[M], kind: str, owner: str, tag: str) -> list[M]:
        """Every document of a kind with this tag, oldest first."""
        rows = self._db.all(
            f"SELECT data FROM {self._table} WHERE kind = ? AND owner = ? AND {self.tag} = ? "
            "ORDER BY rowid",
            (kind, owner, tag),
        )
        return [model.model_validate_json(r["data"]) for r in rows]

    def containing(self, kind: str, fragment: str) -> list[tuple[str, str]]:
        """(id, owner) of the documents of ``kind`` whose JSON contains ``fragment``."""
        rows = self._db.all(
            f"SELECT id, owner FROM {self._table} WHERE kind = ? AND instr(data, ?) > 0",
            (kind, fragment),
        )
        return [(r["id"], r["owner"]) for r in rows]

    def tagged(self, kind: str, tags: list[str]) -> list[tuple[str, str]]:
        """(id, owner) of the documents of ``kind`` with one of these tags."""
        marks = ", ".join("?" for _ in tags)
        rows = self._db.all(
            f"SELECT id, owner FROM {self._table} WHERE kind = ? AND {self.tag} IN ({marks})",
            (kind, *tags),
        )
        return [(r["id"], r["owner"]) for r in rows]


class ItemLists:
    """Ordered lists of JSON items, one list per parent document (``response_items``)."""

    def __init__(self, store: Store) -> None:
        self._db = store.db
        self._db.script(RESPONSE_ITEMS)

    def add(self, parent: str, owner: str, items: list[tuple[str, str]]) -> None:
        """Append (id, JSON) items; an item already in the list is replaced and moves last."""
        for item_id, data in items:
            self._db.execute(
                "INSERT OR REPLACE INTO response_items (parent, id, owner, data) "
                "VALUES (?, ?, ?, ?)",
                (parent, item_id, owner, data),
            )

    def newest(self, parent: str, owner: str, limit: int) -> list[str]:
        """The JSON of the newest ``limit`` items, oldest first."""
        rows = self._db.all(
            "SELECT data FROM response_items WHERE parent = ? AND owner = ? ORDER BY rowid DESC "
            "LIMIT ?",
            (parent, owner, limit),
        )
        return [r["data"] for r in reversed(rows)]

    def one(self, parent: str, owner: str, item_id: str) -> str | None:
        row = self._db.one(
            "SELECT data FROM response_items WHERE parent = ? AND owner = ? AND id = ?",
            (parent, owner, item_id),
        )
        return None if row is None else str(row["data"])

    def delete(self, parent: str, owner: str, item_id: str | None = None) -> None:
        """Delete one item of a list, or the whole list."""
        if item_id is None:
            self._db.execute(
                "DELETE FROM response_items WHERE parent = ? AND owner = ?", (parent, owner)
            )
        else:
            self._db.execute(
                "DELETE FROM response_items WHERE parent = ? AND owner = ? AND id = ?",
                (parent, owner, item_id),
            )
