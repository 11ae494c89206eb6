"""Conversations: a durable list of items that responses read as context and append to."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..paging import Page
from ..runtime import Runtime
from .items import parse_input, store_inline_files, to_messages
from .models import Conversation, Item, ResponseState
from .repository import Repository


class Conversations:
    def __init__(self, repo: Repository, engine: Runtime) -> None:
        self.repo = repo
        self.engine = engine

    async def create(
        self, owner: str, items: list[dict[str, Any]] | None, metadata: dict[str, str] | None
    ) -> Conversation:
        parsed = await self._checked(owner, [], items or [])
        conversation = Conversation(metadata=metadata or {})
        self.repo.put(conversation, "conversation", owner, ResponseState())
        self.repo.add_items(conversation.id, owner, parsed)
        return conversation

    def get(self, owner: str, conversation_id: str) -> Conversation:
        return self.repo.get(Conversation, "conversation", conversation_id, owner, "Conversation")

    def update(self, owner: str, conversation_id: str, metadata: dict[str, str]) -> Conversation:
        conversation = self.get(owner, conversation_id)
        conversation.metadata = metadata
        self.repo.put(conversation, "conversation", owner)
        return conversation

    def delete(self, owner: str, conversation_id: str) -> None:
        self.get(owner, conversation_id)
        self.repo.delete(conversation_id, owner)

    def state(self, conversation_id: str) -> ResponseState:
        return self.repo.private(conversation_id, ResponseState)

    def set_state(self, conversation_id: str, state: ResponseState) -> None:
        self.repo.set_private(conversation_id, state)

    # --- items ---

    async def add_items(
        self, owner: str, conversation_id: str, items: list[dict[str, Any]]
    ) -> list[Item]:
        self.get(owner, conversation_id)
        existing = self.repo.items(conversation_id, owner)
        parsed = await self._checked(owner, existing, items)
        self.repo.add_items(conversation_id, owner, parsed)
        return parsed

    async def _checked(
        self, owner: str, existing: list[Item], raw: list[dict[str, Any]]
    ) -> list[Item]:
        parsed = parse_input(raw)
        await store_inline_files(parsed, self.engine.files, owner)
        taken = {i.id for i in existing}
        if any(i.id in taken for i in parsed):
            raise errors.InvalidRequest("an item with that id is already in the conversation")
        # Function outputs may wait for a later item; only the shape is checked here.
        try:
            to_messages([*existing, *parsed], self.engine.files, owner)
        except errors.InvalidRequest as exc:
            if "No tool output found" not in str(exc):
                raise
        return parsed

    def items(self, owner: str, conversation_id: str, **paging: Any) -> Page[Item]:
        self.get(owner, conversation_id)
        return self.repo.page_items(conversation_id, owner, **paging)

    def item(self, owner: str, conversation_id: str, item_id: str) -> Item:
        self.get(owner, conversation_id)
        return self.repo.item(conversation_id, owner, item_id)

    def delete_item(self, owner: str, conversation_id: str, item_id: str) -> Conversation:
        conversation = self.get(owner, conversation_id)
        self.repo.delete_item(conversation_id, owner, item_id)
        return conversation
