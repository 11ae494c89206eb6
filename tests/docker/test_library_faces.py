"""The library's service faces, in-process: engine.responses, engine.vector_stores,
engine.assistants and engine.threads, and their twins on SyncEngine, against real sandboxes
and the scripted model (tests/support/model_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine import Engine, Settings, SyncEngine, errors
from engine.responses.models import Response, ResponseStatus

from ..support.engines import make_settings
from ..support.servers import ServerThread

CODE = {"type": "code_interpreter", "container": {"type": "auto"}}


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


async def test_a_response_runs_its_code_in_a_sandbox(engine: Engine) -> None:
    response = await engine.responses.create(model="gpt-4o", input="fix it", tools=[CODE])
    assert response.status is ResponseStatus.COMPLETED
    assert _text(response) == "Fixed. The total is 45."
    calls = _code_calls(response)
    assert [c["code"] for c in calls][-1] == "total = sum(range(10))\nprint(total)"
    assert calls[-1]["container_id"]  # the session it ran in is real
    assert engine.sessions.info(str(calls[-1]["container_id"]), "").status.value == "active"
    assert _text(await engine.responses.retrieve(response.id)) == _text(response)
    with pytest.raises(errors.EngineError):  # another tenant does not see it
        await engine.responses.retrieve(response.id, owner="someone-else")
    deleted = await engine.responses.delete(response.id)
    assert deleted.deleted and deleted.id == response.id


async def test_a_response_request_is_validated_like_the_api(engine: Engine) -> None:
    with pytest.raises(errors.InvalidRequest, match="model"):
        await engine.responses.create(model="", input="hi")
    with pytest.raises(errors.InvalidRequest, match="stream"):
        await engine.responses.create(model="gpt-4o", input="hi", stream=True)


async def test_a_vector_store_ingests_a_file_and_finds_it(engine: Engine) -> None:
    text = b"Herons nest beside the old weir.\n\nMoles dig tunnels under the lawn."
    obj = await engine.files.create(text, "notes.md", owner="t")
    store = await engine.vector_stores.create(name="notes", owner="t")
    added = await engine.vector_stores.files.create_and_poll(store.id, file_id=obj.id, owner="t")
    assert added.status == "completed", added.last_error
    assert (await engine.vector_stores.retrieve(store.id, owner="t")).file_counts.completed == 1
    listed = await engine.vector_stores.files.list(store.id, owner="t")
    assert [f.id for f in listed.data] == [obj.id]
    page = await engine.vector_stores.search(store.id, query="heron weir", owner="t")
    assert page.data and page.data[0].file_id == obj.id
    assert "Herons" in page.data[0].content[0].text
    with pytest.raises(errors.EngineError):
        await engine.vector_stores.retrieve(store.id)  # the library's own tenant is not "t"


async def test_an_assistant_run_on_a_thread_completes(engine: Engine) -> None:
    assistant = await engine.assistants.create(
        model="gpt-4o", name="fixer", tools=[{"type": "code_interpreter"}]
    )
    assert (await engine.assistants.retrieve(assistant.id)).name == "fixer"
    thread = await engine.threads.create(messages=[{"role": "user", "content": "fix it"}])
    run = await engine.threads.runs.create_and_poll(thread.id, assistant_id=assistant.id)
    assert run.status.value == "completed", run.last_error
    assert (await engine.threads.runs.retrieve(run.id, thread_id=thread.id)).status == run.status
    messages = await engine.threads.messages.list(thread.id, order="asc")
    reply = messages.data[-1].model_dump()
    assert reply["role"] == "assistant"
    assert reply["content"][0]["text"]["value"] == "Fixed. The total is 45."
    with pytest.raises(errors.InvalidRequest, match="model is required"):
        await engine.assistants.create(name="no model")


def test_the_sync_twins_answer_the_same(tmp_path: Path, model_server: ServerThread) -> None:
    with SyncEngine(_settings(tmp_path, model_server)) as engine:
        response = engine.responses.create(model="gpt-4o", input="fix it", tools=[CODE])
        assert _text(response) == "Fixed. The total is 45."
        assert engine.responses.retrieve(response.id).id == response.id

        obj = engine.files.create(b"Swifts sleep on the wing.", "birds.md")
        store = engine.vector_stores.create(name="birds")
        added = engine.vector_stores.files.create_and_poll(store.id, file_id=obj.id)
        assert added.status == "completed"
        assert engine.vector_stores.search(store.id, query="swifts").data[0].file_id == obj.id

        assistant = engine.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        thread = engine.threads.create()
        engine.threads.messages.create(thread.id, content="fix it")
        run = engine.threads.runs.create_and_poll(thread.id, assistant_id=assistant.id)
        assert run.status.value == "completed"
        last = engine.threads.messages.list(thread.id).data[0].model_dump()
        assert last["content"][0]["text"]["value"] == "Fixed. The total is 45."
