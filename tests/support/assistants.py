"""What the Assistants tests ask of a live server through the official openai SDK (an assistant, a
run brought to rest, its answer and code steps) and of the scripted model (what it received)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import openai
from openai.types.beta.threads import Run

from .model_server import app as model_app

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


CSV = b"name,amount\nrent,1200\nfood,345.5\nbooks,54.5\n"


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
