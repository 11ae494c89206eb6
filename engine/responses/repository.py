"""Responses, conversations and their items: JSON documents of the store's
``response_objects`` collection (tagged by status, for recovery), and the items of a
response's input or of a conversation, in the order they were added (``response_items``).
Ownership is checked once, by the store."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from .. import errors
from ..paging import Page, page_list
from ..store import Store
from ..store.base import DocumentTable, ItemTable
from ..store.documents import Documents, ItemLists
from .models import Item

M = TypeVar("M", bound=BaseModel)
_ITEM: TypeAdapter[Item] = TypeAdapter(Item)
MAX_LISTED_ITEMS = 10_000


class Repository:
    def __init__(self, store: Store) -> None:
        self._docs: DocumentTable = Documents(store, "response_objects")
        self._items: ItemTable = ItemLists(store)

    def put(self, obj: Any, kind: str, owner: str, private: BaseModel | None = None) -> None:
        self._docs.put(obj, kind, owner, str(getattr(obj, "status", "")), private)

    def get(self, model: type[M], kind: str, object_id: object, owner: str, what: str) -> M:
        missing = errors.NotFound(f"{what} with id '{object_id}' not found.")
        return self._docs.get(model, kind, object_id, owner, missing)

    def private(self, object_id: str, model: type[M]) -> M:
        return self._docs.private(object_id, model)

    def set_private(self, object_id: str, value: BaseModel) -> None:
        self._docs.set_private(object_id, value)

    def delete(self, object_id: str, owner: str) -> None:
        self._docs.delete(object_id, owner)
        self._items.delete(object_id, owner)

    def active(self, kind: str, statuses: list[str]) -> list[tuple[str, str]]:
        """(id, owner) of the objects of ``kind`` in one of ``statuses``; for recovery."""
        return self._docs.tagged(kind, statuses)

    # --- items ---

    def add_items(self, parent: str, owner: str, items: list[Item]) -> None:
        self._items.add(parent, owner, [(item.id, item.model_dump_json()) for item in items])

    def items(self, parent: str, owner: str) -> list[Item]:
        """The newest ``MAX_LISTED_ITEMS`` items, oldest first."""
        return [
            _ITEM.validate_json(data)
            for data in self._items.newest(parent, owner, MAX_LISTED_ITEMS)
        ]

    def item(self, parent: str, owner: str, item_id: str) -> Item:
        data = self._items.one(parent, owner, item_id)
        if data is None:
            raise errors.NotFound(f"Item with id '{item_id}' not found.")
        return _ITEM.validate_json(data)

    def delete_item(self, parent: str, owner: str, item_id: str) -> None:
        self.item(parent, owner, item_id)
        self._items.delete(parent, owner, item_id)

    def page_items(self, parent: str, owner: str, **paging: Any) -> Page[Item]:
        return page_list(self.items(parent, owner), **paging)
