"""Fast tests of the API layer's pieces, with no Docker: SSE framing, paging, auth, body limits,
upload bodies and file names, memory limits. Tiny FastAPI apps (or the real app without its
lifespan, which is what starts the engine) stand in for the service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.sse import ServerSentEvent
from fastapi.testclient import TestClient
from pydantic import BaseModel

from engine import errors
from engine.api import errors as api_errors
from engine.api.access_log import RequestLog
from engine.api.app import create_app
from engine.api.auth import KeyRing, Tenant
from engine.api.deps import FileBodyDep, FilePagingDep, PagingDep, attachment, parse_memory
from engine.api.limits import BodyLimits, json_depth
from engine.api.streaming import DONE, Events, encode, event_stream, framed
from engine.config import Settings
from engine.names import check_filename
from engine.paging import Page, page_list, page_query
from engine.store import Store

KEYS = ["sk-local-example", "sk-local-other"]


# --- server-sent events ---


def test_an_event_is_framed_with_its_name_and_json_data() -> None:
    frame = encode(ServerSentEvent(event="thread.run.created", data={"id": "run_1", "n": [1]}))
    assert frame == b'event: thread.run.created\ndata: {"id": "run_1", "n": [1]}\n\n'


def test_the_last_frame_is_data_done_unquoted() -> None:
    assert encode(DONE) == b"event: done\ndata: [DONE]\n\n"


def test_a_model_as_data_is_sent_as_json() -> None:
    class Result(BaseModel):
        status: str
        count: int

    frame = encode(ServerSentEvent(event="done", data=Result(status="ok", count=2)))
    assert json.loads(frame.decode().split("data: ", 1)[1]) == {"status": "ok", "count": 2}


async def _collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [frame async for frame in stream]


async def test_a_quiet_stream_gets_keep_alive_pings() -> None:
    async def slow() -> Events:
        yield ServerSentEvent(event="stdout", data={"text": "a"})
        await asyncio.sleep(0.35)
        yield ServerSentEvent(event="done", data={})

    frames = await _collect(framed(slow(), ping=0.1))
    assert frames[0].startswith(b"event: stdout\n")
    assert frames[-1].startswith(b"event: done\n")
    pings = frames[1:-1]
    assert len(pings) >= 2 and set(pings) == {b": ping\n\n"}


async def test_a_busy_stream_gets_no_pings() -> None:
    async def fast() -> Events:
        for n in range(50):
            yield ServerSentEvent(event="stdout", data={"n": n})

    frames = await _collect(framed(fast(), ping=5))
    assert len(frames) == 50 and all(f.startswith(b"event: stdout") for f in frames)


async def test_an_error_in_the_events_reaches_the_response() -> None:
    async def broken() -> Events:
        yield ServerSentEvent(event="stdout", data={})
        raise RuntimeError("boom")

    frames: list[bytes] = []
    with pytest.raises(RuntimeError, match="boom"):
        async for frame in framed(broken(), ping=5):
            frames.append(frame)
    assert len(frames) == 1


async def test_a_client_that_goes_away_gets_the_events_cleaned_up() -> None:
    """What a disconnect does: the response task is cancelled. The events' own cleanup (the
    interrupt of the execution) must run to its end even though it awaits."""
    cleaned = asyncio.Event()
    started = asyncio.Event()

    async def running() -> Events:
        try:
            yield ServerSentEvent(event="stdout", data={"text": "started"})
            started.set()
            await asyncio.sleep(60)
            yield ServerSentEvent(event="done", data={})
        finally:
            await asyncio.sleep(0.05)  # an await in the cleanup, like sending an interrupt
            cleaned.set()

    task = asyncio.ensure_future(_collect(framed(running(), ping=5)))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


def test_event_stream_on_the_wire() -> None:
    app = FastAPI()

    async def events() -> Events:
        yield ServerSentEvent(event="thread.run.created", data={"id": "run_1"})
        yield DONE

    @app.post("/runs")
    async def run() -> Any:
        return event_stream(events())

    r = TestClient(app).post("/runs")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert (
        r.text
        == 'event: thread.run.created\ndata: {"id": "run_1"}\n\nevent: done\ndata: [DONE]\n\n'
    )


# --- paging ---


class Obj(BaseModel):
    id: str


OBJECTS = [Obj(id=f"o{n}") for n in range(7)]  # oldest first


def _ids(page: Page[Obj]) -> list[str]:
    return [o.id for o in page.data]


@pytest.mark.parametrize(
    ("kwargs", "ids", "has_more"),
    [
        ({}, ["o6", "o5", "o4", "o3", "o2", "o1", "o0"], False),
        ({"limit": 3}, ["o6", "o5", "o4"], True),
        ({"limit": 3, "after": "o4"}, ["o3", "o2", "o1"], True),
        ({"limit": 3, "after": "o2"}, ["o1", "o0"], False),
        ({"order": "asc", "limit": 2, "after": "o1"}, ["o2", "o3"], True),
        ({"order": "asc", "limit": 2, "before": "o5"}, ["o3", "o4"], True),
        ({"order": "asc", "limit": 9, "before": "o2"}, ["o0", "o1"], False),
        ({"limit": 2, "before": "o2"}, ["o4", "o3"], True),
        ({"order": "asc", "after": "o1", "before": "o4"}, ["o2", "o3"], False),
        ({"order": "asc", "limit": 1, "after": "o1", "before": "o4"}, ["o2"], True),
        ({"order": "asc", "after": "o6"}, [], False),
    ],
)
def test_page_list_windows(kwargs: dict[str, Any], ids: list[str], has_more: bool) -> None:
    page = page_list(OBJECTS, **kwargs)
    assert (_ids(page), page.has_more) == (ids, has_more)
    assert page.first_id == (ids[0] if ids else None)
    assert page.last_id == (ids[-1] if ids else None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 100"),
        ({"limit": 101}, "limit must be an integer from 1 to 100"),
        ({"limit": True}, "limit must be an integer"),
        ({"order": "newest"}, "order must be 'asc' or 'desc', not 'newest'"),
        ({"after": "nope"}, "after cursor 'nope' does not name an object of this list"),
        ({"before": "nope"}, "before cursor 'nope' does not name an object of this list"),
    ],
)
def test_page_list_refuses_bad_paging(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        page_list(OBJECTS, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "engine.db")
    for n, obj in enumerate(OBJECTS):
        owner = "t_other" if n == 3 else "t_me"
        store.insert(
            "files",
            {
                "id": obj.id,
                "owner": owner,
                "filename": "f",
                "purpose": "assistants",
                "bytes": 0,
                "mime_type": "text/plain",
                "sha256": "",
                "created_at": 0,
            },
        )
    yield store
    store.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"limit": 2},
        {"limit": 2, "after": "o5"},
        {"order": "asc", "limit": 2, "after": "o0"},
        {"order": "asc", "limit": 2, "before": "o6"},
        {"limit": 1, "before": "o1"},
        {"order": "asc", "after": "o0", "before": "o5"},
    ],
)
def test_page_query_follows_the_rules_of_page_list(store: Store, kwargs: dict[str, Any]) -> None:
    mine = [o for n, o in enumerate(OBJECTS) if n != 3]
    rows, has_more = page_query(store, "files", {"owner": "t_me"}, **kwargs)
    expected = page_list(mine, **kwargs)
    assert ([r["id"] for r in rows], has_more) == (_ids(expected), expected.has_more)


def test_page_query_refuses_unknown_cursors_and_bad_limits(store: Store) -> None:
    with pytest.raises(errors.InvalidRequest, match="after cursor 'o99'"):
        page_query(store, "files", {}, after="o99")
    with pytest.raises(errors.InvalidRequest, match="limit"):
        page_query(store, "files", {}, limit=1000)


def test_page_query_looks_cursors_up_in_the_list_only(store: Store) -> None:
    # o3 is another owner's: a row of the table, not of this owner's list, so no cursor here.
    with pytest.raises(errors.InvalidRequest, match="after cursor 'o3'"):
        page_query(store, "files", {"owner": "t_me"}, after="o3")
    with pytest.raises(errors.InvalidRequest, match="before cursor 'o3'"):
        page_query(store, "files", {"owner": "t_me"}, before="o3")
    rows, _ = page_query(store, "files", {"owner": "t_me"}, before="o5")
    assert [r["id"] for r in rows] == [o.id for o in OBJECTS[6:]][::-1]
    # With a cursor scope, the cursor need only match those filters (a live list's session
    # stays a cursor once it has ended).
    rows, _ = page_query(
        store, "files", {"owner": "t_me", "purpose": "x"}, after="o5", cursor_scope=("owner",)
    )
    assert rows == []
    with pytest.raises(errors.InvalidRequest, match="after cursor 'o3'"):
        page_query(
            store, "files", {"owner": "t_me", "purpose": "x"}, after="o3", cursor_scope=("owner",)
        )


def test_the_paging_query_is_checked_and_documented() -> None:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/things")
    async def things(paging: PagingDep) -> dict[str, Any]:
        return paging.window()

    @app.get("/files")
    async def files(paging: FilePagingDep) -> dict[str, Any]:
        return paging.window()

    client = TestClient(app)
    assert client.get("/things").json() == {
        "limit": 20,
        "order": "desc",
        "after": None,
        "before": None,
    }
    assert client.get("/things", params={"before": "x", "order": "asc"}).json()["before"] == "x"
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "up"}, {"limit": "ten"}):
        r = client.get("/things", params=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_value", bad
    # OpenAI's Files list takes up to 10,000: full pages of 100, then has_more
    assert client.get("/files", params={"limit": 5000}).json()["limit"] == 100
    assert client.get("/files", params={"limit": 10_001}).status_code == 422
    params = app.openapi()["paths"]["/things"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["limit", "order", "after", "before"]
    assert all(p.get("description") for p in params)


# --- auth ---


@pytest.fixture
def auth_client() -> TestClient:
    app = FastAPI()
    api_errors.install(app)
    app.state.keys = KeyRing(KEYS)

    @app.get("/whoami")
    async def whoami(tenant: Tenant) -> dict[str, str]:
        return {"tenant": tenant}

    return TestClient(app)


def test_a_bearer_key_and_an_azure_api_key_name_the_same_tenant(auth_client: TestClient) -> None:
    bearer = auth_client.get("/whoami", headers={"Authorization": f"Bearer {KEYS[0]}"})
    azure = auth_client.get("/whoami", headers={"api-key": KEYS[0]})
    other = auth_client.get("/whoami", headers={"Authorization": f"bearer  {KEYS[1]} "})
    assert bearer.status_code == azure.status_code == other.status_code == 200
    assert bearer.json() == azure.json() != other.json()
    assert bearer.json()["tenant"].startswith("t_") and KEYS[0] not in bearer.text


@pytest.mark.parametrize(
    ("headers", "code", "message"),
    [
        ({}, "missing_api_key", "missing API key"),
        ({"Authorization": KEYS[0]}, "invalid_api_key", 'must look like "Bearer <key>"'),
        ({"Authorization": "Bearer"}, "invalid_api_key", 'must look like "Bearer <key>"'),
        ({"Authorization": f"Basic {KEYS[0]}"}, "invalid_api_key", "must look like"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key", "invalid API key"),
        ({"api-key": "sk-wrong"}, "invalid_api_key", "invalid API key"),
    ],
)
def test_refused_keys_get_a_401_that_names_what_was_sent(
    auth_client: TestClient, headers: dict[str, str], code: str, message: str
) -> None:
    r = auth_client.get("/whoami", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["code"] == code and message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_without_keys_everyone_is_one_tenant() -> None:
    app = FastAPI()
    app.state.keys = KeyRing([])

    @app.get("/whoami")
    async def whoami(tenant: Tenant) -> dict[str, str]:
        return {"tenant": tenant}

    assert TestClient(app).get("/whoami").json() == {"tenant": ""}


def test_the_key_ring_compares_every_key() -> None:
    ring = KeyRing(KEYS)
    assert ring.tenant(KEYS[1]) is not None and ring.tenant(KEYS[1]) != ring.tenant(KEYS[0])
    assert ring.tenant(KEYS[0] + "x") is None and ring.tenant("") is None


# --- the real app, without its lifespan (which starts the engine) ---

LOCAL = "http://127.0.0.1"
"""The app answers loopback Host names (engine/api/hosts.py), not TestClient's "testserver"."""


