"""The library's service faces, in-process: engine.responses, engine.conversations,
engine.vector_stores, engine.assistants and engine.threads (every method, one test per resource),
and their twins on SyncEngine, against real sandboxes and the scripted model
(tests/support/model_server.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio

from engine import Engine, Settings, SyncEngine, errors
from engine.assistants.models import Run
from engine.responses.models import Response, ResponseStatus

from ..support.assistants import WEATHER_TOOLS
from ..support.engines import make_settings
from ..support.servers import ServerThread

CODE = {"type": "code_interpreter", "container": {"type": "auto"}}
OUTPUTS = "code_interpreter_call.outputs"
T = TypeVar("T")


def _settings(tmp_path: Path, model_server: ServerThread) -> Settings:
    return make_settings(
        tmp_path,
        llm_base_url=f"{model_server.url}/v1",
        llm_api_key="model-key",
        memory_limit_mb=512,
        file_search_embedder="none",
    )


@pytest_asyncio.fixture
async def engine(tmp_path: Path, model_server: ServerThread) -> AsyncIterator[Engine]:
    async with Engine(_settings(tmp_path, model_server)) as engine:
        yield engine


def _text(response: Response) -> str:
    items = [item.model_dump() for item in response.output]
    return "".join(
        c["text"] for i in items if i["type"] == "message" for c in i["content"] if "text" in c
    )


def _code_calls(response: Response) -> list[dict[str, object]]:
    items = [item.model_dump() for item in response.output]
    return [i for i in items if i["type"] == "code_interpreter_call"]


async def until(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """``fetch()`` again until ``done`` says yes (30 s at most)."""
    deadline = time.monotonic() + 30
    while not done(value := await fetch()):
        assert time.monotonic() < deadline, f"still {value!r}"
        await asyncio.sleep(0.1)
    return value


async def test_responses_face(engine: Engine) -> None:
    response = await engine.responses.create(model="gpt-4o", input="fix it", tools=[CODE])
    assert response.status is ResponseStatus.COMPLETED
    assert _text(response) == "Fixed. The total is 45."
    calls = _code_calls(response)
    assert [c["code"] for c in calls][-1] == "total = sum(range(10))\nprint(total)"
    assert calls[-1]["container_id"]  # the session it ran in is real
    assert engine.sessions.info(str(calls[-1]["container_id"]), "").status.value == "active"
    # as the route shows it: code outputs only when include asks for them
    assert all(c["outputs"] is None for c in calls)
    shown = _code_calls(await engine.responses.retrieve(response.id, include=[OUTPUTS]))
    assert shown[-1]["outputs"] == [{"type": "logs", "logs": "45"}]
    assert _code_calls(await engine.responses.retrieve(response.id))[-1]["outputs"] is None
    asked = await engine.responses.create(
        model="gpt-4o", input="fix it", tools=[CODE], include=[OUTPUTS]
    )
    assert _code_calls(asked)[-1]["outputs"] == [{"type": "logs", "logs": "45"}]
    assert _code_calls(await engine.responses.retrieve(asked.id))[-1]["outputs"]  # kept
    # the route writes the face's object: the same JSON as the stored response shown
    stored, created_with = engine.responses.service.get("", asked.id)
    face = await engine.responses.retrieve(asked.id)
    assert face.model_dump(mode="json", exclude={"store"}) == stored.shown(created_with)

    unstored = await engine.responses.create(model="gpt-4o", input="hello", store=False)
    assert unstored.store is False and _text(unstored) == "no tools for me"

    items = await engine.responses.input_items.list(response.id)
    assert [i.model_dump()["content"][0]["text"] for i in items.data] == ["fix it"]
    assert items.first_id == items.data[0].id and not items.has_more

    slow = await engine.responses.create(
        model="gpt-4o", input="slow", tools=[CODE], background=True
    )
    assert slow.status in (ResponseStatus.QUEUED, ResponseStatus.IN_PROGRESS)
    cancelled = await engine.responses.cancel(slow.id)
    assert cancelled.status is ResponseStatus.CANCELLED
    assert (await engine.responses.retrieve(slow.id)).status is ResponseStatus.CANCELLED

    with pytest.raises(errors.NotFound):  # another tenant does not see it
        await engine.responses.retrieve(response.id, owner="someone-else")
    with pytest.raises(errors.NotFound):
        await engine.responses.delete(response.id, owner="someone-else")
    deleted = await engine.responses.delete(response.id)
    assert deleted.deleted and deleted.id == response.id
    with pytest.raises(errors.NotFound):
        await engine.responses.retrieve(response.id)


async def test_a_response_request_is_validated_like_the_api(engine: Engine) -> None:
    with pytest.raises(errors.InvalidRequest, match="model"):
        await engine.responses.create(model="", input="hi")
    with pytest.raises(errors.InvalidRequest, match="stream"):
        await engine.responses.create(model="gpt-4o", input="hi", stream=True)


async def test_conversations_face(engine: Engine) -> None:
    hello = {"type": "message", "role": "user", "content": "hello"}
    conversation = await engine.conversations.create(items=[hello], metadata={"topic": "birds"})
    assert (await engine.conversations.retrieve(conversation.id)).metadata == {"topic": "birds"}
    updated = await engine.conversations.update(conversation.id, metadata={"topic": "bees"})
    assert updated.metadata == {"topic": "bees"}
    with pytest.raises(errors.NotFound):  # another tenant does not see it
        await engine.conversations.retrieve(conversation.id, owner="someone-else")

    again = {"type": "message", "role": "user", "content": "hello again"}
    added = await engine.conversations.items.create(conversation.id, items=[again])
    assert [i.model_dump()["content"][0]["text"] for i in added.data] == ["hello again"]
    listed = await engine.conversations.items.list(conversation.id, order="asc")
    texts = [i.model_dump()["content"][0]["text"] for i in listed.data]
    assert texts == ["hello", "hello again"]
    first = listed.data[0]
    found = await engine.conversations.items.retrieve(first.id, conversation_id=conversation.id)
    assert found.model_dump() == first.model_dump()
    after = await engine.conversations.items.delete(first.id, conversation_id=conversation.id)
    assert after.id == conversation.id
    left = await engine.conversations.items.list(conversation.id)
    assert [i.id for i in left.data] == [added.data[0].id]
    with pytest.raises(errors.InvalidRequest, match="items"):
        await engine.conversations.items.create(conversation.id, items=[])

    deleted = await engine.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.object == "conversation.deleted"
    with pytest.raises(errors.NotFound):
        await engine.conversations.retrieve(conversation.id)


async def test_vector_stores_face(engine: Engine) -> None:
    text = b"Herons nest beside the old weir.\n\nMoles dig tunnels under the lawn."
    obj = await engine.files.create(text, "notes.md", owner="t")
    store = await engine.vector_stores.create(name="notes", owner="t")
    added = await engine.vector_stores.files.create_and_poll(store.id, file_id=obj.id, owner="t")
    assert added.status == "completed", added.last_error
    assert (await engine.vector_stores.retrieve(store.id, owner="t")).file_counts.completed == 1
    listed = await engine.vector_stores.files.list(store.id, owner="t", filter="completed")
    assert [f.id for f in listed.data] == [obj.id]
    assert not (await engine.vector_stores.files.list(store.id, owner="t", filter="failed")).data
    got = await engine.vector_stores.files.retrieve(obj.id, vector_store_id=store.id, owner="t")
    assert got.status == "completed" and got.vector_store_id == store.id
    tagged = await engine.vector_stores.files.update(
        obj.id, vector_store_id=store.id, owner="t", attributes={"kind": "field notes"}
    )
    assert tagged.attributes == {"kind": "field notes"}
    content = await engine.vector_stores.files.content(obj.id, vector_store_id=store.id, owner="t")
    assert "Herons nest" in content.data[0].text and "Moles dig" in content.data[-1].text
    page = await engine.vector_stores.search(store.id, query="heron weir", owner="t")
    assert page.data and page.data[0].file_id == obj.id
    assert "Herons" in page.data[0].content[0].text
    assert page.data[0].attributes == {"kind": "field notes"}

    renamed = await engine.vector_stores.update(store.id, owner="t", name="garden notes")
    assert renamed.name == "garden notes"
    assert [s.id for s in (await engine.vector_stores.list(owner="t")).data] == [store.id]
    assert not (await engine.vector_stores.list()).data  # the library's own tenant is not "t"
    with pytest.raises(errors.NotFound):
        await engine.vector_stores.retrieve(store.id)

    more = await engine.files.create(b"Swifts sleep on the wing.", "birds.md", owner="t")
    batch = await engine.vector_stores.file_batches.create_and_poll(
        store.id, owner="t", file_ids=[more.id]
    )
    assert batch.status == "completed" and batch.file_counts.completed == 1
    again = await engine.vector_stores.file_batches.retrieve(
        batch.id, vector_store_id=store.id, owner="t"
    )
    assert again.model_dump() == batch.model_dump()
    in_batch = await engine.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=store.id, owner="t"
    )
    assert [f.id for f in in_batch.data] == [more.id]
    # a finished batch has nothing left to cancel: it stays as it was
    kept = await engine.vector_stores.file_batches.cancel(
        batch.id, vector_store_id=store.id, owner="t"
    )
    assert kept.status == "completed" and kept.file_counts.completed == 1
    queued = await engine.vector_stores.file_batches.create(
        store.id, owner="t", files=[{"file_id": obj.id, "attributes": {"n": 1}}]
    )
    assert queued.vector_store_id == store.id and queued.file_counts.total == 1
    with pytest.raises(errors.InvalidRequest, match="either file_ids or files"):
        await engine.vector_stores.file_batches.create(store.id, owner="t")

    removed = await engine.vector_stores.files.delete(more.id, vector_store_id=store.id, owner="t")
    assert removed.deleted and removed.object == "vector_store.file.deleted"
    with pytest.raises(errors.NotFound):
        await engine.vector_stores.files.retrieve(more.id, vector_store_id=store.id, owner="t")
    assert (await engine.vector_stores.delete(store.id, owner="t")).deleted
    with pytest.raises(errors.NotFound):
        await engine.vector_stores.retrieve(store.id, owner="t")


async def test_assistants_face(engine: Engine) -> None:
    assistant = await engine.assistants.create(
        model="gpt-4o", name="fixer", tools=[{"type": "code_interpreter"}]
    )
    assert (await engine.assistants.retrieve(assistant.id)).name == "fixer"
    updated = await engine.assistants.update(assistant.id, name="mender", metadata={"v": "2"})
    assert (updated.name, updated.metadata, updated.model) == ("mender", {"v": "2"}, "gpt-4o")
    assert [a.id for a in (await engine.assistants.list()).data] == [assistant.id]
    other = await engine.assistants.create(model="gpt-4o", name="second")
    first_page = await engine.assistants.list(limit=1, order="asc")
    assert [a.id for a in first_page.data] == [assistant.id] and first_page.has_more
    next_page = await engine.assistants.list(order="asc", after=first_page.last_id)
    assert [a.id for a in next_page.data] == [other.id] and not next_page.has_more
    with pytest.raises(errors.InvalidRequest, match="limit"):
        await engine.assistants.list(limit=0)
    assert not (await engine.assistants.list(owner="someone-else")).data
    with pytest.raises(errors.NotFound):
        await engine.assistants.retrieve(assistant.id, owner="someone-else")
    with pytest.raises(errors.InvalidRequest, match="model is required"):
        await engine.assistants.create(name="no model")
    with pytest.raises(errors.InvalidRequest, match="name"):
        await engine.assistants.create(model="gpt-4o", name="x" * 300)
    deleted = await engine.assistants.delete(assistant.id)
    assert deleted.deleted and deleted.object == "assistant.deleted"
    with pytest.raises(errors.NotFound):
        await engine.assistants.retrieve(assistant.id)


async def test_threads_messages_and_runs_face(engine: Engine) -> None:
    fixer = await engine.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = await engine.threads.create(messages=[{"role": "user", "content": "fix it"}])
    assert (await engine.threads.retrieve(thread.id)).id == thread.id
    tagged = await engine.threads.update(thread.id, metadata={"case": "42"})
    assert tagged.metadata == {"case": "42"}
    assert thread.id in [t.id for t in (await engine.threads.list()).data]

    run = await engine.threads.runs.create_and_poll(thread.id, assistant_id=fixer.id)
    assert run.status.value == "completed", run.last_error
    assert (await engine.threads.runs.retrieve(run.id, thread_id=thread.id)).status == run.status
    noted = await engine.threads.runs.update(run.id, thread_id=thread.id, metadata={"ok": "y"})
    assert noted.metadata == {"ok": "y"}
    assert [r.id for r in (await engine.threads.runs.list(thread.id)).data] == [run.id]
    steps = await engine.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    assert [s.type for s in steps.data][-1] == "message_creation"
    last = steps.data[-1]
    step = await engine.threads.runs.steps.retrieve(last.id, thread_id=thread.id, run_id=run.id)
    assert step.model_dump() == last.model_dump()

    messages = await engine.threads.messages.list(thread.id, order="asc")
    reply = messages.data[-1]
    assert reply.role == "assistant" and reply.run_id == run.id
    assert reply.model_dump()["content"][0]["text"]["value"] == "Fixed. The total is 45."
    only_run = await engine.threads.messages.list(thread.id, run_id=run.id)
    assert [m.id for m in only_run.data] == [reply.id]
    asked = await engine.threads.messages.create(thread.id, content="thanks")
    got = await engine.threads.messages.retrieve(asked.id, thread_id=thread.id)
    assert got.model_dump()["content"][0]["text"]["value"] == "thanks"
    marked = await engine.threads.messages.update(
        asked.id, thread_id=thread.id, metadata={"read": "1"}
    )
    assert marked.metadata == {"read": "1"}
    with pytest.raises(errors.NotFound):  # another tenant does not see the thread
        await engine.threads.messages.list(thread.id, owner="someone-else")

    # function tools: the run waits for the caller's outputs
    weather = await engine.assistants.create(model="gpt-4o", tools=WEATHER_TOOLS)
    ask = {"messages": [{"role": "user", "content": "What are the weather and time in Paris?"}]}
    waiting = await engine.threads.create_and_run_poll(assistant_id=weather.id, thread=ask)
    assert waiting.status.value == "requires_action", waiting.last_error
    assert waiting.required_action is not None
    calls = waiting.required_action.submit_tool_outputs.tool_calls
    outputs = [
        {"tool_call_id": c.id, "output": o} for c, o in zip(calls, ["22C", "14:05"], strict=True)
    ]
    done = await engine.threads.runs.submit_tool_outputs_and_poll(
        waiting.id, thread_id=waiting.thread_id, tool_outputs=outputs
    )
    assert done.status.value == "completed", done.last_error
    answer = (await engine.threads.messages.list(done.thread_id)).data[0].model_dump()
    assert answer["content"][0]["text"]["value"] == "Weather: 22C. Time: 14:05."

    started = await engine.threads.create_and_run(assistant_id=weather.id, thread=ask)
    assert started.thread_id != waiting.thread_id

    async def retrieve() -> Run:
        return await engine.threads.runs.retrieve(started.id, thread_id=started.thread_id)

    waiting = await until(
        retrieve, lambda r: r.status.value != "queued" and r.status.value != "in_progress"
    )
    assert waiting.status.value == "requires_action" and waiting.required_action is not None
    calls = waiting.required_action.submit_tool_outputs.tool_calls
    outputs = [
        {"tool_call_id": c.id, "output": o} for c, o in zip(calls, ["9C", "08:00"], strict=True)
    ]
    resumed = await engine.threads.runs.submit_tool_outputs(
        started.id, thread_id=started.thread_id, tool_outputs=outputs
    )
    assert resumed.id == started.id
    done = await until(retrieve, lambda r: r.status.value == "completed")
    answer = (await engine.threads.messages.list(done.thread_id)).data[0].model_dump()
    assert answer["content"][0]["text"]["value"] == "Weather: 9C. Time: 08:00."
    with pytest.raises(errors.InvalidRequest, match="stream"):
        await engine.threads.create_and_run(assistant_id=weather.id, stream=True)

    # a run cancelled while its code runs
    slow = await engine.threads.create(messages=[{"role": "user", "content": "slow"}])
    queued = await engine.threads.runs.create(slow.id, assistant_id=fixer.id)
    assert queued.status.value in ("queued", "in_progress")
    cancelling = await engine.threads.runs.cancel(queued.id, thread_id=slow.id)
    assert cancelling.status.value in ("cancelling", "cancelled")

    async def slow_run() -> Run:
        return await engine.threads.runs.retrieve(queued.id, thread_id=slow.id)

    assert (await until(slow_run, lambda r: r.status.value == "cancelled")).cancelled_at

    deleted = await engine.threads.delete(slow.id)
    assert deleted.deleted and deleted.object == "thread.deleted"
    with pytest.raises(errors.NotFound):
        await engine.threads.retrieve(slow.id)


def test_the_sync_twins_answer_the_same(tmp_path: Path, model_server: ServerThread) -> None:
    with SyncEngine(_settings(tmp_path, model_server)) as engine:
        response = engine.responses.create(
            model="gpt-4o", input="fix it", tools=[CODE], include=[OUTPUTS]
        )
        assert _text(response) == "Fixed. The total is 45."
        assert _code_calls(response)[-1]["outputs"] == [{"type": "logs", "logs": "45"}]
        assert engine.responses.retrieve(response.id).id == response.id
        assert engine.responses.input_items.list(response.id).data[0].type == "message"
        conversation = engine.conversations.create(metadata={"k": "v"})
        engine.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": "hi"}]
        )
        assert len(engine.conversations.items.list(conversation.id).data) == 1
        assert engine.conversations.delete(conversation.id).deleted

        obj = engine.files.create(b"Swifts sleep on the wing.", "birds.md")
        store = engine.vector_stores.create(name="birds")
        added = engine.vector_stores.files.create_and_poll(store.id, file_id=obj.id)
        assert added.status == "completed"
        assert engine.vector_stores.search(store.id, query="swifts").data[0].file_id == obj.id
        content = engine.vector_stores.files.content(obj.id, vector_store_id=store.id)
        assert content.data[0].text == "Swifts sleep on the wing."
        more = engine.files.create(b"Owls hunt at dusk.", "owls.md")
        batch = engine.vector_stores.file_batches.create_and_poll(store.id, file_ids=[more.id])
        assert batch.file_counts.completed == 1

        assistant = engine.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        assert engine.assistants.update(assistant.id, name="sync").name == "sync"
        thread = engine.threads.create()
        engine.threads.messages.create(thread.id, content="fix it")
        run = engine.threads.runs.create_and_poll(thread.id, assistant_id=assistant.id)
        assert run.status.value == "completed"
        last = engine.threads.messages.list(thread.id).data[0].model_dump()
        assert last["content"][0]["text"]["value"] == "Fixed. The total is 45."
        steps = engine.threads.runs.steps.list(run.id, thread_id=thread.id)
        assert steps.data[0].type == "message_creation"
        with pytest.raises(errors.InvalidRequest, match="stream"):
            engine.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True)
