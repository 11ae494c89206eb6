"""What E2B knows of a sandbox beyond the session it is (template, metadata, access token,
contexts), kept in the store so that a sandbox is found again after the server restarts (its
session is re-adopted then), and held in memory with its running commands while it is used."""

from __future__ import annotations

import builtins
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import errors
from ..store import Store
from ..store.documents import Documents
from .commands import Commands

KIND = "sandbox"


class Context(BaseModel):
    id: str
    session_id: str
    cwd: str
    language: str = "python"


class E2BSandbox(BaseModel):
    """What E2B knows of a sandbox beyond the session it is; stored as a document."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    owner: str
    template: str
    metadata: dict[str, str]
    env_vars: dict[str, str]
    access_token: str
    created_at: int
    started_at: float
    network_policy: dict[str, Any] | None = None
    """The egress policy its sessions (its contexts' too) start with."""
    contexts: dict[str, Context] = Field(default_factory=dict)
    commands: Commands = Field(default_factory=Commands, exclude=True)
    """Running commands: not stored, their output streams end with the server."""


class SandboxRecords:
    """E2B sandboxes: in memory while used, in the store always."""

    def __init__(self, store: Store) -> None:
        self._docs = Documents(store, "e2b_sandboxes")
        self._loaded: dict[str, E2BSandbox] = {}

    def get(self, sandbox_id: str) -> E2BSandbox | None:
        if (record := self._loaded.get(sandbox_id)) is not None:
            return record
        try:
            record = self._docs.get(E2BSandbox, KIND, sandbox_id, None, errors.NotFound(sandbox_id))
        except errors.NotFound:
            return None
        self._loaded[sandbox_id] = record
        return record

    def owned_by(self, owner: str) -> builtins.list[E2BSandbox]:
        docs = self._docs.all(E2BSandbox, KIND, owner, "")
        return [r for d in docs if (r := self.get(d.id)) is not None]

    def loaded(self) -> builtins.list[E2BSandbox]:
        return list(self._loaded.values())

    def save(self, record: E2BSandbox) -> None:
        self._docs.put(record, KIND, record.owner)
        self._loaded[record.id] = record

    def drop(self, record: E2BSandbox) -> None:
        self._docs.delete(record.id, record.owner)
        self._loaded.pop(record.id, None)
