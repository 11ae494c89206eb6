"""The OpenAI-compatible Files and Containers endpoints, driven by the official openai SDK."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from engine import Settings

from ..support.clients import execute
from ..support.servers import LiveServer

BINARY = bytes(range(256)) * 64


def sdk(server: LiveServer, key: str = LiveServer.keys[0]) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0, timeout=120)


@pytest.fixture
def client(live_server: LiveServer) -> openai.OpenAI:
    return sdk(live_server)


@pytest.fixture
def other(live_server: LiveServer) -> openai.OpenAI:
    return sdk(live_server, LiveServer.keys[1])


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second live server whose file objects are capped at 1 MB."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("small"),
        api_keys="key-a",
        memory_limit_mb=512,
        max_file_mb=1,
        shutdown_sandboxes="close",
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()


# --- files ---


def test_file_upload_retrieve_content_delete(client: openai.OpenAI) -> None:
    created = client.files.create(file=("data.bin", BINARY), purpose="assistants")
    assert created.id.startswith("file-") and created.object == "file"
    assert created.bytes == len(BINARY) and created.filename == "data.bin"
    assert created.purpose == "assistants" and created.status == "processed"
    assert abs(created.created_at - time.time()) < 60 and created.expires_at is None
    assert client.files.retrieve(created.id) == created
    content = client.files.content(created.id)
    assert content.content == BINARY
    assert content.response.headers["content-length"] == str(len(BINARY))
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_file_list_filters_and_paginates(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"b{n}.jsonl", b"{}\n"), purpose="batch").id for n in range(5)]
    client.files.create(file=("other.txt", b"x"), purpose="user_data")
    first = client.files.list(purpose="batch", limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more is True
    assert first.has_next_page()
    walked = [f.id for f in client.files.list(purpose="batch", limit=2)]
    assert walked == ids[::-1]
    ascending = [f.id for f in client.files.list(purpose="batch", order="asc", limit=3)]
    assert ascending == ids
    after = client.files.list(purpose="batch", order="asc", after=ids[1], limit=2)
    assert [f.id for f in after.data] == ids[2:4] and after.has_more is True
    # OpenAI allows pages of up to 10,000: a big ask is served in pages of 100.
    assert [f.id for f in client.files.list(purpose="batch", limit=5000)] == ids[::-1]
    everything = {f.id for f in client.files.list()}
    assert set(ids) <= everything
    for file_id in ids:
        client.files.delete(file_id)


def test_file_errors(live_server: LiveServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.files.create(file=("a.txt", b"a"), purpose="nonsense")  # type: ignore[arg-type]
    assert "purpose" in bad.value.message
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("../../etc/passwd", b"a"), purpose="assistants")
    with pytest.raises(openai.BadRequestError):
        client.files.list(after="file-unknown")
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call("file-unknown")
    raw = httpx.post(
        f"{live_server.url}/v1/files",
        files={"file": ("a.txt", b"a")},
        headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    # expires_after is accepted (and ignored: files here never expire).
    kept = client.files.create(
        file=("k.txt", b"k"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert kept.expires_at is None
    client.files.delete(kept.id)


def test_upload_beyond_the_file_limit_is_413(small_server: LiveServer) -> None:
    client = sdk(small_server)
    # Within the request cap (file limit + 1 MB) but beyond the file limit: refused by the store.
    with pytest.raises(openai.APIStatusError) as stored:
        client.files.create(file=("big.bin", b"\0" * (1024 * 1024 + 1)), purpose="assistants")
    assert stored.value.status_code == 413
    # Beyond the request cap: refused before the body is read.
    with pytest.raises(openai.APIStatusError) as early:
        client.files.create(file=("huge.bin", b"\0" * (3 * 1024 * 1024)), purpose="assistants")
    assert early.value.status_code == 413
    assert early.value.body is not None and "code" in early.value.body  # type: ignore[operator]
    assert list(client.files.list()) == []


# --- containers ---


def test_container_lifecycle(live_server: LiveServer, client: openai.OpenAI) -> None:
    f = client.files.create(file=("input.csv", b"a,b\n1,2\n"), purpose="assistants")
    created = client.containers.create(
        name="analysis",
        file_ids=[f.id],
        memory_limit="1g",
        expires_after={"anchor": "last_active_at", "minutes": 5},
    )
    assert created.object == "container" and created.status == "running"
    assert created.name == "analysis" and created.memory_limit == "1g"
    assert created.expires_after is not None and created.expires_after.minutes == 5
    assert created.expires_after.anchor == "last_active_at"
    assert created.last_active_at is not None and created.last_active_at >= created.created_at
    assert live_server.engine.get_session(created.id).spec.memory_limit_mb == 1024
    ran = execute(live_server, created.id, "print(open('/mnt/data/input.csv').read(), end='')")
    assert ran["stdout"] == "a,b\n1,2\n"

    retrieved = client.containers.retrieve(created.id)
    assert (retrieved.id, retrieved.name, retrieved.status) == (created.id, "analysis", "running")
    # Names need not be unique: the same name makes a new container.
    twin = client.containers.create(name="analysis")
    assert twin.id != created.id and twin.memory_limit == "512m"
    named = [c.id for c in client.containers.list(name="analysis", limit=100)]
    assert set(named) >= {created.id, twin.id}
    assert all(c.name == "analysis" for c in client.containers.list(name="analysis"))

    assert client.containers.delete(created.id) is None
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.list(created.id)
    assert created.id not in [c.id for c in client.containers.list(limit=100)]
    # The session behind it is closed, seen through the native API.
    native = httpx.get(
        f"{live_server.url}/v1/sessions/{created.id}",
        headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
    ).json()
    assert native["status"] == "closed"
    client.containers.delete(twin.id)


def test_container_list_paginates(client: openai.OpenAI) -> None:
    name = f"page-{uuid.uuid4().hex[:8]}"
    ids = [client.containers.create(name=name).id for _ in range(3)]
    try:
        first = client.containers.list(name=name, limit=2)
        assert [c.id for c in first.data] == ids[::-1][:2] and first.has_more is True
        assert [c.id for c in client.containers.list(name=name, limit=2)] == ids[::-1]
        ascending = client.containers.list(name=name, order="asc", after=ids[0], limit=5)
        assert [c.id for c in ascending.data] == ids[1:] and ascending.has_more is False
    finally:
        for container_id in ids:
            client.containers.delete(container_id)


def test_an_idle_container_is_paused_and_resumes_with_its_variables(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    # Where OpenAI's container expires after its idle minutes, ours is paused and resumes.
    created = client.containers.create(name="idle")
    native = httpx.Client(
        base_url=f"{live_server.url}/v1/sessions/",
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=120,
    )
    made = native.post(f"{created.id}/execute", json={"code": "kept = 41"})
    assert made.status_code == 200, (made.status_code, made.text)
    assert made.json()["status"] == "ok"
    live_server.engine.get_session(created.id).last_active = 0  # the reaper (every 5 s) pauses it
    deadline = time.monotonic() + 60
    while native.get(created.id).json()["status"] != "paused":
        assert time.monotonic() < deadline, "the reaper did not pause the container"
        time.sleep(0.5)
    assert client.containers.retrieve(created.id).status == "running"
    assert client.containers.files.list(created.id).data == []  # this resumes it
    assert native.get(created.id).json()["status"] == "active"
    again = native.post(f"{created.id}/execute", json={"code": "print(kept + 1)"})
    assert again.json()["stdout"] == "42\n"
    client.containers.delete(created.id)


def test_container_files(live_server: LiveServer, client: openai.OpenAI) -> None:
    container = client.containers.create(name="files")
    f = client.files.create(file=("from-id.csv", b"x,y\n1,2\n"), purpose="assistants")
    by_id = client.containers.files.create(container.id, file_id=f.id)
    assert by_id.object == "container.file" and by_id.id == f.id
    assert (by_id.path, by_id.source, by_id.bytes) == ("/mnt/data/from-id.csv", "user", 8)
    assert by_id.container_id == container.id

    uploaded = client.containers.files.create(container.id, file=("upload.bin", BINARY))
    assert (uploaded.path, uploaded.source, uploaded.bytes) == (
        "/mnt/data/upload.bin",
        "user",
        len(BINARY),
    )
    assert uploaded.id.startswith("file-")  # the upload is also a file object
    assert client.files.retrieve(uploaded.id).bytes == len(BINARY)

    listed = client.containers.files.list(container.id)
    # Both within a second or two: ordered by created_at (seconds), then path.
    assert [c.id for c in listed.data] == [uploaded.id, by_id.id]  # newest first
    assert [c.id for c in client.containers.files.list(container.id, order="asc")] == [
        by_id.id,
        uploaded.id,
    ]
    paged = client.containers.files.list(container.id, limit=1)
    assert len(paged.data) == 1 and paged.has_more is True
    before = client.containers.files.list(
        container.id, order="asc", extra_query={"before": uploaded.id}
    )
    assert [c.id for c in before.data] == [by_id.id] and before.has_more is False
    with pytest.raises(openai.BadRequestError, match="before cursor"):
        client.containers.files.list(container.id, extra_query={"before": "cfile_nope"})
    assert [c.id for c in client.containers.files.list(container.id, limit=1)] == [
        uploaded.id,
        by_id.id,
    ]

    got = client.containers.files.retrieve(uploaded.id, container_id=container.id)
    assert got.model_dump() == uploaded.model_dump()
    content = client.containers.files.content.retrieve(uploaded.id, container_id=container.id)
    assert content.content == BINARY

    client.containers.files.delete(uploaded.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(uploaded.id, container_id=container.id)
    assert [c.id for c in client.containers.files.list(container.id)] == [by_id.id]
    ran = execute(live_server, container.id, "import os; print(sorted(os.listdir('.')))")
    assert ran["stdout"] == "['from-id.csv']\n"
    assert client.files.retrieve(uploaded.id).id == uploaded.id  # the file object stays
    client.containers.delete(container.id)


def test_file_written_by_code_is_an_assistant_file(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    container = client.containers.create(name="outputs")
    ran = execute(
        live_server,
        container.id,
        "import os; os.makedirs('charts', exist_ok=True)\n"
        "open('result.txt', 'w').write('forty-two')\n"
        "open('charts/c.bin', 'wb').write(bytes(range(256)))",
    )
    exported = {o["path"]: o["file_id"] for o in ran["outputs"]}
    files = {c.path: c for c in client.containers.files.list(container.id)}
    assert set(files) == {"/mnt/data/result.txt", "/mnt/data/charts/c.bin"}
    for path, cfile in files.items():
        assert cfile.source == "assistant" and cfile.id == exported[path]
    result = files["/mnt/data/result.txt"]
    assert result.bytes == 9
    got = client.containers.files.content.retrieve(result.id, container_id=container.id)
    assert got.content == b"forty-two"
    assert client.files.content(result.id).content == b"forty-two"
    nested = files["/mnt/data/charts/c.bin"]
    got = client.containers.files.content.retrieve(nested.id, container_id=container.id)
    assert got.content == bytes(range(256))
    # Rewritten by code: a new export, so a new id for the same path.
    execute(live_server, container.id, "open('result.txt', 'w').write('forty-three')")
    again = {c.path: c for c in client.containers.files.list(container.id)}
    assert again["/mnt/data/result.txt"].id != result.id
    assert again["/mnt/data/result.txt"].bytes == 11
    client.containers.delete(container.id)


def test_file_too_big_to_export_gets_a_path_id(small_server: LiveServer) -> None:
    client = sdk(small_server)
    container = client.containers.create(name="big")
    ran = execute(
        small_server, container.id, "open('big.bin', 'wb').write(bytes(range(256)) * 8192)"
    )
    assert ran["outputs"] == []  # 2 MB: beyond the 1 MB file-object limit
    (big,) = client.containers.files.list(container.id).data
    assert big.id.startswith("cfile_") and big.source == "assistant"
    assert big.path == "/mnt/data/big.bin" and big.bytes == 2 * 1024 * 1024
    assert client.containers.files.retrieve(big.id, container_id=container.id).id == big.id
    assert [c.id for c in client.containers.files.list(container.id)] == [big.id]  # stable
    got = client.containers.files.content.retrieve(big.id, container_id=container.id)
    assert got.content == bytes(range(256)) * 8192
    client.containers.files.delete(big.id, container_id=container.id)
    assert client.containers.files.list(container.id).data == []
    client.containers.delete(container.id)


def test_tenants_cannot_see_each_other(client: openai.OpenAI, other: openai.OpenAI) -> None:
    f = client.files.create(file=("secret.txt", b"secret"), purpose="assistants")
    container = client.containers.create(name="private", file_ids=[f.id])
    for call in (other.files.retrieve, other.files.content, other.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(f.id)
    assert f.id not in [x.id for x in other.files.list()]
    with pytest.raises(openai.NotFoundError):
        other.containers.create(name="steal", file_ids=[f.id])
    for container_call in (
        other.containers.retrieve,
        other.containers.delete,
        other.containers.files.list,
    ):
        with pytest.raises(openai.NotFoundError):
            container_call(container.id)
    assert container.id not in [c.id for c in other.containers.list(limit=100)]
    with pytest.raises(openai.NotFoundError):
        other.containers.files.retrieve(f.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        other.containers.files.content.retrieve(f.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        other.containers.files.delete(f.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        other.containers.files.create(container.id, file=("x.txt", b"x"))
    # Key b's own container cannot take key a's file either.
    theirs = other.containers.create(name="theirs")
    with pytest.raises(openai.NotFoundError):
        other.containers.files.create(theirs.id, file_id=f.id)
    other.containers.delete(theirs.id)
    # Still intact for its owner.
    assert client.containers.retrieve(container.id).status == "running"
    assert client.containers.files.retrieve(f.id, container_id=container.id).bytes == 6
    client.containers.delete(container.id)
    client.files.delete(f.id)


def test_container_errors(client: openai.OpenAI) -> None:
    for call in (
        client.containers.retrieve,
        client.containers.delete,
        client.containers.files.list,
    ):
        with pytest.raises(openai.NotFoundError):
            call("sess_unknown")
    with pytest.raises(openai.NotFoundError):
        client.containers.create(name="x", file_ids=["file-unknown"])
    with pytest.raises(openai.BadRequestError) as memory:
        client.containers.create(name="x", memory_limit="64g")
    assert "memory" in memory.value.message
    assert "memory_limit '64g' is above the maximum of" in memory.value.message
    with pytest.raises(openai.BadRequestError) as egress:
        client.containers.create(
            name="x", network_policy={"type": "allowlist", "allowed_domains": ["example.com"]}
        )
    assert "SANDBOX_EGRESS_ALLOWED_DOMAINS" in egress.value.message
    with pytest.raises(openai.BadRequestError):
        client.containers.create(
            name="x", expires_after={"anchor": "last_active_at", "minutes": 10**6}
        )
    with pytest.raises(openai.UnprocessableEntityError):
        client.containers.create(name="")
    container = client.containers.create(name="errors", network_policy={"type": "disabled"})
    try:
        for file_call in (
            client.containers.files.retrieve,
            client.containers.files.delete,
            client.containers.files.content.retrieve,
        ):
            with pytest.raises(openai.NotFoundError):
                file_call("file-unknown", container_id=container.id)
        with pytest.raises(openai.NotFoundError):
            client.containers.files.create(container.id, file_id="file-unknown")
        with pytest.raises(openai.BadRequestError):
            client.containers.files.create(container.id, file=("../escape.txt", b"x"))
        with pytest.raises(openai.BadRequestError):
            client.containers.files.list(container.id, after="file-unknown")
    finally:
        client.containers.delete(container.id)
