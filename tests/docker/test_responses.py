"""The Responses API and Conversations with the official openai SDK against a live server.

Everything is real (uvicorn, Docker, the sandbox image, the SQLite store) except the model: the
scripted Chat Completions server in ``tests/support/model_server.py`` stands in for it, choosing its
script by keywords in the newest user message, streaming when asked to.
"""

from __future__ import annotations

import base64
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from engine import Engine
from engine.responses import containers
from engine.responses.tools import CodeTool
from engine.sessions import SessionStatus

from ..support.clients import CODE, sdk
from ..support.servers import LiveServer, ServerThread, server_settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KEY_A, KEY_B = LiveServer.keys
WEATHER: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
    },
]


def test_sine_wave_plot_cited_and_downloadable(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="gpt-4.1",
        tools=CODE,
        include=["code_interpreter_call.outputs"],
        input="Plot a sine wave",
    )
    assert r.status == "completed", r.error
    kinds = [o.type for o in r.output]
    assert kinds == ["message", "code_interpreter_call", "message"], kinds
    call = r.output[1]
    assert call.type == "code_interpreter_call"
    assert "np.sin" in (call.code or "") and call.status == "completed"
    assert call.container_id.startswith("sess_")
    images = [o for o in call.outputs or [] if o.type == "image"]
    assert images and images[0].url.startswith("data:image/png;base64,")
    assert base64.b64decode(images[0].url.split(",", 1)[1]).startswith(PNG_MAGIC)
    final = r.output[-1]
    assert final.type == "message"
    text = final.content[0]
    assert text.type == "output_text"
    cite = text.annotations[0]
    assert cite.type == "container_file_citation"
    assert cite.filename == "sine.png" and cite.container_id == call.container_id
    assert text.text[cite.start_index : cite.end_index] == "sandbox:/mnt/data/sine.png"
    data = client.containers.files.content.retrieve(cite.file_id, container_id=cite.container_id)
    assert data.read().startswith(PNG_MAGIC)
    assert r.usage is not None and r.usage.input_tokens == 200 and r.usage.output_tokens == 40
    assert "sine wave" in r.output_text.lower()


def test_outputs_only_when_included(client: openai.OpenAI) -> None:
    r = client.responses.create(model="m", tools=CODE, input="Plot a sine wave")
    call = next(o for o in r.output if o.type == "code_interpreter_call")
    assert call.outputs is None
    again = client.responses.retrieve(r.id, include=["code_interpreter_call.outputs"])
    call = next(o for o in again.output if o.type == "code_interpreter_call")
    assert call.outputs and any(o.type == "image" for o in call.outputs)


