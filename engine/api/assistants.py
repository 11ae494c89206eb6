"""Assistants v2 routes, as the official SDK's ``client.beta.*`` calls them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import ServerSentEvent
from pydantic import Field

from ..assistants import file_search_run
from ..assistants.models import Assistant, Message, Run, RunStep, Thread
from ..assistants.requests import (
    AssistantBody,
    Body,
    MessageBody,
    MetadataBody,
    RunBody,
    ThreadBody,
)
from ..assistants.service import AssistantsService, Event
from ..faces import RUN_STOP_EVENTS
from ..paging import Deleted, Page
from .auth import Tenant
from .deps import EngineDep, PagingDep
from .streaming import DONE, SSE_RESPONSE, Events, event_stream

router = APIRouter(prefix="/v1", tags=["assistants"])


async def service(engine: EngineDep) -> AssistantsService:
    return engine.assistants.service


Service = Annotated[AssistantsService, Depends(service)]


class ThreadRunBody(RunBody):
    thread: ThreadBody | None = None


class ToolOutput(Body):
    tool_call_id: str
    output: str = ""


class ToolOutputsBody(Body):
    tool_outputs: list[ToolOutput] = Field(max_length=128)
    stream: bool = False


# --- assistants ---


@router.post("/assistants", response_model=Assistant)
async def create_assistant(body: AssistantBody, engine: EngineDep, tenant: Tenant) -> Assistant:
    return await engine.assistants.create(owner=tenant, **dict(body))


@router.get("/assistants", response_model=Page[Assistant])
async def list_assistants(paging: PagingDep, svc: Service, tenant: Tenant) -> Page[Assistant]:
    return svc.list_assistants(tenant, **paging.window())


@router.get("/assistants/{assistant_id}", response_model=Assistant)
async def get_assistant(assistant_id: str, svc: Service, tenant: Tenant) -> Assistant:
    return svc.get_assistant(tenant, assistant_id)


@router.post("/assistants/{assistant_id}", response_model=Assistant)
async def update_assistant(
    assistant_id: str, body: AssistantBody, svc: Service, tenant: Tenant
) -> Assistant:
    return svc.update_assistant(tenant, assistant_id, **body.model_dump(exclude_unset=True))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(assistant_id: str, svc: Service, tenant: Tenant) -> Deleted:
    svc.delete_assistant(tenant, assistant_id)
    return Deleted(id=assistant_id, object="assistant.deleted")


# --- threads ---


@router.post("/threads", response_model=Thread)
async def create_thread(
    engine: EngineDep, tenant: Tenant, body: ThreadBody | None = None
) -> Thread:
    return await engine.threads.create(owner=tenant, **dict(body or ThreadBody()))


# Declared before /threads/{thread_id}, which would otherwise take "runs" for a thread id.
@router.post("/threads/runs", response_model=Run, responses=SSE_RESPONSE)
async def create_thread_and_run(body: ThreadRunBody, svc: Service, tenant: Tenant) -> Any:
    thread_body = body.thread or ThreadBody()
    svc.get_assistant(tenant, body.assistant_id)  # before a thread is made for nothing
    thread = svc.create_thread(
        tenant,
        [m.model_dump(exclude_none=True) for m in thread_body.messages or []],
        thread_body.metadata,
        thread_body.tool_resources,
    )
    return await _respond(
        svc,
        body.stream,
        lambda q: svc.create_run(
            tenant, thread.id, body.assistant_id, listener=q, **body.run_fields()
        ),
    )


@router.get("/threads", response_model=Page[Thread])
async def list_threads(paging: PagingDep, svc: Service, tenant: Tenant) -> Page[Thread]:
    """An engine extension (OpenAI has no public thread list): the caller's threads, so that a
    client such as the playground can offer them again."""
    return svc.list_threads(tenant, **paging.window())


@router.get("/threads/{thread_id}", response_model=Thread)
async def get_thread(thread_id: str, svc: Service, tenant: Tenant) -> Thread:
    return svc.get_thread(tenant, thread_id)


@router.post("/threads/{thread_id}", response_model=Thread)
async def update_thread(thread_id: str, body: ThreadBody, svc: Service, tenant: Tenant) -> Thread:
    return svc.update_thread(
        tenant, thread_id, **body.model_dump(exclude_unset=True, exclude={"messages"})
    )


@router.delete("/threads/{thread_id}")
async def delete_thread(thread_id: str, svc: Service, tenant: Tenant) -> Deleted:
    await svc.delete_thread(tenant, thread_id)
    return Deleted(id=thread_id, object="thread.deleted")


# --- messages ---


@router.post("/threads/{thread_id}/messages", response_model=Message)
async def create_message(
    thread_id: str, body: MessageBody, engine: EngineDep, tenant: Tenant
) -> Message:
    return await engine.threads.messages.create(thread_id, owner=tenant, **dict(body))


@router.get("/threads/{thread_id}/messages", response_model=Page[Message])
async def list_messages(
    thread_id: str, paging: PagingDep, svc: Service, tenant: Tenant, run_id: str | None = None
) -> Page[Message]:
    return svc.list_messages(tenant, thread_id, run_id, **paging.window())


@router.get("/threads/{thread_id}/messages/{message_id}", response_model=Message)
async def get_message(thread_id: str, message_id: str, svc: Service, tenant: Tenant) -> Message:
    return svc.get_message(tenant, thread_id, message_id)


@router.post("/threads/{thread_id}/messages/{message_id}", response_model=Message)
async def update_message(
    thread_id: str, message_id: str, body: MetadataBody, svc: Service, tenant: Tenant
) -> Message:
    return svc.update_message(tenant, thread_id, message_id, body.metadata)


# --- runs ---


async def _respond(
    svc: AssistantsService,
    stream: bool,
    start: Callable[[asyncio.Queue[Event] | None], Awaitable[Run]],
) -> Any:
    if not stream:
        return await start(None)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    run = await start(queue)
    return event_stream(_events(queue, lambda: svc.unlisten(run.id, queue)))


async def _events(queue: asyncio.Queue[Event], stop: Callable[[], None]) -> Events:
    """``event: thread.run.created`` ... up to the run's last state, then ``data: [DONE]``."""
    try:
        while True:
            event, data = await queue.get()
            yield ServerSentEvent(event=event, data=data)
            if event in RUN_STOP_EVENTS:
                break
        yield DONE
    finally:  # also when the client goes away mid-stream
        stop()