def _app(tmp_path: Path, **settings: Any) -> TestClient:
    app = create_app(Settings(data_dir=tmp_path, api_keys=",".join(KEYS), **settings))
    app.state.engine = None  # routes that reach the engine are not called here
    return TestClient(app, base_url=LOCAL)


def test_the_openapi_documents_both_key_schemes(tmp_path: Path) -> None:
    spec = _app(tmp_path).get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["HTTPBearer"]["description"],
    }
    assert schemes["APIKeyHeader"]["in"] == "header"
    assert schemes["APIKeyHeader"]["name"] == "api-key"


@pytest.mark.parametrize(
    "route",
    [
        "/v1/files",
        "/v1/sessions/{session_id}/files",
        "/v1/containers/{container_id}/files",
        "/files/upload",
        "/files",
    ],
)
def test_every_upload_route_documents_its_body(tmp_path: Path, route: str) -> None:
    spec = _app(tmp_path).get("/openapi.json").json()
    content = spec["paths"][route]["post"]["requestBody"]["content"]
    schema = content["multipart/form-data"]["schema"]
    assert "file" in schema["required"] and schema["properties"]["file"]["format"] == "binary"


def test_a_too_large_body_gets_413_with_a_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = _app(tmp_path, max_body_mb=1)
    with caplog.at_level("INFO", logger="engine.api"):
        r = client.post(
            "/v1/sessions",
            content=b'{"thread_id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            headers={"content-type": "application/json", "Authorization": f"Bearer {KEYS[0]}"},
        )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert r.headers["x-request-id"].startswith("req_")
    logged = [rec for rec in caplog.records if rec.getMessage() == "request"]
    assert [getattr(rec, "status", None) for rec in logged] == [413]
    assert getattr(logged[0], "request_id", None) == r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("content_type", "said"), [(None, "no Content-Type"), ("text/plain", "'text/plain'")]
)
def test_json_without_a_json_content_type_is_answered_about_the_content_type(
    tmp_path: Path, content_type: str | None, said: str
) -> None:
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    if content_type:
        headers["content-type"] = content_type
    r = _app(tmp_path).post("/v1/sessions", content=b'{"thread_id": "t"}', headers=headers)
    assert r.status_code == 415, r.text
    message = r.json()["error"]["message"]
    assert "Content-Type: application/json" in message and said in message
    assert "valid dictionary" not in message


