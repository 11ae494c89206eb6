"""Assistants v2 objects with the official openai SDK against a live server: assistants, threads
and messages, tenants that never see each other's, and every object kept across a restart.

Everything is real (uvicorn, Docker, the sandbox image, the SQLite store) except the model: the
scripted Chat Completions server in ``tests/support/model_server.py`` stands in for it, choosing its
script by keywords in the newest user message. Runs, streaming, files and the tutorials are in the
test_assistants_*.py modules beside this one.
"""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from ..support.assistants import CSV, WEATHER_TOOLS, ask, code_steps, last_answer, wait_for
from ..support.clients import coder, sdk
from ..support.servers import LiveServer, ServerThread, server_settings

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
