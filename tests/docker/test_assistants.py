"""Assistants v2 with the official openai SDK against a live server.

Everything is real (uvicorn, Docker, the sandbox image, the SQLite store) except the model: the
scripted Chat Completions server in ``tests/support/model_server.py`` stands in for it, choosing its
script by keywords in the newest user message.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Run, Text, TextDelta
from openai.types.beta.threads.runs import ToolCall, ToolCallDelta

from engine.assistants import service as service_module

from ..support.clients import coder, sdk
from ..support.model_server import app as model_app
from ..support.servers import LiveServer, ServerThread, server_settings

pytestmark = [
    pytest.mark.filterwarnings(
        r"ignore:deprecated$|The Assistants API is deprecated:DeprecationWarning"
    ),
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KEY_A, KEY_B = LiveServer.keys
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a time zone",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    },
]


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    yield sdk(live_server)


@pytest.fixture
def other(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    yield sdk(live_server, KEY_B)


@pytest.fixture(scope="module")
def two_rounds_server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    """A live server that allows the model two rounds of tool calls per run."""
    server = LiveServer(
        server_settings(tmp_path_factory.mktemp("rounds"), model_server, llm_max_tool_rounds=2)
    )
    server.start()
    yield server
    server.stop()


def wait_for(
    probe: Callable[[], T | Literal[False] | None], timeout: float = 60, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or probe}")


def model_requests_since(mark: int) -> list[dict[str, Any]]:
    """What the scripted model received since ``mark`` (an earlier ``len`` of the record)."""
    requests: list[dict[str, Any]] = model_app.state.requests
    return requests[mark:]


def model_mark() -> int:
    return len(model_app.state.requests)


def conversation(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a model request, without the system prompt."""
    return [m for m in request["messages"] if m["role"] != "system"]


def visualizer(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions="You are a helpful AI assistant who makes interesting visualizations.",
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",
    )
    return assistant.id