@pytest.mark.parametrize("require", [False, True])
def test_metrics_need_a_key_only_when_the_setting_asks(tmp_path: Path, require: bool) -> None:
    client = _app(tmp_path, metrics_require_key=require)
    anonymous = client.get("/metrics")
    assert anonymous.status_code == (401 if require else 200)
    if require:
        assert anonymous.json()["error"]["code"] == "missing_api_key"
        assert client.get("/metrics", headers={"Authorization": "Bearer sk-no"}).status_code == 401
    keyed = client.get("/metrics", headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert keyed.status_code == 200 and "python_gc_objects" in keyed.text


def test_metrics_require_key_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().metrics_require_key is False
    monkeypatch.setenv("SANDBOX_METRICS_REQUIRE_KEY", "true")
    assert Settings().metrics_require_key is True


# --- body limits ---


@pytest.fixture
def limited() -> TestClient:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.post("/upload")
    async def upload(body: FileBodyDep) -> dict[str, Any]:
        name, data = body.file()
        return {"name": name, "bytes": len(data.read())}

    api_errors.install(app)
    app.add_middleware(BodyLimits, max_body=1000, max_upload=5000, max_depth=8)
    app.add_middleware(RequestLog)
    return TestClient(app)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"a": 1}', 200, None),
        (b'{"a": "' + b"x" * 1000 + b'"}', 413, "payload_too_large"),
        (b'{"a": ' * 9 + b"1" + b"}" * 9, 400, "json_too_deep"),
        (b'{"a": ' * 7 + b"1" + b"}" * 7, 200, None),
        (b'{"a": "[[[[[[[[[[[[[[[["}', 200, None),  # brackets in a string are not depth
        (b'{"a": "\xff"}', 400, "invalid_json"),
        (b'{"a": "\\ud800"}', 400, "invalid_json"),
        (b'{"a": "\\ud83d\\ude00"}', 200, None),  # a surrogate pair is fine
    ],
)
def test_json_bodies_are_limited(
    limited: TestClient, body: bytes, status: int, code: str | None
) -> None:
    r = limited.post("/echo", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["x-request-id"]
    if code:
        assert r.json()["error"]["code"] == code


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    sent = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def run() -> None:
        limits = BodyLimits(app, max_body=10, max_upload=10, max_depth=4)
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [(b"content-length", b"11"), (b"content-type", b"application/json")],
        }

        async def receive() -> dict[str, Any]:
            raise AssertionError("the body must not be read")

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await limits(scope, receive, send)

    asyncio.run(run())
    assert sent[0]["status"] == 413


