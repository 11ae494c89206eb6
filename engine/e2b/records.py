"""What E2B knows of a sandbox beyond the session it is (template, metadata, access token,
contexts), kept in the store so that a sandbox is found again after the server restarts (its
session is re-adopted then), and held in memory with its running commands while it is used."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from pydantic import BaseModel

from .. import errors
from ..store import Store
from ..store.documents import Documents
from .commands import Commands

KIND = "sandbox"


@dataclass
class Context:
    id: str
    session_id: str
    cwd: str
    language: str = "python"


@dataclass
class E2BSandbox:
    """What E2B knows of a sandbox beyond the session it is."""

    id: str
    owner: str
    template: str
    metadata: dict[str, str]
    env_vars: dict[str, str]
    access_token: str
    started_at: float
    contexts: dict[str, Context] = field(default_factory=dict)
    commands: Commands = field(default_factory=Commands)
    """Running commands: they end with the server (their output streams do)."""


class ContextDoc(BaseModel):
    id: str
    session_id: str
    cwd: str
    language: str = "python"


class SandboxDoc(BaseModel):
    """An E2BSandbox as stored."""

    id: str
    owner: str
    created_at: int
    template: str
    metadata: dict[str, str]
    env_vars: dict[str, str]
    access_token: str
    started_at: float
    contexts: list[ContextDoc]

    @classmethod
    def of(cls, record: E2BSandbox) -> SandboxDoc:
        contexts = [ContextDoc(**vars(c)) for c in record.contexts.values()]
        return cls(
            id=record.id,
            owner=record.owner,
            created_at=int(record.started_at),
            template=record.template,
            metadata=record.metadata,
            env_vars=record.env_vars,
            access_token=record.access_token,
            started_at=record.started_at,
            contexts=contexts,
        )

    def record(self) -> E2BSandbox:
        return E2BSandbox(
            id=self.id,
            owner=self.owner,
            template=self.template,
            metadata=self.metadata,
            env_vars=self.env_vars,
            access_token=self.access_token,
            started_at=self.started_at,
            contexts={c.id: Context(**c.model_dump()) for c in self.contexts},
        )


class SandboxRecords:
    """E2B sandboxes: in memory while used, in the store always."""

    def __init__(self, store: Store) -> None:
        self._docs = Documents(store, "e2b_sandboxes")
        self._loaded: dict[str, E2BSandbox] = {}

    def get(self, sandbox_id: str) -> E2BSandbox | None:
        if (record := self._loaded.get(sandbox_id)) is not None:
            return record
        try:
            doc = self._docs.get(SandboxDoc, KIND, sandbox_id, None, errors.NotFound(sandbox_id))
        except errors.NotFound:
            return None
        record = self._loaded[sandbox_id] = doc.record()
        return record

    def owned_by(self, owner: str) -> builtins.list[E2BSandbox]:
        docs = self._docs.all(SandboxDoc, KIND, owner, "")
        return [r for d in docs if (r := self.get(d.id)) is not None]

    def loaded(self) -> builtins.list[E2BSandbox]:
        return list(self._loaded.values())

    def save(self, record: E2BSandbox) -> None:
        self._docs.put(SandboxDoc.of(record), KIND, record.owner)
        self._loaded[record.id] = record

    def drop(self, record: E2BSandbox) -> None:
        self._docs.delete(record.id, record.owner)
        self._loaded.pop(record.id, None)
