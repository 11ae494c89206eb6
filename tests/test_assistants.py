"""The seeds' three tutorials, end to end, with the official openai SDK against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from .conftest import LiveServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    yield openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=LiveServer.keys[0],
                        max_retries=0, timeout=120)


def visualizer(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions="You are a helpful AI assistant who makes interesting visualizations.",
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",
    )
    return assistant.id


def test_code_interpreter_tutorial(client: openai.OpenAI) -> None:
    assistant_id = visualizer(client)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread_id=thread.id, role="user",
                                        content="Create a visualization of a sinewave")
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
    assert text["value"][annotation["start_index"]:annotation["end_index"]] == annotation["text"]
    sine = client.files.content(annotation["file_path"]["file_id"]).content
    assert sine.startswith(PNG_MAGIC)
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    kinds = [s.type for s in reversed(steps.data)]
    assert kinds == ["tool_calls", "message_creation"]
    call = steps.data[-1].step_details.tool_calls[0]
    assert call.type == "code_interpreter" and "np.sin" in call.code_interpreter.input
    assert any(o.type == "image" for o in call.code_interpreter.outputs)

    client.beta.threads.messages.create(thread_id=thread.id, role="user",
                                        content="Show me the code you used to generate the sinewave")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert "np.sin" in latest.content[0].text.value

    client.beta.threads.messages.create(thread_id=thread.id, role="user",
                                        content="I prefer visualizations in dark mode, can you "
                                        "change the colors to make a dark mode version?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    dark_id = latest.content[0].image_file.file_id
    assert client.files.content(dark_id).content.startswith(PNG_MAGIC)
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 6
