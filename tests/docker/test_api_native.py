"""The native REST API against a live server: sessions, executions, SSE, files, auth, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from ..support.servers import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=live_server.url,
        timeout=60,
        headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
    )


def test_session_lifecycle_and_execute(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"thread_id": "native-1"})
    assert created.status_code == 200, created.text
    session = created.json()
    assert session["object"] == "session" and session["status"] == "active"
    assert session["expires_at"] > session["created_at"]
    again = client.post("/v1/sessions", json={"thread_id": "native-1"}).json()
    assert again["id"] == session["id"]
    r = client.post(f"/v1/sessions/{session['id']}/execute", json={"code": "print('hi'); 1+1"})
    body = r.json()
    assert body["status"] == "ok" and body["stdout"] == "hi\n"
    assert body["result"] == {"text/plain": "2"} and body["execution_count"] == 1
    listed = client.get("/v1/sessions", params={"limit": 100}).json()
    assert session["id"] in [s["id"] for s in listed["data"]]
    assert client.delete(f"/v1/sessions/{session['id']}").json()["deleted"] is True
    gone = client.get(f"/v1/sessions/{session['id']}").json()
    assert gone["status"] == "closed"
    r = client.post(f"/v1/sessions/{session['id']}/execute", json={"code": "1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "session_closed"


def test_execute_streams_server_sent_events(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={}).json()["id"]
    code = "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)\n1/0"
    events = []
    with client.stream(
        "POST",
        f"/v1/sessions/{sid}/execute",
        json={"code": code},
        headers={"Accept": "text/event-stream"},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[:2] == ["stdout", "stderr"] and names[-2:] == ["error", "done"]
    assert events[-1][1]["status"] == "error"
    assert events[-2][1]["error"]["name"] == "ZeroDivisionError"
    client.delete(f"/v1/sessions/{sid}")


def test_session_files_upload_list_download(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={}).json()["id"]
    up = client.post(f"/v1/sessions/{sid}/files", files={"file": ("data.csv", b"x,y\n1,2\n")})
    assert up.status_code == 200, up.text
    assert up.json()["path"] == "/mnt/data/data.csv"
    r = client.post(
        f"/v1/sessions/{sid}/execute",
        json={
            "code": "import pandas as pd; pd.read_csv('data.csv').to_csv('out.csv', index=False)"
        },
    )
    outputs = r.json()["outputs"]
    assert [o["path"] for o in outputs] == ["/mnt/data/out.csv"]
    assert outputs[0]["type"] == "file" and outputs[0]["file_id"].startswith("file-")
    names = [f["filename"] for f in client.get(f"/v1/sessions/{sid}/files").json()["data"]]
    assert names == ["data.csv", "out.csv"]
    content = client.get(f"/v1/sessions/{sid}/files/content", params={"path": "out.csv"})
    assert content.content == b"x,y\n1,2\n"
    bad = client.get(f"/v1/sessions/{sid}/files/content", params={"path": "../../etc/passwd"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    gone = client.delete(f"/v1/sessions/{sid}/files/content", params={"path": "out.csv"})
    assert gone.status_code == 204, gone.text
    names = [f["filename"] for f in client.get(f"/v1/sessions/{sid}/files").json()["data"]]
    assert names == ["data.csv"]
    again = client.delete(f"/v1/sessions/{sid}/files/content", params={"path": "out.csv"})
    assert again.status_code == 404, again.text
    bad = client.delete(f"/v1/sessions/{sid}/files/content", params={"path": "../x"})
    assert bad.status_code == 400
    assert client.get(f"/v1/files/{outputs[0]['file_id']}").status_code == 200  # the object stays
    client.delete(f"/v1/sessions/{sid}")


def test_auth_and_tenants(live_server: LiveServer, client: httpx.Client) -> None:
    anonymous = httpx.Client(base_url=live_server.url)
    r = anonymous.post("/v1/sessions", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    wrong = anonymous.get("/v1/sessions", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    sid = client.post("/v1/sessions", json={}).json()["id"]
    other = httpx.Client(
        base_url=live_server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {LiveServer.keys[1]}"},
    )
    assert other.get(f"/v1/sessions/{sid}").status_code == 404
    assert other.post(f"/v1/sessions/{sid}/execute", json={"code": "1"}).status_code == 404
    assert other.get(f"/v1/sessions/{sid}/files").status_code == 404
    assert other.delete(f"/v1/sessions/{sid}").status_code == 404
    assert sid not in [s["id"] for s in other.get("/v1/sessions").json()["data"]]
    client.delete(f"/v1/sessions/{sid}")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 400),
        (b'{"code": 5}', {"content-type": "application/json"}, 422),
        (b'{"code": "1", "timeout": "soon"}', {"content-type": "application/json"}, 422),
        (b'{"code": "1", "timeout": NaN}', {"content-type": "application/json"}, 400),
        (b'{"code": "1", "timeout": 1e308}', {"content-type": "application/json"}, 400),
        (b"[" * 5000 + b"]" * 5000, {"content-type": "application/json"}, 400),
        (b'{"code": "\xff\xfe"}', {"content-type": "application/json"}, 400),
        (
            b'{"code": "' + b"x" * (9 * 1024 * 1024) + b'"}',
            {"content-type": "application/json"},
            413,
        ),
    ],
)
def test_malformed_requests_get_clear_errors(
    client: httpx.Client, body: bytes, headers: dict[str, str], status: int
) -> None:
    sid = client.post("/v1/sessions", json={"thread_id": "malformed"}).json()["id"]
    r = client.post(f"/v1/sessions/{sid}/execute", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_memory_limit_refusals_name_the_field_and_value_sent(client: httpx.Client) -> None:
    r = client.post("/v1/sessions", json={"memory_limit": "100g"})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "memory_limit '100g' is above the maximum of" in message and "'1g'" in message
    assert "memory_limit_mb" not in message
    r = client.post("/v1/sessions", json={"memory_limit": "lots"})
    assert r.status_code == 400 and "not 'lots'" in r.json()["error"]["message"]


def test_a_network_policy_is_refused_until_the_operator_allows_egress(
    client: httpx.Client,
) -> None:
    policy = {"type": "allowlist", "allowed_domains": ["pypi.org"]}
    r = client.post("/v1/sessions", json={"network_policy": policy})
    assert r.status_code == 400 and "SANDBOX_EGRESS_ALLOWED_DOMAINS" in r.json()["error"]["message"]
    r = client.post(
        "/v1/sessions", json={"network_policy": {**policy, "allowed_domains": ["1.2.3.4"]}}
    )
    assert r.status_code == 400 and "IP address" in r.json()["error"]["message"]
    r = client.post("/v1/sessions", json={"network_policy": {"type": "disabled"}})
    assert r.status_code == 200 and r.json()["network_policy"] == {"type": "disabled"}
    client.delete(f"/v1/sessions/{r.json()['id']}")


def test_upload_names_are_checked(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={"thread_id": "upload-names"}).json()["id"]
    boundary = "native-boundary"
    for disposition, problem in (
        (b'filename="caf\xe9.csv"', "not valid UTF-8"),
        (b'filename=""', "empty filename"),
    ):
        body = (
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; '
            + disposition
            + f"\r\n\r\nx\r\n--{boundary}--\r\n".encode()
        )
        for route in (
            f"/v1/sessions/{sid}/files",
            "/v1/files",
            f"/v1/containers/{sid}/files",
            "/files/upload?identifier=upload-names",
            "/files?identifier=upload-names&api-version=2025-02-02-preview",
        ):
            r = client.post(
                route,
                content=body,
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )
            assert r.status_code == 400, (route, r.text)
            assert problem in r.json()["error"]["message"], route
    client.delete(f"/v1/sessions/{sid}")


def test_unknown_ids_and_busy_session(client: httpx.Client) -> None:
    assert client.get("/v1/sessions/sess_unknown").status_code == 404
    assert client.post("/v1/sessions/sess_unknown/execute", json={"code": "1"}).status_code == 404
    r = client.post("/v1/sessions", json={"file_ids": ["file-nope"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "file_not_found"


def test_operations_endpoints(live_server: LiveServer, client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert "sandbox_executions_total" in metrics and "sandbox_sessions_live" in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "Sandbox Engine"
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").headers["x-request-id"].startswith("req_")


def test_keepalive_takes_no_body_an_empty_object_or_seconds(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={}).json()["id"]
    url = f"/v1/sessions/{sid}/keepalive"
    bare = client.post(url)
    assert bare.status_code == 200, bare.text
    assert bare.json()["id"] == sid and bare.json()["status"] == "active"
    empty = client.post(url, json={})
    assert empty.status_code == 200, empty.text
    assert empty.json()["expires_at"] >= bare.json()["expires_at"]
    assert client.post(url, json={"seconds": 60}).status_code == 200
    bad = client.post(url, json={"seconds": 0})
    assert bad.status_code in (400, 422) and "seconds" in bad.text
    client.delete(f"/v1/sessions/{sid}")


def test_pause_and_resume_over_http(client: httpx.Client, live_server: LiveServer) -> None:
    sid = client.post("/v1/sessions", json={"thread_id": "native-pause"}).json()["id"]
    code = "total = 40\nopen('p.txt', 'w').write('paused')"
    assert client.post(f"/v1/sessions/{sid}/execute", json={"code": code}).json()["status"] == "ok"
    other = httpx.Client(
        base_url=live_server.url,
        timeout=60,
        headers={"Authorization": f"Bearer {LiveServer.keys[1]}"},
    )
    assert other.post(f"/v1/sessions/{sid}/pause").status_code == 404
    paused = client.post(f"/v1/sessions/{sid}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert client.get(f"/v1/sessions/{sid}").json()["status"] == "paused"
    listed = {s["id"]: s["status"] for s in client.get("/v1/sessions").json()["data"]}
    assert listed[sid] == "paused"
    # A download resumes it; so does an execute, with the variables back.
    content = client.get(f"/v1/sessions/{sid}/files/content", params={"path": "p.txt"})
    assert content.content == b"paused"
    assert client.get(f"/v1/sessions/{sid}").json()["status"] == "active"
    client.post(f"/v1/sessions/{sid}/pause")
    r = client.post(f"/v1/sessions/{sid}/execute", json={"code": "print(total + 2)"}).json()
    assert r["stdout"] == "42\n"
    assert client.post(f"/v1/sessions/{sid}/resume").json()["status"] == "active"
    client.delete(f"/v1/sessions/{sid}")
    closed = client.post(f"/v1/sessions/{sid}/resume")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "session_closed"