def test_previous_response_keeps_the_kernel(client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", tools=CODE, input="Set a variable")
    second = client.responses.create(
        model="m", tools=CODE, input="Use the variable", previous_response_id=first.id
    )
    assert second.output_text == "The answer is 42."
    ids = {o.container_id for r in (first, second) for o in r.output if o.type != "message"}
    assert len(ids) == 1


def test_expired_auto_container_continues_with_files(client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", tools=CODE, input="Plot a sine wave")
    old = next(o.container_id for o in first.output if o.type == "code_interpreter_call")
    client.containers.delete(old)  # as if it had expired
    second = client.responses.create(
        model="m",
        tools=CODE,
        include=["code_interpreter_call.outputs"],
        input="Use the variable",
        previous_response_id=first.id,
    )
    call = next(o for o in second.output if o.type == "code_interpreter_call")
    assert call.container_id != old
    logs = " ".join(o.logs for o in call.outputs or [] if o.type == "logs")
    assert "variables and imports from earlier turns are gone" in logs
    assert "NameError" in second.output_text
    names = [f.path for f in client.containers.files.list(call.container_id)]
    assert "/mnt/data/sine.png" in names


async def test_an_expired_container_comes_back_with_its_folders(engine: Engine) -> None:
    tool = CodeTool()
    first = (await containers.place(engine.runtime, "folders", tool, None, {}, [])).session
    code = (
        "import os\n"
        "for d in ('a', 'b/c'):\n"
        "    os.makedirs(f'/mnt/data/{d}', exist_ok=True)\n"
        "    open(f'/mnt/data/{d}/notes.txt', 'w').write(d)\n"
        "open('/mnt/data/notes.txt', 'w').write('top')"
    )
    assert (await first.execute(code)).status.value == "ok"
    files = await containers.snapshot(first)
    assert sorted(files) == ["a/notes.txt", "b/c/notes.txt", "notes.txt"]
    first.keep_outputs(files.values())  # as a stored response keeps what it may restore
    await engine.sessions.close(first.id, status=SessionStatus.EXPIRED)
    placed = await containers.place(engine.runtime, "folders", tool, first.id, files, [])
    again = placed.session
    assert placed.fresh_after_expiry and again.id != first.id
    for path, text in (("a/notes.txt", "a"), ("b/c/notes.txt", "b/c"), ("notes.txt", "top")):
        assert await again.read_file(path) == text.encode(), path
    await engine.sessions.close(again.id)


def test_explicit_container_and_tenants(client: openai.OpenAI, other: openai.OpenAI) -> None:
    container = client.containers.create(name="mine")
    tools: list[Any] = [{"type": "code_interpreter", "container": container.id}]
    r = client.responses.create(model="m", tools=tools, input="Set a variable")
    assert r.status == "completed"
    assert r.output[0].type == "code_interpreter_call"
    assert r.output[0].container_id == container.id
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="m", tools=tools, input="Set a variable")
    client.containers.delete(container.id)
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="m", tools=tools, input="Set a variable")
    assert 400 <= info.value.status_code < 500


