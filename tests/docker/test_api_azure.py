"""Azure dynamic-sessions endpoints against a live server: LangChain's real client, both shapes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import langchain_azure_dynamic_sessions as lads
import pytest

from ..support.servers import LiveServer

KEY_A, KEY_B = LiveServer.keys
PREVIEW = {"api-version": "2024-02-02-preview"}
LATEST = {"api-version": "2025-02-02-preview"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server.url, timeout=120, headers={"Authorization": f"Bearer {KEY_A}"}
    ) as c:
        yield c


@pytest.fixture
def identifier(live_server: LiveServer) -> Iterator[str]:
    """A fresh identifier; its sessions (under either key) are deleted afterwards."""
    ident = f"azure-{uuid.uuid4().hex[:12]}"
    yield ident
    for key in LiveServer.keys:
        r = httpx.delete(
            f"{live_server.url}/session",
            params={"identifier": ident},
            headers={"api-key": key},
            timeout=60,
        )
        assert r.status_code == 204


def preview_execute(
    client: httpx.Client, identifier: str, code: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "properties": {
            "codeInputType": "inline",
            "executionType": "synchronous",
            "code": code,
            **extra,
        }
    }
    r = client.post("/code/execute", params={"identifier": identifier, **PREVIEW}, json=body)
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()
    assert payload["$id"] == "1" and payload["properties"]["$id"] == "2"
    properties: dict[str, Any] = payload["properties"]
    return properties


def test_langchain_client_executes_uploads_lists_downloads(
    live_server: LiveServer, identifier: str
) -> None:
    tool = lads.SessionsPythonREPLTool(
        pool_management_endpoint=live_server.url,
        access_token_provider=lambda: KEY_A,
        session_id=identifier,
    )
    assert json.loads(tool.invoke("print(1+1)")) == {"result": "", "stdout": "2\n", "stderr": ""}
    answer = tool.execute("6 * 7")
    assert answer["status"] == "Success" and answer["result"] == 42
    assert isinstance(answer["executionTimeInMilliseconds"], int)

    blob = bytes(range(256)) * 257
    uploaded = tool.upload_file(data=io.BytesIO(blob), remote_file_path="blob.bin")
    assert (uploaded.filename, uploaded.size_in_bytes) == ("blob.bin", len(blob))
    used = tool.execute(
        "import hashlib\nhashlib.sha256(open('/mnt/data/blob.bin', 'rb').read()).hexdigest()"
    )
    assert used["result"] == hashlib.sha256(blob).hexdigest()
    tool.execute("with open('/mnt/data/made.txt', 'w') as f:\n    f.write('from the kernel')")
    listed = {f.filename: f.size_in_bytes for f in tool.list_files()}
    assert listed == {"blob.bin": len(blob), "made.txt": 15}
    assert tool.download_file(remote_file_path="blob.bin").read() == blob
    assert tool.download_file(remote_file_path="made.txt").read() == b"from the kernel"

    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    # The tool strips base64_data from what it shows the model; the raw answer carries it.
    assert json.loads(tool.invoke(plot))["result"] == {"type": "image", "format": "png"}
    image = tool.execute(plot)["result"]
    assert base64.b64decode(image["base64_data"]).startswith(PNG_MAGIC)


def test_preview_error_with_traceback_and_timeout(client: httpx.Client, identifier: str) -> None:
    failed = preview_execute(client, identifier, "x = 1\n1/0")
    assert failed["status"] == "Failure" and failed["result"] == ""
    assert "Traceback" in failed["stderr"] and "----> 2 1/0" in failed["stderr"]
    assert failed["stderr"].rstrip().endswith("ZeroDivisionError: division by zero")

    started = time.monotonic()
    slow = preview_execute(
        client,
        identifier,
        "import time\nprint('before', flush=True)\ntime.sleep(60)",
        timeoutInSeconds=2,
    )
    assert time.monotonic() - started < 20
    assert slow["status"] == "Failure" and slow["stdout"] == "before\n"
    assert "TimeoutError: execution exceeded the 2 s timeout" in slow["stderr"]
    assert preview_execute(client, identifier, "x")["result"] == 1


def test_preview_results_translate_to_json(client: httpx.Client, identifier: str) -> None:
    cases = {
        "'text'": "text",
        "2.5": 2.5,
        "True": True,
        "float('nan')": "nan",
        "[1, 2]": "[1, 2]",
        "None": "",
        "import numpy as np\nnp.int64(6)": 6,
        "np.float32(0.5)": 0.5,
        "np.bool_(False)": False,
        "np.float64('nan')": "nan",
        "np.array([1])": "array([1])",
    }
    for code, expected in cases.items():
        assert preview_execute(client, identifier, code)["result"] == expected, code


def test_preview_upload_takes_a_full_path_as_semantic_kernel_sends_it(
    client: httpx.Client, identifier: str
) -> None:
    query = {"identifier": identifier, **PREVIEW}
    up = client.post(
        "/files/upload",
        params=query,
        files={"file": ("/mnt/data/sk.txt", b"sk", "application/octet-stream")},
    )
    assert up.status_code == 200, up.text
    assert up.json()["value"][0]["properties"] | {"lastModifiedTime": None} == {
        "$id": "3",
        "filename": "sk.txt",
        "size": 2,
        "lastModifiedTime": None,
        "sizeInBytes": 2,
        "fullPath": "/mnt/data/sk.txt",
    }
    assert client.get("/files/content/sk.txt", params=query).content == b"sk"
    meta = client.get("/files/sk.txt", params=query).json()
    assert meta["value"][0]["properties"]["filename"] == "sk.txt"


def test_executions_in_the_newer_shape(client: httpx.Client, identifier: str) -> None:
    code = base64.b64encode(b"print(7*9)\n'done'").decode()
    r = client.post(
        "/executions",
        params={"identifier": identifier, **LATEST},
        headers={"operation-id": "op-1"},
        json={
            "codeInputType": "InlineBase64",
            "executionType": "Asynchronous",
            "code": code,
            "timeoutInSeconds": 60,
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["operation-id"] == "op-1"
    body = r.json()
    assert {k: body[k] for k in ("id", "identifier", "executionType", "status")} == {
        "id": "op-1",
        "identifier": identifier,
        "executionType": "Asynchronous",
        "status": "Succeeded",
    }
    assert "error" not in body
    assert body["result"]["stdout"] == "63\n" and body["result"]["executionResult"] == "done"
    assert isinstance(body["result"]["executionTimeInMilliseconds"], int)

    r = client.post(
        "/executions",
        params={"identifier": identifier, **LATEST},
        json={
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "timeoutInSeconds": 60,
            "code": "import sys\nprint('warn', file=sys.stderr)\nraise ValueError('bad')",
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["status"] == "Failed"
    assert uuid.UUID(body["id"])
    assert body["error"] == {"error": {"code": "ValueError", "message": "ValueError: bad"}}
    assert body["result"]["stderr"].startswith("warn\n")
    assert "ValueError: bad" in body["result"]["stderr"]


def test_files_in_the_newer_shape(client: httpx.Client, identifier: str) -> None:
    params = {"identifier": identifier, **LATEST}
    r = client.post(
        "/files",
        params={**params, "path": "/mnt/data"},
        files={"file": ("data.csv", b"x,y\n1,2\n", "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert r.json() | {"lastModifiedAt": None} == {
        "name": "data.csv",
        "type": "File",
        "contentType": "text/csv",
        "sizeInBytes": 8,
        "lastModifiedAt": None,
        "directory": "/mnt/data",
    }
    client.post(
        "/executions",
        params=params,
        json={
            "code": (
                "import os\nos.makedirs('/mnt/data/out', exist_ok=True)\n"
                "open('/mnt/data/out/r.txt', 'w').write('deep')"
            )
        },
    )

    def names(**query: str) -> list[tuple[str, str]]:
        r = client.get("/files", params={**params, **query})
        assert r.status_code == 200, r.text
        return [(e["name"], e["type"]) for e in r.json()["value"]]

    assert names() == [("data.csv", "File"), ("out", "Directory")]
    assert names(path="out") == names(path="/mnt/data/out/") == [("r.txt", "File")]
    assert sorted(names(recursive="true")) == [("data.csv", "File"), ("r.txt", "File")]
    meta = client.get("/files/data.csv", params=params).json()
    assert (meta["name"], meta["sizeInBytes"]) == ("data.csv", 8)
    deep = client.get("/files/r.txt/content", params={**params, "path": "/mnt/data/out"})
    assert deep.status_code == 200 and deep.content == b"deep"

    assert client.delete("/files/data.csv", params=params).status_code == 204
    gone = client.get("/files/data.csv/content", params=params)
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"
    sub = client.post(
        "/files", params={**params, "path": "/mnt/data/out"}, files={"file": ("x.txt", b"x")}
    )
    assert sub.status_code == 400 and "subfolder" in sub.json()["error"]["message"]

    session = client.get("/session", params=params).json()
    assert session["identifier"] == identifier and session["etag"].startswith("sess_")
    assert session["expireAt"] > session["createdAt"]


def test_same_identifier_under_another_key_is_another_session(
    live_server: LiveServer, client: httpx.Client, identifier: str
) -> None:
    up = client.post(
        "/files/upload",
        params={"identifier": identifier, **PREVIEW},
        files={"file": ("secret.txt", b"for a only")},
    )
    assert up.status_code == 200, up.text
    assert up.json()["value"][0]["properties"]["filename"] == "secret.txt"

    with httpx.Client(base_url=live_server.url, timeout=120, headers={"api-key": KEY_B}) as b:
        query = {"identifier": identifier}
        assert b.get("/files", params=query).json() == {"$id": "1", "value": []}
        stolen = b.get("/files/content/secret.txt", params=query)
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "session_not_found"
        assert b.get("/session", params=query).status_code == 404
        listed = preview_execute(b, identifier, "import os\nos.listdir('/mnt/data')")
        assert listed["result"] == "[]"
        assert b.get("/files/content/secret.txt", params=query).status_code == 404
        etag_b = b.get("/session", params=query).json()["etag"]

    mine = client.get("/files/content/secret.txt", params={"identifier": identifier})
    assert mine.content == b"for a only"
    assert client.get("/session", params={"identifier": identifier}).json()["etag"] != etag_b


def test_unknown_identifier_reads_are_404_and_start_nothing(
    live_server: LiveServer, client: httpx.Client, identifier: str
) -> None:
    live = len(live_server.engine.sessions.live())
    query = {"identifier": identifier}
    r = client.get("/files/content/report.csv", params=query)
    assert r.status_code == 404 and r.json()["error"]["code"] == "session_not_found"
    assert client.get("/files/report.csv/content", params={**query, **LATEST}).status_code == 404
    assert client.get("/files/report.csv", params=query).status_code == 404
    assert client.delete("/files/report.csv", params=query).status_code == 404
    assert client.get("/files", params={**query, **LATEST}).json() == {
        "value": [],
        "nextLink": None,
    }
    assert client.delete("/session", params=query).status_code == 204
    assert len(live_server.engine.sessions.live()) == live

    preview_execute(client, identifier, "1")
    missing = client.get("/files/content/report.csv", params=query)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def _bad_requests(ident: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any], int]]:
    q = {"identifier": ident}
    ok = {"properties": {"code": "1"}}
    return [
        ("POST", "/code/execute", {}, {"json": ok}, 422),
        ("POST", "/code/execute", {**q, "api-version": "yesterday"}, {"json": ok}, 422),
        ("POST", "/code/execute", {"identifier": "x" * 300}, {"json": ok}, 422),
        (
            "POST",
            "/code/execute",
            q,
            {"content": b"{nope", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("POST", "/code/execute", q, {"json": {"code": "1"}}, 422),
        ("POST", "/code/execute", q, {"json": {"properties": {"code": 5}}}, 422),
        (
            "POST",
            "/code/execute",
            q,
            {"json": {"properties": {"code": "1", "codeInputType": "file"}}},
            422,
        ),
        ("POST", "/executions", q, {"json": {"code": "!!", "codeInputType": "InlineBase64"}}, 400),
        ("POST", "/executions", q, {"json": {"code": "1", "timeoutInSeconds": -1}}, 422),
        ("POST", "/executions", q, {"json": {"code": "1", "timeoutInSeconds": 10**9}}, 400),
        ("POST", "/executions", q, {"json": {"shellCommand": "ls"}}, 422),
        ("POST", "/files/upload", q, {"json": {"file": "data"}}, 400),
        ("POST", "/files/upload", q, {"data": {"name": "x"}, "files": {"other": ("a", b"a")}}, 400),
        ("POST", "/files/upload", q, {"files": {"file": ("../escape.txt", b"x")}}, 400),
        ("POST", "/files/upload", q, {"files": {"file": ("/etc/cron.d/x", b"x")}}, 400),
        ("GET", "/files/content/..%2F..%2Fetc%2Fpasswd", q, {}, 400),
        ("GET", "/files", {**q, **LATEST, "path": "/etc"}, {}, 400),
        ("GET", "/files", {**q, **LATEST, "path": "../up"}, {}, 400),
    ]


def test_malformed_requests_get_4xx_in_the_openai_error_shape(
    client: httpx.Client, identifier: str
) -> None:
    preview_execute(client, identifier, "1")  # so that file requests reach their path checks
    for method, url, params, kwargs, status in _bad_requests(identifier):
        r = client.request(method, url, params=params, **kwargs)
        assert r.status_code == status, (method, url, params, kwargs, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert r.json()["error"]["message"]


def test_keys_are_required_and_api_key_header_works(
    live_server: LiveServer, identifier: str
) -> None:
    body = {"properties": {"code": "1"}}
    query = {"identifier": identifier}
    with httpx.Client(base_url=live_server.url, timeout=120) as anonymous:
        r = anonymous.post("/code/execute", params=query, json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        r = anonymous.get("/files", params=query, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = anonymous.post("/code/execute", params=query, json=body, headers={"api-key": KEY_A})
        assert r.status_code == 200 and r.json()["properties"]["result"] == 1
