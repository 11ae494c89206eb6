"""The Responses API: streams that must end, and request fields that must not be dropped.

These cases need a model, which the bench's own server has none of, so each starts a server of
its own (a real uvicorn and engine on a scratch data folder, as ``sandbox-engine serve`` runs)
beside a scripted Chat Completions stand-in in this process. The stand-in asks to run code that
sleeps for a minute, so a stream stays open until something ends it; it records each request, so
a case can see what reached the model. The client is the official ``openai`` SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import uvicorn
from fastapi import FastAPI, Request

from engine import Settings

from ...chat_reply import chat_reply
from ..harness import KEYS, ApiServer, Context
from ..model import API, Case, Verdict, clip

ENDS_WITHIN = 2.0
SLEEP = "import time; time.sleep(60)"
CODE_TOOL: Any = [{"type": "code_interpreter", "container": {"type": "auto"}}]


def _stand_in(requests: list[dict[str, Any]]) -> FastAPI:
    """Chat Completions: first a call to run ``SLEEP``, then (after its result) a short answer;
    a request with ``response_format`` is answered with ``{"ok": true}``."""
    app = FastAPI()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        requests.append(body)
        message: dict[str, Any] = {"role": "assistant", "content": "done"}
        if body.get("response_format"):
            message["content"] = json.dumps({"ok": True})
        elif body.get("tools") and body["messages"][-1]["role"] != "tool":
            function = {"name": "python", "arguments": json.dumps({"code": SLEEP})}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": function}],
            }
        return chat_reply(body, message, "stand-in")

    return app


@contextlib.asynccontextmanager
async def _served() -> AsyncIterator[tuple[ApiServer, list[dict[str, Any]]]]:
    """A server of the case's own, with the stand-in model; both stopped afterwards."""
    requests: list[dict[str, Any]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    model = uvicorn.Server(uvicorn.Config(_stand_in(requests), log_level="error"))
    model_task = asyncio.create_task(model.serve(sockets=[sock]))
    with tempfile.TemporaryDirectory(prefix="sandbox-security-responses-") as folder:
        settings = Settings(
            data_dir=Path(folder) / "engine",
            api_keys=",".join(KEYS),
            pool_size=0,
            pool_min=0,
            shutdown_sandboxes="close",
            drain_timeout=5.0,
            llm_base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1",
            llm_api_key="stand-in",
        )
        server = ApiServer(settings)
        try:
            await server.start()
            yield server, requests
        finally:
            await server.stop()
            model.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(model_task, 30)
            sock.close()


def _client(server: ApiServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key=KEYS[0], max_retries=0, timeout=120
    )


async def _stream_then(
    act: Callable[[ApiServer, openai.AsyncOpenAI, str], Awaitable[None]],
    status: str,
) -> Verdict:
    """Stream a background response until its code runs, ``act`` on it, and time the stream's
    end: it must end with a terminal event the SDK parses, within ``ENDS_WITHIN`` seconds."""
    async with _served() as (server, _):
        client = _client(server)
        events: list[Any] = []
        running = asyncio.Event()

        async def read() -> None:
            stream = await client.responses.create(
                model="m", tools=CODE_TOOL, input="sleep", background=True, stream=True
            )
            async for event in stream:
                events.append(event)
                if event.type == "response.code_interpreter_call.interpreting":
                    running.set()

        reader = asyncio.create_task(read())
        try:
            await asyncio.wait_for(running.wait(), 90)
            started = time.perf_counter()
            await act(server, client, events[0].response.id)
            done, _ = await asyncio.wait({reader}, timeout=30)
            took = time.perf_counter() - started
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await client.close()
        end = time.perf_counter()
        if not done:
            return Verdict(False, "the stream did not end within 30 s", None, end)
        if reader.exception() is not None:
            return Verdict(False, f"the SDK raised {reader.exception()!r}", None, end)
        last = events[-1]
        status_seen = last.response.status if hasattr(last, "response") else None
        shown = f"last event {last.type} (response {status_seen})"
        ok = (
            last.type == "response.failed"
            and last.response.status == status
            and took <= ENDS_WITHIN
        )
        return Verdict(ok, f"{shown}, the stream ended {took:.2f} s after the action", None, end)


async def _cancel(_: ApiServer, client: openai.AsyncOpenAI, response_id: str) -> None:
    await client.responses.cancel(response_id)


async def _delete(_: ApiServer, client: openai.AsyncOpenAI, response_id: str) -> None:
    await client.responses.delete(response_id)


async def _stop(server: ApiServer, _: openai.AsyncOpenAI, __: str) -> None:
    server.server.should_exit = True  # stop() itself waits for the engine to close


async def cancelled_stream(ctx: Context) -> Verdict:
    return await _stream_then(_cancel, "cancelled")


async def deleted_stream(ctx: Context) -> Verdict:
    return await _stream_then(_delete, "cancelled")


async def stopping_server_stream(ctx: Context) -> Verdict:
    return await _stream_then(_stop, "failed")


async def unknown_field(ctx: Context) -> Verdict:
    """A misspelt or unsupported field is refused, naming it; a structured-output request
    reaches the model as ``response_format`` instead of being dropped."""
    async with _served() as (server, requests):
        client = _client(server)
        try:
            problems = []
            for extra, named in (
                ({"response_fromat": {"type": "json_object"}}, "response_fromat"),
                ({"text": {"format": {"type": "text"}, "strictness": 1}}, "text.strictness"),
            ):
                try:
                    await client.responses.create(model="m", input="hi", extra_body=extra)
                    problems.append(f"{named}: accepted")
                except openai.BadRequestError as exc:
                    body = exc.body if isinstance(exc.body, dict) else {}
                    if body.get("param") != named or body.get("code") != "unknown_parameter":
                        problems.append(f"{named}: {clip(str(body), 120)}")
            fmt: Any = {"type": "json_object"}
            r = await client.responses.create(model="m", input="hi", text={"format": fmt})
            sent = requests[-1].get("response_format") if requests else None
            if sent != {"type": "json_object"} or r.output_text != '{"ok": true}':
                problems.append(f"text.format did not reach the model: sent {sent}")
        finally:
            await client.close()
    end = time.perf_counter()
    if problems:
        return Verdict(False, "; ".join(problems), None, end)
    return Verdict(
        True,
        "unknown fields refused with 400 unknown_parameter naming them; text.format reached "
        "the model as response_format",
        None,
        end,
    )


CASES = [
    Case(
        "responses-cancel-ends-stream",
        API,
        "cancel a background response while a client streams it (its code sleeps 60 s)",
        f"the stream ends with response.failed (status cancelled) within {ENDS_WITHIN:g} s",
        cancelled_stream,
    ),
    Case(
        "responses-delete-ends-stream",
        API,
        "delete a background response while a client streams it (its code sleeps 60 s)",
        f"the stream ends with response.failed (status cancelled) within {ENDS_WITHIN:g} s",
        deleted_stream,
    ),
    Case(
        "responses-shutdown-ends-stream",
        API,
        "stop the server while a client streams a background response (its code sleeps 60 s)",
        f"the stream ends with response.failed (status failed) within {ENDS_WITHIN:g} s",
        stopping_server_stream,
    ),
    Case(
        "responses-unknown-field-refused",
        API,
        "send misspelt or unsupported fields to POST /v1/responses, and a text.format",
        "400 unknown_parameter naming each field, never silently dropped; text.format reaches "
        "the model as response_format",
        unknown_field,
    ),
]
