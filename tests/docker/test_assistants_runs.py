"""Assistants runs with the official openai SDK against a live server and the scripted model:
function calling, the loop (retries, limits, cancel, expiry) and run options."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from engine.assistants import service as service_module

from ..support.assistants import (
    WEATHER_TOOLS,
    ask,
    code_steps,
    conversation,
    last_answer,
    model_mark,
    model_requests_since,
    wait_for,
)
from ..support.clients import coder, sdk
from ..support.servers import LiveServer, ServerThread, server_settings


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
    polled = client.beta.threads.runs.with_raw_response.retrieve(thread_id=thread.id, run_id=run.id)
    assert polled.parse().status == "in_progress"
    assert polled.headers["openai-poll-after-ms"] == "200"  # how long the SDK's pollers wait

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