def test_function_calls_then_outputs(client: openai.OpenAI) -> None:
    r = client.responses.create(model="m", tools=WEATHER, input="What is the weather and time?")
    calls = [o for o in r.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    outputs: list[Any] = [
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"},
    ]
    done = client.responses.create(
        model="m", tools=WEATHER, input=outputs, previous_response_id=r.id
    )
    assert done.output_text == "Weather: sunny. Time: noon."
    items = client.responses.input_items.list(done.id, order="asc")
    assert [i.type for i in items.data] == ["function_call_output", "function_call_output"]


def test_failing_cell_goes_back_to_the_model(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="m", tools=CODE, include=["code_interpreter_call.outputs"], input="Fix it"
    )
    calls = [o for o in r.output if o.type == "code_interpreter_call"]
    assert len(calls) == 2
    assert "NameError" in " ".join(o.logs for o in calls[0].outputs or [] if o.type == "logs")
    assert r.output_text == "Fixed. The total is 45."


def test_conversation_carries_context(client: openai.OpenAI, other: openai.OpenAI) -> None:
    conv = client.conversations.create(metadata={"topic": "vars"})
    assert conv.metadata == {"topic": "vars"}
    client.responses.create(model="m", tools=CODE, input="Set a variable", conversation=conv.id)
    r = client.responses.create(
        model="m", tools=CODE, input="Use the variable", conversation=conv.id
    )
    assert r.output_text == "The answer is 42."
    assert r.conversation is not None and r.conversation.id == conv.id
    items = client.conversations.items.list(conv.id, order="asc")
    kinds = [i.type for i in items.data]
    assert kinds[0] == "message" and "code_interpreter_call" in kinds
    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "hello"}]
    )
    item_id = added.data[0].id
    assert item_id is not None
    assert client.conversations.items.retrieve(item_id, conversation_id=conv.id).id == item_id
    client.conversations.items.delete(item_id, conversation_id=conv.id)
    updated = client.conversations.update(conv.id, metadata={"topic": "other"})
    assert updated.metadata == {"topic": "other"}
    with pytest.raises(openai.NotFoundError):
        other.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="m", input="hi", conversation=conv.id)
    assert client.conversations.delete(conv.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_streaming_events(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="m", tools=CODE, input="Plot a sine wave, stream slowly"
    ) as stream:
        events, arrived = [], []
        for event in stream:
            events.append(event)
            arrived.append(time.monotonic())
        final = stream.get_final_response()
    types = [e.type for e in events]
    # Real deltas: the first piece of code arrives while the model is still writing the rest.
    first = arrived[types.index("response.code_interpreter_call_code.delta")]
    assert arrived[types.index("response.code_interpreter_call_code.done")] - first > 0.5
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for expected in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert expected in types, expected
    code = "".join(e.delta for e in events if e.type == "response.code_interpreter_call_code.delta")
    assert sum(e.type == "response.code_interpreter_call_code.delta" for e in events) > 3
    call = next(o for o in final.output if o.type == "code_interpreter_call")
    assert code == call.code and "np.sin" in code
    assert final.output[-1].content[0].annotations[0].filename == "sine.png"


def test_streaming_function_arguments(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="m", tools=WEATHER, input="What is the weather and time?"
    ) as stream:
        events = list(stream)
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert deltas and len(done) == 2
    assert done[0].arguments == '{"city": "Paris"}'


def test_background_poll_and_cancel(client: openai.OpenAI) -> None:
    r = client.responses.create(model="m", tools=CODE, input="Something slow", background=True)
    assert r.status in ("queued", "in_progress")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = client.responses.retrieve(r.id)
        if any(
            o.type == "code_interpreter_call" and o.status == "interpreting" for o in now.output
        ):
            break
        time.sleep(0.2)
    polled = client.responses.with_raw_response.retrieve(r.id)
    assert polled.headers["openai-poll-after-ms"] == "200"  # how long the SDK's pollers wait
    started = time.monotonic()
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert time.monotonic() - started < 20
    assert client.responses.retrieve(r.id).status == "cancelled"


def wait_interpreting(client: openai.OpenAI, response_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = client.responses.retrieve(response_id)
        if any(
            o.type == "code_interpreter_call" and o.status == "interpreting" for o in now.output
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the code never started")


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    r = client.responses.create(model="m", input="hello", store=False)
    assert r.status == "completed"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_delete_response(client: openai.OpenAI) -> None:
    r = client.responses.create(model="m", input="hello")
    assert r.output_text == "no tools for me"
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": "hi", "previous_response_id": "resp_nope"},
        {"model": "m", "input": "hi", "previous_response_id": "resp_x", "conversation": "conv_x"},
        {"model": "m", "input": "hi", "tools": [{"type": "code_interpreter"}]},
        {"model": "m", "input": "hi", "tools": [{"type": "function"}]},
        {"model": "m", "input": "hi", "tools": [{"type": "file_search", "vector_store_ids": []}]},
        {"model": "m", "input": "hi", "tools": [{"type": "web_search"}]},
        {"model": "m", "input": "hi", "include": ["everything"]},
        {"model": "m", "input": "hi", "tool_choice": {"type": "function", "name": "nope"}},
        {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
        {"model": "m", "input": [{"type": "bogus"}]},
        {"model": "m", "input": "x" * 500_000},
        {"model": "m", "input": ""},
        {"model": "m", "input": "hi", "conversation": "conv_missing"},
    ],
)
def test_bad_input_is_a_4xx(live_server: LiveServer, body: dict[str, Any]) -> None:
    reply = httpx.post(
        f"{live_server.url}/v1/responses",
        json=body,
        headers={"Authorization": f"Bearer {KEY_A}"},
        timeout=60,
    )
    assert 400 <= reply.status_code < 500, reply.text
    assert set(reply.json()["error"]) >= {"message", "type", "code"}


def test_azure_paths(live_server: LiveServer) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=live_server.url, api_key=KEY_A, api_version="2025-04-01-preview"
    )
    assert azure.responses.create(model="m", input="hello").output_text == "no tools for me"
    v1 = openai.OpenAI(base_url=f"{live_server.url}/openai/v1", api_key=KEY_A)
    assert v1.responses.create(model="m", input="hello").output_text == "no tools for me"


def test_background_response_ends_clearly_after_a_restart(
    tmp_path: Path, model_server: ServerThread
) -> None:
    settings = server_settings(tmp_path / "data", model_server)
    server = LiveServer(settings)
    server.start()
    try:
        client = sdk(server)
        r = client.responses.create(model="m", tools=CODE, input="Something slow", background=True)
        wait_interpreting(client, r.id)
    finally:
        server.stop()
    # A crash leaves it in progress on disk: the next start must end it.
    store = sqlite3.connect(tmp_path / "data" / "engine.db")
    with store:
        store.execute("UPDATE response_objects SET status = 'in_progress' WHERE id = ?", (r.id,))
    store.close()
    again = LiveServer(settings)
    again.start()
    try:
        found = sdk(again).responses.retrieve(r.id)
        assert found.status == "failed"
        assert found.error is not None and "restarted" in found.error.message
    finally:
        again.stop()


def test_every_sandbox_link_is_cited_and_the_text_kept(client: openai.OpenAI) -> None:
    """Links stay as the model wrote them (as OpenAI's do); each link to a file is cited."""
    with client.responses.stream(model="m", tools=CODE, input="Write two files") as stream:
        events = list(stream)
        final = stream.get_final_response()
    message = final.output[-1]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    assert text.text == (
        "See [a.csv](sandbox:/mnt/data/a.csv), then sandbox:/mnt/data/my%20report.txt. "
        "Not sandbox:/mnt/data/missing.txt."
    )
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == text.text  # what was streamed is the final text
    spans = [text.text[a.start_index : a.end_index] for a in text.annotations]
    assert spans == ["sandbox:/mnt/data/a.csv", "sandbox:/mnt/data/my%20report.txt"]
    cites = [a for a in text.annotations if a.type == "container_file_citation"]
    assert [c.filename for c in cites] == ["a.csv", "my report.txt"]
    added = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
    assert [getattr(a, "file_id", None) for a in added] == [c.file_id for c in cites]
    body = client.containers.files.content.retrieve(
        cites[1].file_id, container_id=cites[1].container_id
    )
    assert body.read() == b"report"


def test_max_tool_calls_ignores_further_calls(client: openai.OpenAI) -> None:
    """The model asks for two cells; with max_tool_calls=1 the second is ignored, as OpenAI's."""
    for stream in (False, True):
        r: Response
        if stream:
            with client.responses.stream(
                model="m", tools=CODE, input="Run two cells", max_tool_calls=1
            ) as s:
                events = list(s)
                r = s.get_final_response()
            added = [e.item.type for e in events if e.type == "response.output_item.added"]
            assert added == ["code_interpreter_call", "message"]
        else:
            r = client.responses.create(
                model="m", tools=CODE, input="Run two cells", max_tool_calls=1
            )
        assert r.status == "completed" and r.max_tool_calls == 1
        calls = [o for o in r.output if o.type == "code_interpreter_call"]
        assert [(c.code, c.status) for c in calls] == [("print('one')", "completed")]
        assert r.output_text == "no tools for me"  # the next turn is asked with tool_choice none


def test_background_response_streams(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="m",
            tools=CODE,
            include=["code_interpreter_call.outputs"],
            input="Plot a sine wave",
            background=True,
            stream=True,
        )
    )
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert types[-1] == "response.completed"
    created = events[0]
    assert created.type == "response.created"
    assert created.response.background and created.response.status == "queued"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = [e.item for e in events if e.type == "response.output_item.done"]
    call = next(i for i in done if i.type == "code_interpreter_call")
    image = next(o for o in call.outputs or [] if o.type == "image")
    assert base64.b64decode(image.url.split(",", 1)[1]).startswith(PNG_MAGIC)
    stored = client.responses.retrieve(
        created.response.id, include=["code_interpreter_call.outputs"]
    )
    assert stored.status == "completed" and stored.background
    again = next(o for o in stored.output if o.type == "code_interpreter_call")
    assert again.outputs == call.outputs


def test_one_response_at_a_time_per_conversation(client: openai.OpenAI) -> None:
    conv = client.conversations.create()
    first = client.responses.create(
        model="m", tools=CODE, input="Something slow", conversation=conv.id, background=True
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="hello", conversation=conv.id)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "conversation_locked" and error["param"] == "conversation"
    assert "Another process is currently operating on this conversation" in error["message"]
    assert client.responses.create(model="m", input="hello").status == "completed"  # others run
    client.responses.cancel(first.id)
    after = client.responses.create(model="m", input="hello", conversation=conv.id)
    assert after.status == "completed"