def test_an_upload_over_its_limit_is_413(limited: TestClient) -> None:
    r = limited.post("/upload", files={"file": ("big.bin", b"x" * 6000)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert r.headers["x-request-id"]
    small = limited.post("/upload", files={"file": ("small.bin", b"x" * 3000)})
    assert small.json() == {"name": "small.bin", "bytes": 3000}


def test_json_depth_is_a_scan() -> None:
    assert json_depth(b"[" * 100_000) == 100_000  # no recursion limit
    assert json_depth(b'{"a": "\\"[[["}') == 1


# --- upload bodies and file names ---


def _multipart(disposition: bytes, data: bytes = b"hello") -> tuple[bytes, dict[str, str]]:
    boundary = b"unit-boundary"
    body = (
        b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}


@pytest.mark.parametrize(
    ("disposition", "problem"),
    [
        (b'form-data; name="file"; filename="caf\xe9.csv"', "not valid UTF-8"),
        (b'form-data; name="file"; filename=""', "empty filename"),
        (b'form-data; name="file"; filename="   "', "empty filename"),
        (b'form-data; name="file"', "needs a `file` part with a filename"),
        (b'form-data; name="other"; filename="a.csv"', "needs a `file` part"),
        (b'form-data; name="file"; filename="../etc/passwd"', "traversal"),
        (b'form-data; name="file"; filename="a\xe2\x80\xaegnp.exe"', "control character"),
    ],
)
def test_a_bad_upload_name_is_a_400_that_names_the_problem(
    limited: TestClient, disposition: bytes, problem: str
) -> None:
    body, headers = _multipart(disposition)
    r = limited.post("/upload", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert problem in r.json()["error"]["message"]


def test_a_utf8_upload_name_arrives_as_sent(limited: TestClient) -> None:
    body, headers = _multipart(b'form-data; name="file"; filename="caf\xc3\xa9 \xe6\x95\xb0.csv"')
    r = limited.post("/upload", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"name": "café 数.csv", "bytes": 5}


def test_a_json_body_is_not_an_upload(limited: TestClient) -> None:
    r = limited.post("/upload", json={"file_id": "file-1"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("..", "traversal"),
        (".", "traversal"),
        ("../x", "traversal"),
        ("a/b", "'/'"),
        ("/etc/passwd", "absolute"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control character"),
        ("\u202ecod.exe", "control character"),
        ("x\u2066y", "control character"),
        ("%2e%2e", "percent-encoded"),
        ("a%2fb", "percent-encoded"),
        ("\ud800.txt", "lone surrogate"),
        ("x" * 256, "longer than 255 bytes"),
        (" lead", "spaces"),
        (5, "must be a string"),
    ],
)
def test_hostile_file_names_are_refused(name: Any, problem: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=problem):
        check_filename(name)


@pytest.mark.parametrize(
    ("name", "kept"),
    [("data.csv", "data.csv"), ("/mnt/data/x.csv", "x.csv"), ("résumé 1.pdf", "résumé 1.pdf")],
)
def test_fair_file_names_are_kept(name: str, kept: str) -> None:
    assert check_filename(name) == kept


# --- memory limits ---


@pytest.mark.parametrize(
    ("value", "mb"),
    [
        (None, None),
        ("1g", 1024),
        ("4G", 4096),
        ("512m", 512),
        ("512MB", 512),
        ("1gb", 1024),
        (" 2g ", 2048),
        ("300", 300),
        (256, 256),
    ],
)
def test_memory_limits_parse(value: str | int | None, mb: int | None) -> None:
    assert parse_memory(value, 4096) == mb


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("100g", "memory_limit '100g' is above the maximum of 4096 MB; send e.g. '1g' or '512m'"),
        (5000, "memory_limit 5000 is above the maximum of 4096 MB"),
        ("10m", "memory_limit '10m' is below the minimum of 64 MB"),
        ("lots", "memory_limit must look like '1g' or '512m' (or a number of MB), not 'lots'"),
        ("1.5g", "not '1.5g'"),
        ("9" * 5000, "must look like"),  # not an int() of 5,000 digits
        (True, "must look like"),
    ],
)
def test_memory_limit_refusals_name_the_value_sent(value: Any, said: str) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        parse_memory(value, 4096)
    assert said in str(refused.value)


# --- the playground's config ---


def test_the_playground_starts_with_the_configured_model_else_a_default(tmp_path: Path) -> None:
    def config(**llm: Any) -> dict[str, Any]:
        app = create_app(settings=Settings(data_dir=tmp_path, **llm))
        return TestClient(app, base_url=LOCAL).get("/v1/playground/config").json()

    nowhere = "http://127.0.0.1:9/v1"  # refused at once: no model list to read
    assert config(llm_base_url=nowhere, llm_model="my-deployment")["default_model"] == (
        "my-deployment"
    )
    assert config(llm_base_url=nowhere)["default_model"] == "gpt-4o-mini"
    unset = config()
    assert unset["model_configured"] is False and unset["default_model"] is None
    assert unset["key_required"] is False
    listed = TestClient(create_app(settings=Settings(data_dir=tmp_path)), base_url=LOCAL).get(
        "/v1/playground/models"
    )
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_a_download_is_saved_under_its_name_and_never_sniffed() -> None:
    headers = attachment("rapport d'été <1>.html")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''rapport%20d%27%C3%A9t%C3%A9%20%3C1%3E.html"
    )