def ask(client: openai.OpenAI, assistant_id: str, text: str, **run: Any) -> tuple[str, Run]:
    """A new thread with one user message, run to a resting state."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    result = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=200, **run
    )
    return thread.id, result


def last_answer(client: openai.OpenAI, thread_id: str) -> str:
    message = client.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
    assert message.role == "assistant"
    return "".join(p.text.value for p in message.content if p.type == "text")


def code_steps(client: openai.OpenAI, thread_id: str, run_id: str) -> list[Any]:
    """The code-interpreter tool calls of a run, oldest first."""
    steps = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run_id, order="asc")
    return [
        call
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
        if call.type == "code_interpreter"
    ]


# --- the seed tutorials ---


def test_code_interpreter_tutorial(client: openai.OpenAI) -> None:
    assistant_id = visualizer(client)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    data = json.loads(messages.model_dump_json())
    answer = data["data"][0]
    assert answer["role"] == "assistant" and answer["run_id"] == run.id
    image_file_id = answer["content"][0]["image_file"]["file_id"]
    assert client.files.content(image_file_id).content.startswith(PNG_MAGIC)
    text = answer["content"][-1]["text"]
    (annotation,) = text["annotations"]
    assert annotation["type"] == "file_path"
    assert annotation["text"] == "sandbox:/mnt/data/sine.png"
    assert text["value"][annotation["start_index"] : annotation["end_index"]] == annotation["text"]
    sine = client.files.content(annotation["file_path"]["file_id"]).content
    assert sine.startswith(PNG_MAGIC)
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    kinds = [s.type for s in reversed(steps.data)]
    # "Let me plot it." came with the code call: a message of its own, as OpenAI's runs make it
    assert kinds == ["message_creation", "tool_calls", "message_creation"]
    call = steps.data[1].step_details.tool_calls[0]
    assert call.type == "code_interpreter" and "np.sin" in call.code_interpreter.input
    assert any(o.type == "image" for o in call.code_interpreter.outputs)

    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Show me the code you used to generate the sinewave",
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert "np.sin" in latest.content[0].text.value

    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="I prefer visualizations in dark mode, can you "
        "change the colors to make a dark mode version?",
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    dark_id = latest.content[0].image_file.file_id
    assert client.files.content(dark_id).content.startswith(PNG_MAGIC)
    (link,) = latest.content[-1].text.annotations  # the sentence's full stop is not in the link
    assert link.text == "sandbox:/mnt/data/sine_dark.png"
    assert client.files.retrieve(link.file_path.file_id).filename == "sine_dark.png"
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 7


def test_tutorial_with_the_azure_client(live_server: LiveServer) -> None:
    """``AzureOpenAI(azure_endpoint=...)`` calls /openai/...?api-version=: the same routes."""
    client = openai.AzureOpenAI(
        api_key=KEY_A,
        api_version="2024-05-01-preview",
        azure_endpoint=live_server.url,
        max_retries=0,
        timeout=120,
    )
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        model="my-gpt-4o-deployment",
        instructions="You are a helpful AI assistant who makes interesting visualizations.",
        tools=[{"type": "code_interpreter"}],
    )
    assert client.beta.assistants.retrieve(assistant.id).name == "Data Visualization"
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    while run.status not in ("completed", "cancelled", "expired", "failed"):
        time.sleep(0.2)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    assert run.status == "completed", run.last_error
    assert run.model == "my-gpt-4o-deployment"
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    data = json.loads(messages.model_dump_json(indent=2))
    image_file_id = data["data"][0]["content"][0]["image_file"]["file_id"]
    assert client.files.content(image_file_id).read().startswith(PNG_MAGIC)
    assert sdk(live_server).beta.threads.retrieve(thread.id).id == thread.id


def test_example_script_imports_cleanly() -> None:
    spec = importlib.util.spec_from_file_location(
        "assistants_tutorial", ROOT / "examples" / "assistants_tutorial.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # nothing runs on import
    assert callable(module.main)


def test_example_script_runs_against_the_scripted_model(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SANDBOX_URL": live_server.url,
        "SANDBOX_KEY": KEY_A,
        "SANDBOX_MODEL": "gpt-4o",
        "OUTPUT_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "assistants_tutorial.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "DeprecationWarning" not in done.stderr
    assert (tmp_path / "sinewave.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "dark_sine.png").read_bytes().startswith(PNG_MAGIC)
    assert "np.sin" in done.stdout


# --- assistants, threads, messages ---


def test_assistants_crud_and_pagination(client: openai.OpenAI) -> None:
    created = [
        client.beta.assistants.create(
            model="gpt-4o",
            name=f"helper {n}",
            description="helps",
            instructions="Be brief.",
            tools=[{"type": "code_interpreter"}, *WEATHER_TOOLS],
            metadata={"n": str(n)},
            temperature=0.5,
            top_p=0.9,
        )
        for n in range(3)
    ]
    first = created[0]
    assert first.id.startswith("asst_") and first.object == "assistant"
    assert (first.name, first.description, first.instructions) == ("helper 0", "helps", "Be brief.")
    assert [t.type for t in first.tools] == ["code_interpreter", "function", "function"]
    assert first.tools[1].function.name == "get_weather"
    assert first.tools[1].function.parameters == WEATHER_TOOLS[0]["function"]["parameters"]
    assert (first.temperature, first.top_p, first.metadata) == (0.5, 0.9, {"n": "0"})
    assert abs(first.created_at - time.time()) < 60
    assert client.beta.assistants.retrieve(first.id) == first

    updated = client.beta.assistants.update(
        first.id, name="renamed", metadata={"k": "v"}, tools=[{"type": "code_interpreter"}]
    )
    assert (updated.name, updated.metadata) == ("renamed", {"k": "v"})
    assert [t.type for t in updated.tools] == ["code_interpreter"]
    assert (updated.instructions, updated.temperature, updated.model) == (
        "Be brief.",
        0.5,
        "gpt-4o",
    )
    assert client.beta.assistants.retrieve(first.id) == updated

    newest = client.beta.assistants.list(limit=2)
    assert [a.id for a in newest.data] == [created[2].id, created[1].id]
    assert newest.has_more
    envelope = client.beta.assistants.with_raw_response.list(limit=2).http_response.json()
    assert envelope["object"] == "list"
    assert (envelope["first_id"], envelope["last_id"]) == (created[2].id, created[1].id)
    following = client.beta.assistants.list(limit=2, after=created[1].id)
    assert following.data[0].id == created[0].id
    ascending = client.beta.assistants.list(order="asc", after=created[0].id, limit=5)
    assert [a.id for a in ascending.data] == [created[1].id, created[2].id]
    assert not ascending.has_more
    before = client.beta.assistants.list(order="asc", before=created[2].id, limit=1)
    assert [a.id for a in before.data] == [created[1].id]
    walked = [a.id for a in client.beta.assistants.list(limit=1)]  # auto-pagination
    assert walked.index(created[2].id) < walked.index(created[0].id)

    deleted = client.beta.assistants.delete(first.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (first.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(first.id)
    assert first.id not in [a.id for a in client.beta.assistants.list(limit=100)]
    with pytest.raises(openai.BadRequestError):
        client.beta.assistants.list(after="asst_nope")
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.create(
            model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": ["file-nope"]}}
        )


def test_threads_create_with_messages_update_delete(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first", "metadata": {"i": "1"}},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
        ],
        metadata={"topic": "tests"},
    )
    assert thread.id.startswith("thread_") and thread.object == "thread"
    assert thread.metadata == {"topic": "tests"}
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in messages] == [
        ("user", "first"),
        ("assistant", "second"),
    ]
    assert messages[0].metadata == {"i": "1"} and messages[0].thread_id == thread.id
    assert messages[0].id.startswith("msg_") and messages[0].object == "thread.message"
    assert messages[0].assistant_id is None and messages[0].run_id is None
    assert client.beta.threads.retrieve(thread.id) == thread
    listed = client.get("/threads?limit=100&order=desc", cast_to=object)
    assert listed["object"] == "list" and listed["data"][0]["id"] == thread.id  # type: ignore[index]
    updated = client.beta.threads.update(thread.id, metadata={"topic": "renamed"})
    assert updated.metadata == {"topic": "renamed"} and updated.id == thread.id
    assert client.beta.threads.retrieve(thread.id).metadata == {"topic": "renamed"}
    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (thread.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message_id=messages[0].id, thread_id=thread.id)
    listed = client.get("/threads?limit=100", cast_to=object)
    assert thread.id not in [t["id"] for t in listed["data"]]  # type: ignore[index]


def test_messages_list_order_limit_cursors_and_retrieve(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(
            thread_id=thread.id, role="user", content=f"message {n}"
        ).id
        for n in range(5)
    ]
    newest_first = client.beta.threads.messages.list(thread_id=thread.id)
    assert [m.id for m in newest_first.data] == ids[::-1] and not newest_first.has_more
    page = client.beta.threads.messages.list(thread_id=thread.id, order="asc", limit=2)
    assert [m.id for m in page.data] == ids[:2] and page.has_more
    page = client.beta.threads.messages.list(
        thread_id=thread.id, order="asc", limit=2, after=ids[1]
    )
    assert [m.id for m in page.data] == ids[2:4] and page.has_more
    page = client.beta.threads.messages.list(thread_id=thread.id, order="asc", after=ids[3])
    assert [m.id for m in page.data] == ids[4:] and not page.has_more
    page = client.beta.threads.messages.list(
        thread_id=thread.id, order="asc", limit=2, before=ids[3]
    )
    assert [m.id for m in page.data] == ids[1:3]
    page = client.beta.threads.messages.list(
        thread_id=thread.id, order="desc", limit=2, before=ids[1]
    )
    assert [m.id for m in page.data] == ids[3:1:-1]
    envelope = client.beta.threads.messages.with_raw_response.list(
        thread_id=thread.id, limit=2
    ).http_response.json()
    assert (envelope["first_id"], envelope["last_id"], envelope["has_more"]) == (
        ids[4],
        ids[3],
        True,
    )
    walked = [m.id for m in client.beta.threads.messages.list(thread_id=thread.id, limit=2)]
    assert walked == ids[::-1]

    message = client.beta.threads.messages.retrieve(message_id=ids[2], thread_id=thread.id)
    assert message.content[0].text.value == "message 2" and message.status == "completed"
    updated = client.beta.threads.messages.update(
        message_id=ids[2], thread_id=thread.id, metadata={"seen": "yes"}
    )
    assert updated.metadata == {"seen": "yes"}
    other_thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):  # a message is found only through its thread
        client.beta.threads.messages.retrieve(message_id=ids[2], thread_id=other_thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(thread_id="thread_nope", role="user", content="x")


# --- files for the code interpreter ---


CSV = b"name,amount\nrent,1200\nfood,345.5\nbooks,54.5\n"


def test_file_through_the_assistants_tool_resources(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("expenses.csv", CSV), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="Answer questions about the data.",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    assert assistant.tool_resources.code_interpreter.file_ids == [upload.id]
    mark = model_mark()
    thread_id, run = ask(client, assistant.id, "What is the sum of the amount column in the csv?")
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread_id) == "The total amount is 1600.0."
    (call,) = code_steps(client, thread_id, run.id)
    assert "read_csv" in call.code_interpreter.input
    assert call.code_interpreter.outputs[0].logs.strip() == "1600.0"
    system = model_requests_since(mark)[0]["messages"][0]
    assert system["role"] == "system" and "expenses.csv" in system["content"]


def test_file_through_a_message_attachment(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("sales.csv", b"amount\n1\n2\n3.5\n"), purpose="assistants")
    assistant_id = coder(client)
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Add up the amount column of the csv.",
        attachments=[{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
    )
    assert message.attachments[0].file_id == upload.id
    assert message.attachments[0].tools[0].type == "code_interpreter"
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread.id) == "The total amount is 6.5."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(
            thread_id=thread.id, role="user", content="x", attachments=[{"file_id": "file-nope"}]
        )


def test_file_through_the_threads_tool_resources(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("t.csv", b"amount\n10\n20\n"), purpose="assistants")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Sum the amount column of the csv"}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    assert thread.tool_resources.code_interpreter.file_ids == [upload.id]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=coder(client))
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread.id) == "The total amount is 30."


def test_code_changes_to_input_files_are_kept(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("ledger.csv", CSV), purpose="assistants")
    assistant_id = coder(client, tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    thread_id, run = ask(client, assistant_id, "Please append a row to the file")
    assert run.status == "completed", run.last_error
    client.beta.threads.messages.create(
        thread_id=thread_id, role="user", content="Now sum the amount column of the csv"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    # the input is placed once per session, not copied again over the code's change
    assert last_answer(client, thread_id) == "The total amount is 1700.0."
    assert client.files.content(upload.id).content == CSV


# --- function calling ---


def test_parallel_function_calls_through_requires_action(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="You are a weather bot. Use the provided functions.",
        tools=WEATHER_TOOLS,
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What are the weather and time in Paris?"}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action", run.last_error
    assert run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.type, c.function.name) for c in calls] == [
        ("function", "get_weather"),
        ("function", "get_time"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert json.loads(calls[1].function.arguments) == {"timezone": "Europe/Paris"}
    assert run.expires_at is not None and run.expires_at - run.created_at == 600

    (step,) = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data
    assert step.id.startswith("step_") and step.type == "tool_calls"
    assert step.status == "in_progress"
    assert [c.id for c in step.step_details.tool_calls] == [c.id for c in calls]
    assert all(c.function.output is None for c in step.step_details.tool_calls)

    # the thread is locked while the run waits for outputs
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="hi")
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    # all parallel calls are answered together
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": calls[0].id, "output": "22C"}],
        )

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        poll_interval_ms=200,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "22C"},
            {"tool_call_id": calls[1].id, "output": "14:05"},
        ],
    )
    assert run.status == "completed", run.last_error
    assert run.required_action is None and run.completed_at is not None
    assert run.usage is not None and run.usage.total_tokens == 240
    assert last_answer(client, thread.id) == "Weather: 22C. Time: 14:05."
    steps = client.beta.threads.runs.steps.list(
        thread_id=thread.id, run_id=run.id, order="asc"
    ).data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    outputs = {c.function.name: c.function.output for c in steps[0].step_details.tool_calls}
    assert outputs == {"get_weather": "22C", "get_time": "14:05"}
    message_id = steps[1].step_details.message_creation.message_id
    assert (
        client.beta.threads.messages.retrieve(message_id=message_id, thread_id=thread.id).run_id
        == run.id
    )
    assert (
        client.beta.threads.runs.steps.retrieve(
            step_id=steps[0].id, thread_id=thread.id, run_id=run.id
        )
        == steps[0]
    )
    with pytest.raises(openai.BadRequestError):  # a finished run takes no more outputs
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[
                {"tool_call_id": calls[0].id, "output": "22C"},
                {"tool_call_id": calls[1].id, "output": "14:05"},
            ],
        )
    runs = client.beta.threads.runs.list(thread_id=thread.id)
    assert [r.id for r in runs.data] == [run.id]


def test_unsupported_tools_are_refused(client: openai.OpenAI) -> None:
    twice: Any = [{"type": "file_search"}, {"type": "file_search"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(model="gpt-4o", tools=twice)
    assert "file_search" in refused.value.message
    with pytest.raises(openai.BadRequestError):
        client.beta.assistants.create(model="gpt-4o", tools=[*WEATHER_TOOLS, WEATHER_TOOLS[0]])
    assistant_id = coder(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):  # forcing a tool the run does not have
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant_id,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, tools=twice)
    assert client.beta.threads.runs.list(thread_id=thread.id).data == []


# --- the loop: retries, limits, cancel, expiry ---


def test_model_fixes_failing_code(client: openai.OpenAI) -> None:
    mark = model_mark()
    thread_id, run = ask(client, coder(client), "Sum the numbers below ten and fix it if needed")
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread_id) == "Fixed. The total is 45."
    first, second = code_steps(client, thread_id, run.id)
    assert "prnt(total)" in first.code_interpreter.input
    assert "NameError" in first.code_interpreter.outputs[0].logs
    assert "print(total)" in second.code_interpreter.input
    assert second.code_interpreter.outputs[0].logs.strip() == "45"
    steps = client.beta.threads.runs.steps.list(
        thread_id=thread_id, run_id=run.id, order="asc"
    ).data
    assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
    # the error went back to the model as the tool's result, traceback included
    requests = model_requests_since(mark)
    assert len(requests) == 3
    error = json.loads(requests[1]["messages"][-1]["content"])
    assert requests[1]["messages"][-1]["role"] == "tool"
    assert error["status"] == "error" and error["error"]["name"] == "NameError"
    assert "prnt" in error["error"]["traceback"]


def test_too_many_tool_rounds_fail_clearly(two_rounds_server: LiveServer) -> None:
    client = sdk(two_rounds_server)
    thread_id, run = ask(client, coder(client), "Keep computing forever")
    assert run.status == "failed"
    assert run.failed_at is not None and run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "more than 2 rounds" in run.last_error.message
    assert "SANDBOX_LLM_MAX_TOOL_ROUNDS" in run.last_error.message
    assert len(code_steps(client, thread_id, run.id)) == 2
    # the thread is usable afterwards
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="hello")


def test_without_a_model_a_run_fails_and_nothing_is_sent(
    tmp_path: Path, model_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The openai SDK, given no base URL, would take OPENAI_BASE_URL or OpenAI's hosted API.
    monkeypatch.setenv("OPENAI_BASE_URL", f"{model_server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "must-not-be-used")
    monkeypatch.delenv("SANDBOX_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("SANDBOX_LLM_API_KEY", raising=False)
    server = LiveServer(
        server_settings(tmp_path, model_server, llm_base_url=None, llm_api_key=None)
    )
    server.start()
    try:
        client = sdk(server)
        mark = model_mark()
        thread_id, run = ask(client, coder(client), "Sum the numbers below ten")
        assert run.status == "failed" and run.failed_at is not None
        assert run.last_error is not None and run.last_error.code == "server_error"
        message = run.last_error.message
        assert "SANDBOX_LLM_BASE_URL" in message and "SANDBOX_LLM_API_KEY" in message
        assert "not set" in message
        assert model_requests_since(mark) == []
        assert client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id).data == []
        # no sandbox was started for a run that could never ask the model
        sessions = server.engine.store.all(
            "SELECT id FROM sessions WHERE thread_id = ?", (thread_id,)
        )
        assert sessions == []
        client.beta.threads.messages.create(thread_id=thread_id, role="user", content="again")
    finally:
        server.stop()


def test_cancel_a_run_while_its_code_runs(client: openai.OpenAI) -> None:
    assistant_id = coder(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Do something slow"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    assert run.id.startswith("run_") and run.status == "queued"
    wait_for(
        lambda: any(
            "sleep" in c.code_interpreter.input for c in code_steps(client, thread.id, run.id)
        ),
        what="the slow code to start",
    )
    assert (
        client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id).status
        == "in_progress"
    )

    with pytest.raises(openai.BadRequestError) as locked:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="hi")
    assert locked.value.status_code == 400 and "active run" in locked.value.message
    assert locked.value.code == "thread_locked"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)

    started = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
    assert cancelling.status in ("cancelling", "cancelled")
    run = wait_for(
        lambda: (
            (r := client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)).status
            == "cancelled"
            and r
        ),
        timeout=20,
        what="the run to be cancelled",
    )
    assert time.monotonic() - started < 15
    assert run.cancelled_at is not None and run.completed_at is None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)

    # the session was interrupted, not left busy: the next run executes at once
    started = time.monotonic()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Now sum below ten, and fix it"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    assert time.monotonic() - started < 30
    assert last_answer(client, thread.id) == "Fixed. The total is 45."


def test_delete_a_thread_while_its_run_executes(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "slow"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=coder(client))
    wait_for(lambda: code_steps(client, thread.id, run.id), what="the slow code to start")
    started = time.monotonic()
    assert client.beta.threads.delete(thread.id).deleted
    assert time.monotonic() - started < 20
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    time.sleep(0.5)
    rows = live_server.engine.store.all(
        "SELECT id FROM assistant_objects WHERE id = ? OR parent IN (?, ?)",
        (run.id, thread.id, run.id),
    )
    assert rows == []  # nothing written back by the stopped run


def test_cancel_a_run_that_waits_for_tool_outputs(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=WEATHER_TOOLS)
    thread_id, run = ask(client, assistant.id, "weather and time please")
    assert run.status == "requires_action"
    run = client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run.id)
    assert run.status == "cancelled" and run.required_action is None
    (step,) = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id).data
    assert step.status == "cancelled"
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="unlocked")


def test_expired_runs(client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "RUN_LIFETIME", 4)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=WEATHER_TOOLS)
    thread_id, run = ask(client, assistant.id, "weather and time please")
    assert run.status == "requires_action" and run.expires_at == run.created_at + 4
    run = wait_for(
        lambda: (
            (r := client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run.id)).status
            == "expired"
            and r
        ),
        timeout=10,
        what="the run to expire",
    )
    assert run.required_action is None
    (step,) = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id).data
    assert step.status == "expired"
    calls = step.step_details.tool_calls
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": c.id, "output": "late"} for c in calls],
        )
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="unlocked")

    # a run whose code outlives expires_at: expired, and the kernel is interrupted
    monkeypatch.setattr(service_module, "RUN_LIFETIME", 600)
    assistant_id = coder(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "slow, please"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    wait_for(lambda: code_steps(client, thread.id, run.id), what="the slow code to start")
    with monkeypatch.context() as later:  # ten minutes pass
        later.setattr(service_module, "now", lambda: int(time.time()) + 601)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    assert run.status == "expired"
    started = time.monotonic()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="sum below ten and fix it"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    assert time.monotonic() - started < 30  # not behind the 60 s sleep
    assert last_answer(client, thread.id) == "Fixed. The total is 45."


# --- run options ---


def test_run_options_reach_the_model(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o", instructions="ASSISTANT RULES", temperature=0.3
    )
    mark = model_mark()
    thread_id, run = ask(
        client,
        assistant.id,
        "hello there",
        instructions="RUN RULES",
        additional_instructions="ALSO THIS",
        model="gpt-4o-mini",
        top_p=0.5,
        max_completion_tokens=300,
        metadata={"m": "1"},
    )
    assert run.status == "completed", run.last_error
    assert (run.instructions, run.model, run.temperature, run.top_p) == (
        "RUN RULES",
        "gpt-4o-mini",
        0.3,
        0.5,
    )
    assert run.max_completion_tokens == 300 and run.metadata == {"m": "1"}
    assert last_answer(client, thread_id) == "no tools for me"
    (request,) = model_requests_since(mark)
    system = request["messages"][0]["content"]
    assert "RUN RULES" in system and "ALSO THIS" in system and "ASSISTANT RULES" not in system
    assert (request["model"], request["temperature"], request["top_p"]) == ("gpt-4o-mini", 0.3, 0.5)
    assert request["max_tokens"] == 300 and "tools" not in request
    updated = client.beta.threads.runs.update(
        thread_id=thread_id, run_id=run.id, metadata={"m": "2"}
    )
    assert updated.metadata == {"m": "2"}
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="again")
    second = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id
    )
    assert second.status == "completed"
    page = client.beta.threads.messages.list(thread_id=thread_id, run_id=run.id, limit=1)
    assert [m.run_id for m in page.data] == [run.id] and not page.has_more
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread_id)] == [second.id, run.id]
    thread_run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        poll_interval_ms=200,
        thread={"messages": [{"role": "user", "content": "in one call"}]},
    )
    assert thread_run.status == "completed"
    mine = client.beta.threads.messages.list(
        thread_id=thread_run.thread_id, run_id=thread_run.id
    ).data
    assert [m.role for m in mine] == ["assistant"]


def test_tool_choice(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "code_interpreter"}, *WEATHER_TOOLS]
    )

    mark = model_mark()
    thread_id, run = ask(
        client, assistant.id, "Just say hi", tool_choice={"type": "code_interpreter"}
    )
    assert run.status == "completed", run.last_error
    assert run.tool_choice.type == "code_interpreter"
    (call,) = code_steps(client, thread_id, run.id)
    assert call.code_interpreter.input == "print('forced')"
    assert call.code_interpreter.outputs[0].logs.strip() == "forced"
    first, second = model_requests_since(mark)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "python"}}
    assert second["tool_choice"] == "auto"  # forcing applies to the first turn only

    mark = model_mark()
    thread_id, run = ask(
        client, assistant.id, "Create a visualization of a sinewave", tool_choice="none"
    )
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread_id) == "no tools for me"
    assert code_steps(client, thread_id, run.id) == []
    (request,) = model_requests_since(mark)
    assert request["tool_choice"] == "none"

    thread_id, run = ask(
        client,
        assistant.id,
        "Just say hi",
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert run.status == "requires_action"
    (forced,) = run.required_action.submit_tool_outputs.tool_calls
    assert forced.function.name == "get_weather"
    client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run.id)

    with pytest.raises(openai.BadRequestError):
        ask(client, assistant.id, "hi", tool_choice={"type": "nonsense"})


def test_truncation_strategies(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    history: list[Any] = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n} " + "x" * 400}
        for n in range(8)
    ]
    history.append({"role": "user", "content": "the newest question"})

    def run_with(**options: Any) -> list[dict[str, Any]]:
        thread = client.beta.threads.create(messages=history)
        mark = model_mark()
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=200, **options
        )
        assert run.status == "completed", run.last_error
        (request,) = model_requests_since(mark)
        return conversation(request)

    everything = run_with()
    assert len(everything) == 9
    last_three = run_with(truncation_strategy={"type": "last_messages", "last_messages": 3})
    assert [m["content"][:6] for m in last_three] == ["turn 6", "turn 7", "the ne"]
    # auto: the newest messages that fit the budget (about 100 tokens per old turn here)
    within = run_with(truncation_strategy={"type": "auto"}, max_prompt_tokens=300)
    assert 1 < len(within) < 9
    assert within[-1]["content"] == "the newest question"
    assert [m["content"] for m in within] == [m["content"] for m in everything[-len(within) :]]

    thread = client.beta.threads.create(messages=[{"role": "user", "content": "y" * 4000}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"


# --- streaming ---


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text = ""
        self.created: list[ToolCall] = []
        self.done: list[ToolCall] = []
        self.texts: list[Text] = []

    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.text += delta.value or ""

    def on_text_done(self, text: Text) -> None:
        self.texts.append(text)

    def on_tool_call_created(self, tool_call: ToolCall) -> None:
        self.created.append(tool_call)

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.done.append(tool_call)


def in_order(events: list[str], expected: list[str]) -> bool:
    remaining = iter(events)
    return all(name in remaining for name in expected)


def test_streaming_with_the_event_handler(client: openai.OpenAI) -> None:
    assistant_id = visualizer(client)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Create a visualization of a sinewave"}]
    )
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert in_order(
        handler.events,
        [
            "thread.run.created",
            "thread.run.queued",
            "thread.run.in_progress",
            "thread.run.step.created",
            "thread.run.step.delta",
            "thread.run.step.completed",
            "thread.run.step.created",
            "thread.message.created",
            "thread.message.delta",
            "thread.message.completed",
            "thread.run.step.completed",
            "thread.run.completed",
        ],
    ), handler.events
    (call,) = handler.created
    assert call.type == "code_interpreter"
    # the SDK reports the last tool call done again when the run completes
    assert {c.id for c in handler.done} == {call.id}
    done = handler.done[0]
    assert done.code_interpreter.input.count("np.sin") == 1
    assert any(o.type == "image" for o in done.code_interpreter.outputs)
    assert "Here is the sine wave" in handler.text
    preamble, text = handler.texts
    assert preamble.value == "Let me plot it." and not preamble.annotations
    assert text.annotations[0].file_path.file_id
    final = handler.get_final_run()
    assert final.status == "completed"
    first, message = handler.get_final_messages()
    assert first.content[0].text.value == "Let me plot it."
    assert message.content[0].type == "image_file"
    stored = client.beta.threads.messages.retrieve(message_id=message.id, thread_id=thread.id)
    assert stored.content == message.content


class Timed(Recorder):
    """Also when each text delta and code-input delta arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.text_at: list[float] = []
        self.inputs: list[tuple[float, str]] = []
        self.message_done_at: list[float] = []

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        super().on_text_delta(delta, snapshot)
        if delta.value:
            self.text_at.append(time.monotonic())

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
        code = delta.code_interpreter if delta.type == "code_interpreter" else None
        if code is not None and code.input:
            self.inputs.append((time.monotonic(), code.input))

    def on_message_done(self, message: Message) -> None:
        self.message_done_at.append(time.monotonic())


