"""The Responses API and Conversations, as the official SDK's ``client.responses`` and
``client.conversations`` call them (Azure: ``/openai/v1/...`` and ``/openai/responses``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import ServerSentEvent

from ..paging import Deleted, Page
from ..responses import ResponsesService
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
from .auth import Tenant
from .deps import EngineDep, PagingDep
from .streaming import SSE_RESPONSE, Events, event_stream

router = APIRouter(prefix="/v1", tags=["responses"])
OUTPUTS = "code_interpreter_call.outputs"


async def service(engine: EngineDep) -> ResponsesService:
    return engine.responses.service


Service = Annotated[ResponsesService, Depends(service)]


def include_of(
    include: Annotated[list[Includable] | None, Query()] = None,
    brackets: Annotated[list[Includable] | None, Query(alias="include[]")] = None,
) -> set[str]:
    """``include`` from the query; the SDK sends it as ``include[]=...``."""
    return {*(include or []), *(brackets or [])}


Include = Annotated[set[str], Depends(include_of)]


def _items(page: Page[Item], include: set[str]) -> dict[str, Any]:
    data = page.model_dump(mode="json")
    data["first_id"], data["last_id"] = data["first_id"] or "", data["last_id"] or ""
    if OUTPUTS not in include:
        for item in data["data"]:
            if item["type"] == "code_interpreter_call":
                item["outputs"] = None
    return data


# --- responses ---


@router.post("/responses", responses=SSE_RESPONSE)
async def create_response(body: CreateResponse, svc: Service, tenant: Tenant) -> Any:
    if not body.stream:
        response = await svc.create(tenant, body)
        return response.shown(set(body.include))
    queue: asyncio.Queue[Event] = asyncio.Queue()
    await svc.create(tenant, body, listener=queue)
    return event_stream(_events(queue))


async def _events(queue: asyncio.Queue[Event]) -> Events:
    """Each event named by its type; the stream ends with the response's last event."""
    while True:
        event = await queue.get()
        yield ServerSentEvent(event=event.name, data=event.data)
        if event.name in TERMINAL_EVENTS:
            break


@router.get("/responses/{response_id}")
async def get_response(
    response_id: str, response: Response, svc: Service, tenant: Tenant, include: Include
) -> dict[str, Any]:
    found, created_with = svc.get(tenant, response_id)
    response.headers["openai-poll-after-ms"] = "200"
    return found.shown(include | created_with)


@router.delete("/responses/{response_id}", response_model=Deleted)
async def delete_response(response_id: str, svc: Service, tenant: Tenant) -> Deleted:
    await svc.delete(tenant, response_id)
    return Deleted(id=response_id, object="response.deleted")


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: str, svc: Service, tenant: Tenant) -> dict[str, Any]:
    cancelled = await svc.cancel(tenant, response_id)
    return cancelled.shown(set())


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str, paging: PagingDep, svc: Service, tenant: Tenant, include: Include
) -> dict[str, Any]:
    page = svc.input_items(tenant, response_id, **paging.window())
    return _items(page, include)


# --- conversations ---


@router.post("/conversations", response_model=Conversation)
async def create_conversation(
    svc: Service, tenant: Tenant, body: CreateConversation | None = None
) -> Conversation:
    body = body or CreateConversation()
    return await svc.conversations.create(tenant, body.items, body.metadata)


@router.get("/conversations/{conversation_id}", response_model=Conversation)
async def get_conversation(conversation_id: str, svc: Service, tenant: Tenant) -> Conversation:
    return svc.conversations.get(tenant, conversation_id)


@router.post("/conversations/{conversation_id}", response_model=Conversation)
async def update_conversation(
    conversation_id: str, body: UpdateConversation, svc: Service, tenant: Tenant
) -> Conversation:
    return svc.conversations.update(tenant, conversation_id, body.metadata)


@router.delete("/conversations/{conversation_id}", response_model=Deleted)
async def delete_conversation(conversation_id: str, svc: Service, tenant: Tenant) -> Deleted:
    svc.conversations.delete(tenant, conversation_id)
    return Deleted(id=conversation_id, object="conversation.deleted")


@router.get("/conversations/{conversation_id}/items")
async def list_conversation_items(
    conversation_id: str, paging: PagingDep, svc: Service, tenant: Tenant, include: Include
) -> dict[str, Any]:
    return _items(svc.conversations.items(tenant, conversation_id, **paging.window()), include)


@router.post("/conversations/{conversation_id}/items")
async def create_conversation_items(
    conversation_id: str, body: CreateItems, svc: Service, tenant: Tenant, include: Include
) -> dict[str, Any]:
    added = await svc.conversations.add_items(tenant, conversation_id, body.items)
    return _items(Page[Item].of(added, False), include)


@router.get("/conversations/{conversation_id}/items/{item_id}")
async def get_conversation_item(
    conversation_id: str, item_id: str, svc: Service, tenant: Tenant, include: Include
) -> dict[str, Any]:
    item = svc.conversations.item(tenant, conversation_id, item_id)
    return _items(Page[Item].of([item], False), include)["data"][0]  # type: ignore[no-any-return]


@router.delete("/conversations/{conversation_id}/items/{item_id}", response_model=Conversation)
async def delete_conversation_item(
    conversation_id: str, item_id: str, svc: Service, tenant: Tenant
) -> Conversation:
    return svc.conversations.delete_item(tenant, conversation_id, item_id)