@router.post("/threads/{thread_id}/runs", response_model=Run, responses=SSE_RESPONSE)
async def create_run(thread_id: str, body: RunBody, svc: Service, tenant: Tenant) -> Any:
    return await _respond(
        svc,
        body.stream,
        lambda q: svc.create_run(
            tenant, thread_id, body.assistant_id, listener=q, **body.run_fields()
        ),
    )


@router.get("/threads/{thread_id}/runs", response_model=Page[Run])
async def list_runs(thread_id: str, paging: PagingDep, svc: Service, tenant: Tenant) -> Page[Run]:
    return svc.list_runs(tenant, thread_id, **paging.window())


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def get_run(
    thread_id: str, run_id: str, response: Response, svc: Service, tenant: Tenant
) -> Run:
    response.headers["openai-poll-after-ms"] = "200"  # the SDK's create_and_poll obeys this
    return svc.get_run(tenant, thread_id, run_id)


@router.post("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def update_run(
    thread_id: str, run_id: str, body: MetadataBody, svc: Service, tenant: Tenant
) -> Run:
    return svc.update_run(tenant, thread_id, run_id, body.metadata)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=Run)
async def cancel_run(thread_id: str, run_id: str, svc: Service, tenant: Tenant) -> Run:
    return await svc.cancel_run(tenant, thread_id, run_id)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
    response_model=Run,
    responses=SSE_RESPONSE,
)
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: ToolOutputsBody, svc: Service, tenant: Tenant
) -> Any:
    outputs = [o.model_dump() for o in body.tool_outputs]
    return await _respond(
        svc,
        body.stream,
        lambda q: svc.submit_tool_outputs(tenant, thread_id, run_id, outputs, listener=q),
    )


IncludeDep = Annotated[
    list[Literal["step_details.tool_calls[*].file_search.results[*].content"]],
    Query(alias="include[]", description="Add file_search results' content to the steps."),
]


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=Page[RunStep])
async def list_steps(
    thread_id: str,
    run_id: str,
    paging: PagingDep,
    svc: Service,
    tenant: Tenant,
    include: IncludeDep = [],  # noqa: B006 (FastAPI copies defaults)
) -> Page[RunStep]:
    page = svc.list_steps(tenant, thread_id, run_id, **paging.window())
    page.data = [file_search_run.shown(step, list(include)) for step in page.data]
    return page


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=RunStep)
async def get_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    svc: Service,
    tenant: Tenant,
    include: IncludeDep = [],  # noqa: B006 (FastAPI copies defaults)
) -> RunStep:
    step = svc.get_step(tenant, thread_id, run_id, step_id)
    return file_search_run.shown(step, list(include))