def test_streamed_runs_send_real_token_deltas(client: openai.OpenAI) -> None:
    """Text and code reach the client as the model writes them, not as whole steps."""
    assistant_id = visualizer(client)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Create a visualization of a sinewave, stream slowly"}
        ]
    )
    handler = Timed()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.get_final_run().status == "completed"
    preamble, answer = handler.get_final_messages()
    final_text = "".join(p.text.value for m in (preamble, answer) for p in m.content if p.text)
    assert handler.text == final_text  # the deltas add up to the stored messages
    # several pieces of the answer, the first well before the message completes
    answer_deltas = [t for t in handler.text_at if t > handler.message_done_at[0]]
    assert len(answer_deltas) > 3
    assert handler.message_done_at[1] - answer_deltas[0] > 0.5
    # the code arrives in pieces while the model writes it, and adds up to the step's input
    assert len(handler.inputs) > 3
    assert handler.inputs[-1][0] - handler.inputs[0][0] > 0.5
    (call,) = code_steps(client, thread.id, handler.get_final_run().id)
    assert "".join(piece for _, piece in handler.inputs) == call.code_interpreter.input
    assert "np.sin" in call.code_interpreter.input
    (done,) = {c.id: c for c in handler.done}.values()
    assert done.code_interpreter.input == call.code_interpreter.input
    stored = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data[1:]
    assert [m.id for m in stored] == [preamble.id, answer.id]
    assert stored[1].content == answer.content
    (link,) = answer.content[-1].text.annotations
    assert link.text == "sandbox:/mnt/data/sine.png"


