"""Assistants, threads, messages, runs and steps: JSON documents of the store's
``assistant_objects`` collection, each below its parent (a thread, or a run)."""

from __future__ import annotations

from typing import TypeVar, Unpack

from pydantic import BaseModel

from .. import errors
from ..paging import Page, Window, checked
from ..store import Store
from ..store.base import DocumentTable
from ..store.documents import Documents
from .models import Stored

M = TypeVar("M", bound=BaseModel)


class Repository:
    """A JSON document per object; its private document holds what the API never shows."""

    def __init__(self, store: Store) -> None:
        self._docs: DocumentTable = Documents(store, "assistant_objects")

    def put(self, obj: Stored, kind: str, owner: str, parent: str = "") -> None:
        """Insert, or replace the document of, ``obj``: one statement, so never half done."""
        self._docs.put(obj, kind, owner, parent)

    def get(
        self, model: type[M], kind: str, object_id: object, owner: str, parent: str | None = None
    ) -> M:
        missing = errors.NotFound(f"No {kind} found with id '{object_id}'.")
        return self._docs.get(model, kind, object_id, owner, missing, parent)

    def delete(self, kind: str, object_id: str, owner: str) -> None:
        self._docs.delete(object_id, owner, children=True)
        if kind == "thread":  # messages, runs and steps hang below the thread or its runs
            self._docs.delete_orphans("run_")

    def page(
        self,
        model: type[M],
        kind: str,
        owner: str,
        parent: str | None = None,
        **window: Unpack[Window],
    ) -> Page[M]:
        items, has_more = self._docs.page(model, kind, owner, parent, **checked(**window))
        return Page[M].of(items, has_more)

    def all(self, model: type[M], kind: str, owner: str, parent: str) -> list[M]:
        return self._docs.all(model, kind, owner, parent)

    def ids_where(self, kind: str, data_contains: str) -> list[tuple[str, str]]:
        """(id, owner) of objects of ``kind`` whose JSON contains a fragment; for recovery."""
        return self._docs.containing(kind, data_contains)

    def get_private(self, object_id: str, model: type[M]) -> M:
        return self._docs.private(object_id, model)

    def set_private(self, object_id: str, value: BaseModel) -> None:
        self._docs.set_private(object_id, value)
