"""Assistants v2 routes, as the official SDK's ``client.beta.*`` calls them."""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ..assistants import requests
from ..assistants.models import Assistant, Message, Run, RunStep, Thread
from ..assistants.service import AssistantsService, Event
from ..faces import RUN_STOP_EVENTS, Start, resume_start, run_start, thread_run_start
from ..paging import Deleted, Page
from .auth import Tenant
from .deps import EngineDep, PagingDep, PollAfter
from .streaming import SSE_RESPONSE, event_stream, queued_events

router = APIRouter(prefix="/v1", tags=["assistants"])


# --- assistants ---


@router.post("/assistants", response_model=Assistant)
async def create_assistant(
    body: requests.AssistantBody, engine: EngineDep, tenant: Tenant
) -> Assistant:
    return await engine.assistants.create(owner=tenant, **dict(body))


@router.get("/assistants", response_model=Page[Assistant])
async def list_assistants(paging: PagingDep, engine: EngineDep, tenant: Tenant) -> Page[Assistant]:
    return await engine.assistants.list(owner=tenant, **paging.window())


@router.get("/assistants/{assistant_id}", response_model=Assistant)
async def get_assistant(assistant_id: str, engine: EngineDep, tenant: Tenant) -> Assistant:
    return await engine.assistants.retrieve(assistant_id, owner=tenant)


@router.post("/assistants/{assistant_id}", response_model=Assistant)
async def update_assistant(
    assistant_id: str, body: requests.AssistantBody, engine: EngineDep, tenant: Tenant
) -> Assistant:
    fields = body.model_dump(exclude_unset=True)
    return await engine.assistants.update(assistant_id, owner=tenant, **fields)


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(assistant_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    return await engine.assistants.delete(assistant_id, owner=tenant)


# --- threads ---


@router.post("/threads", response_model=Thread)
async def create_thread(
    engine: EngineDep, tenant: Tenant, body: requests.ThreadBody | None = None
) -> Thread:
    return await engine.threads.create(owner=tenant, **dict(body or requests.ThreadBody()))


# Declared before /threads/{thread_id}, which would otherwise take "runs" for a thread id.
@router.post("/threads/runs", response_model=Run, responses=SSE_RESPONSE)
async def create_thread_and_run(
    body: requests.ThreadRunBody, engine: EngineDep, tenant: Tenant
) -> Any:
    svc = engine.assistants.service
    return await _respond(svc, body.stream, thread_run_start(svc, tenant, body))


@router.get("/threads", response_model=Page[Thread])
async def list_threads(paging: PagingDep, engine: EngineDep, tenant: Tenant) -> Page[Thread]:
    """An engine extension (OpenAI has no public thread list): the caller's threads, so that a
    client such as the playground can offer them again."""
    return await engine.threads.list(owner=tenant, **paging.window())


@router.get("/threads/{thread_id}", response_model=Thread)
async def get_thread(thread_id: str, engine: EngineDep, tenant: Tenant) -> Thread:
    return await engine.threads.retrieve(thread_id, owner=tenant)


@router.post("/threads/{thread_id}", response_model=Thread)
async def update_thread(
    thread_id: str, body: requests.ThreadBody, engine: EngineDep, tenant: Tenant
) -> Thread:
    fields = body.model_dump(exclude_unset=True, exclude={"messages"})
    return await engine.threads.update(thread_id, owner=tenant, **fields)


@router.delete("/threads/{thread_id}")
async def delete_thread(thread_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    return await engine.threads.delete(thread_id, owner=tenant)


# --- messages ---


@router.post("/threads/{thread_id}/messages", response_model=Message)
async def create_message(
    thread_id: str, body: requests.MessageBody, engine: EngineDep, tenant: Tenant
) -> Message:
    return await engine.threads.messages.create(thread_id, owner=tenant, **dict(body))


@router.get("/threads/{thread_id}/messages", response_model=Page[Message])
async def list_messages(
    thread_id: str,
    paging: PagingDep,
    engine: EngineDep,
    tenant: Tenant,
    run_id: str | None = None,
) -> Page[Message]:
    return await engine.threads.messages.list(
        thread_id, owner=tenant, run_id=run_id, **paging.window()
    )


@router.get("/threads/{thread_id}/messages/{message_id}", response_model=Message)
async def get_message(
    thread_id: str, message_id: str, engine: EngineDep, tenant: Tenant
) -> Message:
    return await engine.threads.messages.retrieve(message_id, thread_id=thread_id, owner=tenant)


@router.post("/threads/{thread_id}/messages/{message_id}", response_model=Message)
async def update_message(
    thread_id: str, message_id: str, body: requests.MetadataBody, engine: EngineDep, tenant: Tenant
) -> Message:
    return await engine.threads.messages.update(
        message_id, thread_id=thread_id, owner=tenant, **dict(body)
    )


# --- runs ---


async def _respond(svc: AssistantsService, stream: bool, start: Start) -> Any:
    if not stream:
        return await start(None)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    run = await start(queue)
    stop = functools.partial(svc.unlisten, run.id, queue)
    return event_stream(queued_events(queue, RUN_STOP_EVENTS, done=True, stop=stop))


@router.post("/threads/{thread_id}/runs", response_model=Run, responses=SSE_RESPONSE)
async def create_run(
    thread_id: str, body: requests.RunBody, engine: EngineDep, tenant: Tenant
) -> Any:
    svc = engine.assistants.service
    return await _respond(svc, body.stream, run_start(svc, tenant, thread_id, body))


@router.get("/threads/{thread_id}/runs", response_model=Page[Run])
async def list_runs(
    thread_id: str, paging: PagingDep, engine: EngineDep, tenant: Tenant
) -> Page[Run]:
    return await engine.threads.runs.list(thread_id, owner=tenant, **paging.window())


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run, dependencies=[PollAfter])
async def get_run(thread_id: str, run_id: str, engine: EngineDep, tenant: Tenant) -> Run:
    return await engine.threads.runs.retrieve(run_id, thread_id=thread_id, owner=tenant)


@router.post("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def update_run(
    thread_id: str, run_id: str, body: requests.MetadataBody, engine: EngineDep, tenant: Tenant
) -> Run:
    return await engine.threads.runs.update(run_id, thread_id=thread_id, owner=tenant, **dict(body))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=Run)