def test_a_run_cancelled_while_the_model_writes_keeps_an_incomplete_message(
    client: openai.OpenAI,
) -> None:
    assistant_id = visualizer(client)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Create a visualization of a sinewave, stream slowly"}
        ]
    )
    messages, run_id = 0, ""
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as stream:
        for event in stream:
            if event.event == "thread.run.created":
                run_id = event.data.id
            messages += event.event == "thread.message.created"
            if event.event == "thread.message.delta" and messages == 2:  # the answer begins
                client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run_id)
                break
    run = wait_for(
        lambda: (
            (r := client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run_id))
            and r.status in ("cancelled", "completed")
            and r
        ),
        what="the run to end",
    )
    assert run.status == "cancelled"
    found = client.beta.threads.messages.list(thread_id=thread.id, run_id=run_id, order="asc")
    preamble, answer = found.data
    assert preamble.status == "completed" and answer.status == "incomplete"
    assert answer.content[0].type == "image_file"  # the code ran before the cancel
    assert answer.content[-1].text.value.startswith("Here is the sine wave")


def test_streaming_function_calls_and_outputs(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=WEATHER_TOOLS)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "weather and time in Paris"}]
    )
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.events[-1] == "thread.run.requires_action"
    assert [c.function.name for c in handler.created] == ["get_weather", "get_time"]
    run = handler.get_final_run()
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    after = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        event_handler=after,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "sunny"},
            {"tool_call_id": calls[1].id, "output": "noon"},
        ],
    ) as stream:
        stream.until_done()
    assert after.events[0] == "thread.run.queued" and after.events[-1] == "thread.run.completed"
    assert after.text == "Weather: sunny. Time: noon."


