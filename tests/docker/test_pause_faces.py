"""A paused session resumes on first use through every face, with its variables: Azure
sessions (LangChain's tool), MCP (the mcp SDK), Responses and Assistants (the openai SDK)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import httpx
import langchain_azure_dynamic_sessions as lads
import openai
import pytest

from ..support.assistants import ask, last_answer, visualizer
from ..support.clients import CODE
from ..support.servers import LiveServer
from .test_mcp import MODERN, _new_session, connect, text

KEY_A = LiveServer.keys[0]


@pytest.fixture
def native(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{live_server.url}/v1/sessions/",
        timeout=120,
        headers={"Authorization": f"Bearer {KEY_A}"},
    ) as c:
        yield c


def pause(native: httpx.Client, session_id: str) -> None:
    paused = native.post(f"{session_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"


def status(native: httpx.Client, session_id: str) -> str:
    value: str = native.get(session_id).json()["status"]
    return value


def test_azure_sessions_resume_a_paused_identifier(
    live_server: LiveServer, native: httpx.Client
) -> None:
    identifier = f"azure-pause-{uuid.uuid4().hex[:8]}"
    tool = lads.SessionsPythonREPLTool(
        pool_management_endpoint=live_server.url,
        access_token_provider=lambda: KEY_A,
        session_id=identifier,
    )
    assert tool.execute("v = 21\nv")["result"] == 21
    (sid,) = [
        s["id"]
        for s in native.get(f"{live_server.url}/v1/sessions", params={"limit": 100}).json()["data"]
        if s["thread_id"] == identifier
    ]
    pause(native, sid)
    assert tool.execute("v * 2")["result"] == 42
    assert status(native, sid) == "active"
    native.delete(sid)


def test_mcp_resumes_a_paused_session(live_server: LiveServer, native: httpx.Client) -> None:
    async def go() -> None:
        async with connect(live_server, MODERN) as client:
            sid = await _new_session(client)
            await client.call_tool("execute", {"code": "x = 41", "session_id": sid})
            pause(native, sid)
            listed = await client.call_tool("list_files", {"session_id": sid})
            assert not listed.is_error, text(listed)
            pause(native, sid)
            again = await client.call_tool("execute", {"code": "x + 1", "session_id": sid})
            assert not again.is_error and "42" in text(again)
            assert status(native, sid) == "active"
            await client.call_tool("close", {"session_id": sid})

    anyio.run(go)


def test_responses_resume_a_paused_container(client: openai.OpenAI, native: httpx.Client) -> None:
    first = client.responses.create(model="m", tools=CODE, input="Set a variable")
    container = next(o.container_id for o in first.output if o.type == "code_interpreter_call")
    pause(native, container)
    second = client.responses.create(
        model="m", tools=CODE, input="Use the variable", previous_response_id=first.id
    )
    assert second.output_text == "The answer is 42."
    ids = {o.container_id for o in second.output if o.type == "code_interpreter_call"}
    assert ids == {container}
    assert status(native, container) == "active"


def test_assistants_resume_a_paused_thread_session(
    live_server: LiveServer, client: openai.OpenAI, native: httpx.Client
) -> None:
    thread_id, run = ask(client, visualizer(client), "Set a variable")
    assert run.status == "completed"
    listed = native.get(f"{live_server.url}/v1/sessions", params={"limit": 100}).json()["data"]
    (sid,) = [s["id"] for s in listed if s["thread_id"] == thread_id]
    pause(native, sid)
    client.beta.threads.messages.create(thread_id, role="user", content="Use the variable")
    again = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=run.assistant_id, poll_interval_ms=200
    )
    assert again.status == "completed"
    assert last_answer(client, thread_id) == "The answer is 42."
    assert status(native, sid) == "active"
