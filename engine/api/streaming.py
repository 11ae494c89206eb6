"""Server-sent events: every stream of the API is framed here, with keep-alive pings.

FastAPI's own SSE path (``response_class=EventSourceResponse`` on a generator route) needs the
route itself to be a generator; ours answer JSON or a stream per request (``Accept``, ``stream``),
so they hand a generator of ``ServerSentEvent`` to :func:`event_stream`, which frames it with
FastAPI's encoder and sends a ``: ping`` comment whenever the generator is quiet for ``ping``
seconds, so that proxies do not cut a long execution off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, ServerSentEvent, format_sse_event

from ..agent.events import Event

PING_SECONDS = 15.0
DONE = ServerSentEvent(event="done", raw_data="[DONE]")
"""The last frame of an Assistants stream: the OpenAI SDK stops reading at ``data: [DONE]``."""

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with streaming asked for, server-sent events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
"""OpenAPI for a route that may answer with a stream."""

Events = AsyncGenerator[ServerSentEvent, None]
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work was cancelled."""


def encode(event: ServerSentEvent) -> bytes:
    """One frame: ``event:`` and ``data:`` lines; ``data`` as JSON, ``raw_data`` as it is."""
    data = event.raw_data
    if data is None and event.data is not None:
        data = json.dumps(jsonable_encoder(event.data))
    return format_sse_event(
        data_str=data, event=event.event, id=event.id, retry=event.retry, comment=event.comment
    )


def event_stream(events: Events, *, ping: float = PING_SECONDS) -> EventSourceResponse:
    return EventSourceResponse(
        framed(events, ping=ping),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def queued_events(
    queue: asyncio.Queue[Event],
    last: Collection[str],
    *,
    done: bool = False,
    stop: Callable[[], object] | None = None,
) -> Events:
    """Each event of ``queue``, named by its name, up to one named in ``last`` (``done``: then
    ``data: [DONE]``). ``stop`` runs at the end, also when the client goes away mid-stream."""
    try:
        while True:
            event = await queue.get()
            yield ServerSentEvent(event=event.name, data=event.data)
            if event.name in last:
                break
        if done:
            yield DONE
    finally:
        if stop is not None:
            stop()


async def framed(events: Events, *, ping: float = PING_SECONDS) -> AsyncIterator[bytes]:
    """The frames of ``events``, with a ping after each ``ping`` seconds of quiet.

    One task pulls ``events`` (so its timeouts and cancel scopes stay in one task) and this
    generator waits on it with a timeout. When the client goes away this generator is cancelled;
    the pulling task is then cancelled too and awaited, so ``events`` gets its own cleanup (such
    as interrupting the execution) done before the request ends.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
    pump: asyncio.Future[Any] = asyncio.ensure_future(_pump(events, queue))
    get: asyncio.Future[Any] | None = None
    try:
        while True:
            get = get or asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({get, pump}, timeout=ping, return_when="FIRST_COMPLETED")
            if get in done:
                frame, get = get.result(), None
                yield frame
            elif pump in done:
                if queue.empty():
                    pump.result()  # the generator's own error, if it ended with one
                    return
            else:
                yield KEEPALIVE_COMMENT
    finally:
        if get is not None:
            get.cancel()
        pump.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait({pump})
        if not pump.cancelled():
            pump.exception()  # retrieved: an error after the client left is not worth a warning


async def _pump(events: Events, queue: asyncio.Queue[bytes]) -> None:
    try:
        async for event in events:
            await queue.put(encode(event))
    finally:
        with anyio.CancelScope(shield=True):
            await events.aclose()


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` for a plain (not streamed) answer, cancelling it if the client goes away
    first, as a stream's client cancels its stream: a client that gives up on an execution
    interrupts it instead of leaving it to hold up the next one.

    The body has been read by then, so the next ASGI message is the disconnect."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})
    if task.cancelled():
        raise ClientGone
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