def test_stream_true_on_create(client: openai.OpenAI) -> None:
    assistant_id = coder(client)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Compute it and fix it"}]
    )
    events = list(
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, stream=True)
    )
    names = [e.event for e in events]
    assert names[0] == "thread.run.created" and names[-1] == "thread.run.completed"
    assert names.count("thread.run.step.completed") == 3
    run_id = events[0].data.id
    assert events[-1].data.id == run_id
    deltas = [e.data.delta.content[0] for e in events if e.event == "thread.message.delta"]
    assert "".join(d.text.value or "" for d in deltas) == "Fixed. The total is 45."
    assert (
        client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run_id).status == "completed"
    )


# --- tenants and persistence ---


def test_tenants_never_see_each_other(client: openai.OpenAI, other: openai.OpenAI) -> None:
    upload = client.files.create(file=("mine.csv", CSV), purpose="assistants")
    assistant_id = coder(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "mine"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    message_id = client.beta.threads.messages.list(thread_id=thread.id).data[0].id
    step_id = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data[0].id

    for call in (
        lambda: other.beta.assistants.retrieve(assistant_id),
        lambda: other.beta.assistants.update(assistant_id, name="stolen"),
        lambda: other.beta.assistants.delete(assistant_id),
        lambda: other.beta.threads.retrieve(thread.id),
        lambda: other.beta.threads.update(thread.id, metadata={"a": "b"}),
        lambda: other.beta.threads.delete(thread.id),
        lambda: other.beta.threads.messages.list(thread_id=thread.id),
        lambda: other.beta.threads.messages.retrieve(message_id=message_id, thread_id=thread.id),
        lambda: other.beta.threads.messages.create(thread_id=thread.id, role="user", content="x"),
        lambda: other.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id),
        lambda: other.beta.threads.runs.list(thread_id=thread.id),
        lambda: other.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id),
        lambda: other.beta.threads.runs.steps.retrieve(
            step_id=step_id, thread_id=thread.id, run_id=run.id
        ),
        lambda: other.beta.assistants.create(
            model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": [upload.id]}}
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    their_assistant = other.beta.assistants.create(model="gpt-4o")
    with pytest.raises(openai.NotFoundError):  # nor mix their assistant with my thread
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=their_assistant.id)
    assert assistant_id not in [a.id for a in other.beta.assistants.list(limit=100)]
    theirs = other.get("/threads?limit=100", cast_to=object)
    assert thread.id not in [t["id"] for t in theirs["data"]]  # type: ignore[index]
    assert client.beta.assistants.retrieve(assistant_id).id == assistant_id


