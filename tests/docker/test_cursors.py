"""List cursors are looked up in the caller's own list: another tenant's id answers exactly as a
made-up one does (400), so a cursor is no oracle for other tenants' objects or their creation
times. Every list route that takes ``after``/``before`` is checked with two keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from ..support.servers import LiveServer

KEY_A, KEY_B = LiveServer.keys


@dataclass
class Tenant:
    """One key's objects: one of each kind, to list and to use as a cursor."""

    http: httpx.Client
    sdk: openai.OpenAI
    ids: dict[str, str]


def make_tenant(server: LiveServer, key: str) -> Tenant:
    http = httpx.Client(
        base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=120
    )
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)
    ids: dict[str, str] = {}
    f = sdk.files.create(file=("notes.txt", b"the cursor test\n"), purpose="assistants")
    ids["file"] = f.id
    store = sdk.vector_stores.create(name="cursors", file_ids=[f.id])
    ids["vector_store"] = store.id
    assistant = sdk.beta.assistants.create(model="scripted", name="cursors")
    ids["assistant"] = assistant.id
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    ids["thread"] = thread.id
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    ids["run"] = run.id
    ids["message"] = sdk.beta.threads.messages.list(thread.id).data[0].id
    ids["step"] = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0].id
    container = sdk.containers.create(name="cursors")
    ids["container"] = container.id
    ids["container_file"] = sdk.containers.files.create(container.id, file_id=f.id).id
    response = sdk.responses.create(model="scripted", input="hello")
    ids["response"] = response.id
    input_item = sdk.responses.input_items.list(response.id).data[0]
    assert input_item.id is not None
    ids["input_item"] = input_item.id
    conversation = sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hi"}]
    )
    ids["conversation"] = conversation.id
    item = sdk.conversations.items.list(conversation.id).data[0]
    assert item.id is not None
    ids["conversation_item"] = item.id
    return Tenant(http, sdk, ids)


@pytest.fixture(scope="module")
def tenants(live_server: LiveServer) -> Iterator[tuple[Tenant, Tenant]]:
    a, b = make_tenant(live_server, KEY_A), make_tenant(live_server, KEY_B)
    yield a, b
    for t in (a, b):
        t.sdk.containers.delete(t.ids["container"])
        t.http.close()


# (route, the kind of object its items are); the route's {names} are the caller's own ids.
ROUTES = [
    ("/files", "file"),
    ("/vector_stores", "vector_store"),
    ("/vector_stores/{vector_store}/files", "file"),
    ("/assistants", "assistant"),
    ("/threads", "thread"),
    ("/threads/{thread}/messages", "message"),
    ("/threads/{thread}/runs", "run"),
    ("/threads/{thread}/runs/{run}/steps", "step"),
    ("/containers", "container"),
    ("/containers/{container}/files", "container_file"),
    ("/sessions", "container"),
    ("/responses/{response}/input_items", "input_item"),
    ("/conversations/{conversation}/items", "conversation_item"),
]


@pytest.mark.parametrize(("route", "kind"), ROUTES, ids=[r for r, _ in ROUTES])
@pytest.mark.parametrize("cursor", ["after", "before"])
def test_another_tenants_id_is_an_unknown_cursor(
    tenants: tuple[Tenant, Tenant], route: str, kind: str, cursor: str
) -> None:
    a, b = tenants
    path = route.format(**b.ids)
    own = b.http.get(path, params={cursor: b.ids[kind]})
    assert own.status_code == 200, own.text  # the control: the list and its own cursor work
    made_up = b.http.get(path, params={cursor: b.ids[kind][:-4] + "0000"})
    assert made_up.status_code == 400, made_up.text
    foreign = b.http.get(path, params={cursor: a.ids[kind]})
    assert foreign.status_code == 400, foreign.text
    assert foreign.json()["error"]["type"] == made_up.json()["error"]["type"]
    assert foreign.json()["error"]["message"].replace(a.ids[kind], "X") == made_up.json()["error"][
        "message"
    ].replace(b.ids[kind][:-4] + "0000", "X")
