"""The Responses API and Conversations, as the official SDK's ``client.responses`` and
``client.conversations`` call them (Azure: ``/openai/v1/...`` and ``/openai/responses``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..paging import Deleted, Page
from ..responses.events import TERMINAL_EVENTS, Event
from ..responses.models import (
    Conversation,
    CreateConversation,
    CreateItems,
    CreateResponse,
    Includable,
    Item,
    UpdateConversation,
)
from ..responses.models import Response as ResponseModel
from .auth import Tenant
from .deps import EngineDep, PagingDep, PollAfter
from .streaming import SSE_RESPONSE, event_stream, queued_events

router = APIRouter(prefix="/v1", tags=["responses"])


def include_of(
    include: Annotated[list[Includable] | None, Query()] = None,
    brackets: Annotated[list[Includable] | None, Query(alias="include[]")] = None,
) -> set[str]:
    """``include`` from the query; the SDK sends it as ``include[]=...``."""
    return {*(include or []), *(brackets or [])}


Include = Annotated[set[str], Depends(include_of)]


def _json(shown: ResponseModel) -> dict[str, Any]:
    """A response as the API writes it: without ``store``, which OpenAI's leaves out."""
    return shown.model_dump(mode="json", exclude={"store"})


def _items(page: Page[Item]) -> dict[str, Any]:
    """A page of items as the API writes it: no id is ``""``, not null."""
    data = page.model_dump(mode="json")
    data["first_id"], data["last_id"] = data["first_id"] or "", data["last_id"] or ""
    return data


# --- responses ---


@router.post("/responses", responses=SSE_RESPONSE)
async def create_response(body: CreateResponse, engine: EngineDep, tenant: Tenant) -> Any:
    svc = engine.responses.service
    if not body.stream:
        response = await svc.create(tenant, body)
        return response.shown(set(body.include))
    queue: asyncio.Queue[Event] = asyncio.Queue()
    await svc.create(tenant, body, listener=queue)
    return event_stream(queued_events(queue, TERMINAL_EVENTS))


@router.get("/responses/{response_id}", dependencies=[PollAfter])
async def get_response(
    response_id: str, engine: EngineDep, tenant: Tenant, include: Include
) -> dict[str, Any]:
    return _json(await engine.responses.retrieve(response_id, owner=tenant, include=include))


@router.delete("/responses/{response_id}", response_model=Deleted)
async def delete_response(response_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    return await engine.responses.delete(response_id, owner=tenant)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: str, engine: EngineDep, tenant: Tenant) -> dict[str, Any]:
    return _json(await engine.responses.cancel(response_id, owner=tenant))


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str, paging: PagingDep, engine: EngineDep, tenant: Tenant, include: Include
) -> dict[str, Any]:
    return _items(
        await engine.responses.input_items.list(
            response_id, owner=tenant, include=include, **paging.window()
        )
    )


# --- conversations ---


@router.post("/conversations", response_model=Conversation)
async def create_conversation(
    engine: EngineDep, tenant: Tenant, body: CreateConversation | None = None
) -> Conversation:
    return await engine.conversations.create(owner=tenant, **dict(body or CreateConversation()))


@router.get("/conversations/{conversation_id}", response_model=Conversation)
async def get_conversation(conversation_id: str, engine: EngineDep, tenant: Tenant) -> Conversation:
    return await engine.conversations.retrieve(conversation_id, owner=tenant)


@router.post("/conversations/{conversation_id}", response_model=Conversation)
async def update_conversation(
    conversation_id: str, body: UpdateConversation, engine: EngineDep, tenant: Tenant
) -> Conversation:
    return await engine.conversations.update(conversation_id, owner=tenant, **dict(body))


@router.delete("/conversations/{conversation_id}", response_model=Deleted)
async def delete_conversation(conversation_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    return await engine.conversations.delete(conversation_id, owner=tenant)


@router.get("/conversations/{conversation_id}/items")
async def list_conversation_items(
    conversation_id: str, paging: PagingDep, engine: EngineDep, tenant: Tenant, include: Include
) -> dict[str, Any]:
    return _items(
        await engine.conversations.items.list(
            conversation_id, owner=tenant, include=include, **paging.window()
        )
    )


@router.post("/conversations/{conversation_id}/items")
async def create_conversation_items(
    conversation_id: str, body: CreateItems, engine: EngineDep, tenant: Tenant, include: Include
) -> dict[str, Any]:
    return _items(
        await engine.conversations.items.create(
            conversation_id, owner=tenant, include=include, **dict(body)
        )
    )


@router.get("/conversations/{conversation_id}/items/{item_id}")
async def get_conversation_item(
    conversation_id: str, item_id: str, engine: EngineDep, tenant: Tenant, include: Include
) -> dict[str, Any]:
    item = await engine.conversations.items.retrieve(
        item_id, conversation_id=conversation_id, owner=tenant, include=include
    )
    return item.model_dump(mode="json")


@router.delete("/conversations/{conversation_id}/items/{item_id}", response_model=Conversation)
async def delete_conversation_item(
    conversation_id: str, item_id: str, engine: EngineDep, tenant: Tenant
) -> Conversation:
    return await engine.conversations.items.delete(
        item_id, conversation_id=conversation_id, owner=tenant
    )