def test_a_restart_keeps_every_object(tmp_path: Path, model_server: ServerThread) -> None:
    settings = server_settings(tmp_path / "data", model_server, drain_timeout=0)
    server = LiveServer(settings)
    server.start()
    try:
        client = sdk(server)
        upload = client.files.create(file=("kept.csv", CSV), purpose="assistants")
        assistant = client.beta.assistants.create(
            model="gpt-4o",
            name="kept",
            tools=[{"type": "code_interpreter"}, *WEATHER_TOOLS],
            tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
            metadata={"a": "1"},
        )
        done_thread, done = ask(client, assistant.id, "sum the amount column of the csv")
        assert done.status == "completed", done.last_error
        waiting_thread, waiting = ask(client, assistant.id, "weather and time, please")
        assert waiting.status == "requires_action"
        busy_thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "slow"}], metadata={"b": "2"}
        )
        busy = client.beta.threads.runs.create(thread_id=busy_thread.id, assistant_id=assistant.id)
        wait_for(lambda: code_steps(client, busy_thread.id, busy.id), what="the slow code")
        before = {
            "assistant": client.beta.assistants.retrieve(assistant.id),
            "messages": client.beta.threads.messages.list(thread_id=done_thread).data,
            "run": client.beta.threads.runs.retrieve(thread_id=done_thread, run_id=done.id),
            "steps": client.beta.threads.runs.steps.list(
                thread_id=done_thread, run_id=done.id
            ).data,
        }
    finally:
        server.stop()

    server = LiveServer(settings)
    server.start()
    try:
        client = sdk(server)
        assert client.beta.assistants.retrieve(assistant.id) == before["assistant"]
        assert client.beta.threads.messages.list(thread_id=done_thread).data == before["messages"]
        assert (
            client.beta.threads.runs.retrieve(thread_id=done_thread, run_id=done.id)
            == before["run"]
        )
        assert (
            client.beta.threads.runs.steps.list(thread_id=done_thread, run_id=done.id).data
            == before["steps"]
        )
        assert client.beta.threads.retrieve(busy_thread.id).metadata == {"b": "2"}
        # a run that was executing cannot continue: it failed, and says why
        busy = client.beta.threads.runs.retrieve(thread_id=busy_thread.id, run_id=busy.id)
        assert busy.status == "failed" and "shut down" in busy.last_error.message
        # a run waiting for tool outputs still takes them
        calls = client.beta.threads.runs.retrieve(
            thread_id=waiting_thread, run_id=waiting.id
        ).required_action.submit_tool_outputs
        waiting = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=waiting_thread,
            run_id=waiting.id,
            poll_interval_ms=200,
            tool_outputs=[{"tool_call_id": c.id, "output": "ok"} for c in calls.tool_calls],
        )
        assert waiting.status == "completed", waiting.last_error
        # and the files are still there for a new run on the old thread
        client.beta.threads.messages.create(
            thread_id=done_thread, role="user", content="the csv amount sum again"
        )
        again = client.beta.threads.runs.create_and_poll(
            thread_id=done_thread, assistant_id=assistant.id
        )
        assert again.status == "completed", again.last_error
        assert last_answer(client, done_thread) == "The total amount is 1600.0."
    finally:
        server.stop()