async def cancel_run(thread_id: str, run_id: str, engine: EngineDep, tenant: Tenant) -> Run:
    return await engine.threads.runs.cancel(run_id, thread_id=thread_id, owner=tenant)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
    response_model=Run,
    responses=SSE_RESPONSE,
)
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: requests.ToolOutputsBody, engine: EngineDep, tenant: Tenant
) -> Any:
    svc = engine.assistants.service
    return await _respond(svc, body.stream, resume_start(svc, tenant, thread_id, run_id, body))


IncludeDep = Annotated[
    list[Literal["step_details.tool_calls[*].file_search.results[*].content"]],
    Query(alias="include[]", description="Add file_search results' content to the steps."),
]


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=Page[RunStep])
async def list_steps(
    thread_id: str,
    run_id: str,
    paging: PagingDep,
    engine: EngineDep,
    tenant: Tenant,
    include: IncludeDep = [],  # noqa: B006 (FastAPI copies defaults)
) -> Page[RunStep]:
    return await engine.threads.runs.steps.list(
        run_id, thread_id=thread_id, owner=tenant, include=include, **paging.window()
    )


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=RunStep)
async def get_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    engine: EngineDep,
    tenant: Tenant,
    include: IncludeDep = [],  # noqa: B006 (FastAPI copies defaults)
) -> RunStep:
    return await engine.threads.runs.steps.retrieve(
        step_id, thread_id=thread_id, run_id=run_id, owner=tenant, include=include
    )
