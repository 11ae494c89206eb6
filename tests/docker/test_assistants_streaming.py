"""Assistants streaming with the official openai SDK against a live server and the scripted
model: the event handler, token deltas, cancels mid-message, function calls, stream=True."""

from __future__ import annotations

import time

import openai
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Text, TextDelta
from openai.types.beta.threads.runs import ToolCall, ToolCallDelta

from ..support.assistants import WEATHER_TOOLS, code_steps, visualizer, wait_for
from ..support.clients import coder

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
