"""The MCP face with real clients against a live server: the mcp SDK's Client over streamable
HTTP in both protocol eras (2026-07-28 without sessions, the handshake era with Mcp-Session-Id)
and over stdio (``python -m engine.cli mcp``)."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent

from engine.mcp import server as mcp_server

from ..support.servers import LiveServer

MODERN = "2026-07-28"
LEGACY = "legacy"


@asynccontextmanager
async def connect(
    server: LiveServer, mode: str, key: str = LiveServer.keys[0]
) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(30, read=300),
    )
    async with http:
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


def text(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


def run(coro: Any) -> Any:
    return anyio.run(lambda: coro)


async def _new_session(client: Client) -> str:
    made = await client.call_tool("create_session", {})
    assert not made.is_error, text(made)
    assert made.structured_content is not None
    sid: str = made.structured_content["session_id"]
    return sid


def test_modern_client_mints_sessions_and_runs_code(live_server: LiveServer) -> None:
    async def go() -> None:
        async with connect(live_server, MODERN) as client:
            assert client.protocol_version == MODERN
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"create_session", "execute", "upload_file", "list_files"} <= set(tools)
            assert {"interrupt", "restart", "close"} <= set(tools)
            hints = {n: t.annotations for n, t in tools.items() if t.annotations is not None}
            assert hints["list_files"].read_only_hint is True
            assert hints["close"].destructive_hint is True
            assert hints["execute"].open_world_hint is False
            sid = await _new_session(client)
            first = await client.call_tool("execute", {"code": "x = 41", "session_id": sid})
            assert not first.is_error, text(first)
            second = await client.call_tool(
                "execute", {"code": "print('hi')\nx + 1", "session_id": sid}
            )
            assert "hi" in text(second) and "42" in text(second)
            assert second.structured_content is not None
            assert second.structured_content["status"] == "ok"
            assert second.structured_content["stdout"] == "hi\n"
            # No MCP session in this era: without an id there is no sandbox to use.
            lost = await client.call_tool("execute", {"code": "1"})
            assert lost.is_error and "create_session" in text(lost)
            await client.call_tool("close", {"session_id": sid})

    run(go())


def test_figures_files_errors_and_resources(live_server: LiveServer) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3]); plt.show()\n"
        "plt.plot([3, 2, 1]); plt.show()\n"
        "open('/mnt/data/out.csv', 'w').write('a,b\\n1,2\\n')\n"
    )

    async def go() -> None:
        async with connect(live_server, MODERN) as client:
            sid = await _new_session(client)
            result = await client.call_tool("execute", {"code": code, "session_id": sid})
            assert not result.is_error, text(result)
            images = [b for b in result.content if isinstance(b, ImageContent)]
            assert len(images) == 2
            assert base64.b64decode(images[0].data).startswith(b"\x89PNG")
            links = [b for b in result.content if isinstance(b, ResourceLink)]
            assert [str(link.uri) for link in links] == [f"sandbox://{sid}/files/out.csv"]
            assert result.structured_content is not None
            assert len(result.structured_content["images"]) == 2
            assert result.structured_content["files"][0]["path"] == "/mnt/data/out.csv"
            read = await client.read_resource(f"sandbox://{sid}/files/out.csv")
            content = read.contents[0]
            body = getattr(content, "blob", None)
            data = base64.b64decode(body) if body else getattr(content, "text", "").encode()
            assert data == b"a,b\n1,2\n"
            templates = await client.list_resource_templates()
            assert any("files" in t.uri_template for t in templates.resource_templates)

            failed = await client.call_tool("execute", {"code": "1 / 0", "session_id": sid})
            assert failed.is_error
            assert failed.structured_content is not None
            assert failed.structured_content["error"]["name"] == "ZeroDivisionError"
            assert "ZeroDivisionError" in text(failed)
            await client.call_tool("close", {"session_id": sid})

    run(go())


def test_handshake_client_gets_a_sandbox_per_mcp_session(live_server: LiveServer) -> None:
    async def go() -> str:
        async with connect(live_server, LEGACY) as client:
            assert client.protocol_version != MODERN
            await client.call_tool("execute", {"code": "y = 7"})
            again = await client.call_tool("execute", {"code": "print(y * 6)"})
            assert "42" in text(again)
            assert again.structured_content is not None
            sid: str = again.structured_content["session_id"]
        async with connect(live_server, LEGACY) as other:
            fresh = await other.call_tool("execute", {"code": "print(y)"})
            assert fresh.is_error and "NameError" in text(fresh)
        return sid

    sid = run(go())
    # The client ended its MCP session (DELETE): its sandbox is closed, by the SDK's session task
    # that ends after the DELETE has been answered.
    deadline = time.monotonic() + 30
    while live_server.engine.sessions.info(sid).status.value != "closed":
        assert time.monotonic() < deadline, live_server.engine.sessions.info(sid).status
        time.sleep(0.05)


def test_no_key_or_wrong_key_is_401(live_server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = httpx.post(
            f"{live_server.url}/mcp",
            json=body,
            headers={"Accept": "application/json, text/event-stream", **headers},
        )
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"


def test_unknown_host_is_refused(live_server: LiveServer) -> None:
    r = httpx.post(
        f"{live_server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            "Authorization": f"Bearer {LiveServer.keys[0]}",
            "Host": "evil.example",
            "Accept": "application/json, text/event-stream",
        },
    )
    assert r.status_code == 421


def test_bad_input_is_an_error_result_and_touches_no_one_else(live_server: LiveServer) -> None:
    async def go() -> None:
        async with (
            connect(live_server, MODERN) as a,
            connect(live_server, MODERN, LiveServer.keys[1]) as b,
        ):
            sid = await _new_session(a)
            await a.call_tool("execute", {"code": "keep = 'mine'", "session_id": sid})
            # Another tenant's id is as unknown as one never issued.
            for args in (
                {"code": "keep", "session_id": sid},
                {"code": "1", "session_id": "sess_nope"},
            ):
                refused = await b.call_tool("execute", args)
                assert refused.is_error and "no sandbox" in text(refused)
            # A native-API session of the same tenant was not issued by the MCP face.
            native = await live_server.engine.session("native-thread", owner=_tenant(0))
            other = await a.call_tool("execute", {"code": "1", "session_id": native.id})
            assert other.is_error
            await live_server.engine.sessions.close(native.id)
            missing = await a.call_tool("execute", {"session_id": sid})
            assert missing.is_error and "code" in text(missing)
            huge = await a.call_tool("execute", {"code": "#" * 1_000_001, "session_id": sid})
            assert huge.is_error and "longer" in text(huge)
            bad = await a.call_tool(
                "upload_file", {"filename": "x", "content_base64": "***", "session_id": sid}
            )
            assert bad.is_error and "base64" in text(bad)
            escape = await a.call_tool(
                "upload_file", {"filename": "../x", "content_base64": "", "session_id": sid}
            )
            assert escape.is_error
            big = base64.b64encode(b"\0" * (2 * 1024 * 1024 + 10)).decode()
            too_big = await a.call_tool(
                "upload_file", {"filename": "big.bin", "content_base64": big, "session_id": sid}
            )
            assert too_big.is_error and "upload_url" in text(too_big)
            with pytest.raises(MCPError, match="no sandbox"):
                await b.read_resource(f"sandbox://{sid}/files/anything.txt")
            still = await a.call_tool("execute", {"code": "print(keep)", "session_id": sid})
            assert "mine" in text(still)
            await a.call_tool("close", {"session_id": sid})
            closed = await a.call_tool("execute", {"code": "1", "session_id": sid})
            assert closed.is_error

    run(go())
    # Bodies past the transport's cap are refused before they reach a tool.
    r = httpx.post(
        f"{live_server.url}/mcp",
        content=b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}',
        headers={
            "Authorization": f"Bearer {LiveServer.keys[0]}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN,
        },
    )
    assert r.status_code == 413


def _tenant(n: int) -> str:
    from engine.api.auth import KeyRing

    tenant = KeyRing([LiveServer.keys[n]]).tenant(LiveServer.keys[n])
    assert tenant is not None
    return tenant


def test_uploads_inline_and_through_a_signed_url(live_server: LiveServer) -> None:
    async def go() -> None:
        async with connect(live_server, MODERN) as client:
            sid = await _new_session(client)
            inline = await client.call_tool(
                "upload_file",
                {
                    "filename": "small.txt",
                    "content_base64": base64.b64encode(b"hello").decode(),
                    "session_id": sid,
                },
            )
            assert not inline.is_error, text(inline)
            grant = await client.call_tool(
                "upload_file", {"filename": "large.bin", "session_id": sid}
            )
            assert grant.structured_content is not None
            url = grant.structured_content["upload_url"]
            # The URL says nothing about the key: no tenant id, no hash of the key.
            token = url.rsplit("/", 1)[-1].split(".")[0]
            claims = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            assert set(claims) == {"s", "f", "e"}
            assert _tenant(0) not in url and _tenant(0)[2:10] not in url
            # The tool's description says how to send the file; do exactly that.
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["upload_file"].output_schema or {}
            said = schema["properties"]["upload_url"]["description"]
            assert "POST" in said and "multipart/form-data" in said and "`file`" in said
            payload = b"\1" * (3 * 1024 * 1024)
            async with httpx.AsyncClient() as http:
                put = await http.put(
                    url, content=payload, headers={"Authorization": f"Bearer {LiveServer.keys[0]}"}
                )
                assert put.status_code == 405
                wrong = await http.post(
                    url,
                    files={"file": ("large.bin", payload)},
                    headers={"Authorization": f"Bearer {LiveServer.keys[1]}"},
                )
                assert wrong.status_code == 404
                forged = await http.post(
                    url[:-3] + "AAA",
                    files={"file": ("large.bin", payload)},
                    headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
                )
                assert forged.status_code == 404
                done = await http.post(
                    url,
                    files={"file": ("ignored.bin", payload)},
                    headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
                )
                assert done.status_code == 200, done.text
            listed = await client.call_tool("list_files", {"session_id": sid})
            assert listed.structured_content is not None
            sizes = {f["filename"]: f["bytes"] for f in listed.structured_content["files"]}
            assert sizes == {"small.txt": 5, "large.bin": len(payload)}
            check = await client.call_tool(
                "execute",
                {"code": "print(open('/mnt/data/small.txt').read())", "session_id": sid},
            )
            assert "hello" in text(check)
            await client.call_tool("close", {"session_id": sid})

    run(go())


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
def test_progress_carries_the_latest_line(live_server: LiveServer, mode: str) -> None:
    code = (
        "import time\nfor i in range(6):\n    print(f'step {i}', flush=True)\n    time.sleep(0.3)"
    )
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async def go() -> None:
        async with connect(live_server, mode) as client:
            sid = await _new_session(client)
            result = await client.call_tool(
                "execute", {"code": code, "session_id": sid}, progress_callback=on_progress
            )
            assert not result.is_error, text(result)
            await client.call_tool("close", {"session_id": sid})

    run(go())
    assert len(seen) >= 3, seen
    assert all(m and m.startswith("step ") for m in seen)
    assert seen[-1] in ("step 4", "step 5")


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
def test_cancelling_a_call_interrupts_the_kernel(live_server: LiveServer, mode: str) -> None:
    async def go() -> None:
        async with connect(live_server, mode) as client:
            sid = await _new_session(client)
            code = "import time\ndone = False\ntime.sleep(120)\ndone = True"
            with anyio.move_on_after(3):
                await client.call_tool("execute", {"code": code, "session_id": sid})
            started = anyio.current_time()
            after = await client.call_tool(
                "execute", {"code": "print(done)", "session_id": sid, "timeout": 30}
            )
            assert "False" in text(after), text(after)
            assert anyio.current_time() - started < 20
            await client.call_tool("close", {"session_id": sid})

    run(go())


def test_stdio_server(tmp_path: Path) -> None:
    from ..support.serve_process import ROOT, containers, engine_env, remove_all

    data_dir = tmp_path / "stdio-engine"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "engine.cli", "mcp"], env=engine_env(data_dir), cwd=ROOT
    )

    async def go(mode: str) -> None:
        async with Client(params, mode=mode, read_timeout_seconds=120) as client:
            assert client.server_info is None or client.server_info.name == "sandbox-engine"
            await client.call_tool("execute", {"code": "z = 5"})
            shown = await client.call_tool(
                "execute",
                {"code": "import matplotlib.pyplot as plt\nplt.plot([z, 1]); plt.show()\nz * 2"},
            )
            assert not shown.is_error, text(shown)
            assert "10" in text(shown)
            assert any(isinstance(b, ImageContent) for b in shown.content)
            sid = await _new_session(client)
            minted = await client.call_tool("execute", {"code": "z", "session_id": sid})
            assert minted.is_error and "NameError" in text(minted)

    try:
        for mode in (LEGACY, MODERN):
            run(go(mode))
            deadline = time.monotonic() + 30
            while containers(data_dir) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert containers(data_dir) == [], "the stdio engine closes its sandboxes on exit"
    finally:
        remove_all(data_dir)


def _rss_peak_reset() -> None:
    """Start a new peak-RSS window for this process (Linux: clear_refs 5 resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def test_resource_reads_over_the_cap_are_refused_before_reading(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight concurrent reads of a 900 MB file: each refused from its size, pointing to the
    HTTP download; the engine (this process hosts it) does not grow by the file's size."""
    cap = live_server.settings.mcp_max_read_mb
    make = (
        "with open('/mnt/data/huge.bin', 'wb') as f:\n    f.truncate(900 * 2**20)\n"
        f"open('/mnt/data/over.bin', 'wb').write(b'x' * ({cap} * 2**20 + 1))\n"
        f"open('/mnt/data/at_cap.bin', 'wb').write(b'y' * ({cap} * 2**20))"
    )

    async def go() -> None:
        async with connect(live_server, MODERN) as client:
            sid = await _new_session(client)
            made = await client.call_tool("execute", {"code": make, "session_id": sid})
            assert not made.is_error, text(made)
            whole = await client.read_resource(f"sandbox://{sid}/files/at_cap.bin")
            blob = whole.contents[0]
            assert len(base64.b64decode(blob.blob)) == cap * 2**20  # type: ignore[union-attr]
            del whole, blob

            _rss_peak_reset()
            before = _rss_mb("VmRSS")
            refusals = await _gather(
                *(client.read_resource(f"sandbox://{sid}/files/huge.bin") for _ in range(8))
            )
            growth = _rss_mb("VmHWM") - before
            print(f"peak RSS growth under 8 concurrent reads of 900 MB: {growth:.1f} MB")
            assert growth < 100, f"the engine grew by {growth:.0f} MB"
            for refused in refusals:
                assert isinstance(refused, MCPError), refused
                message = str(refused)
                assert "SANDBOX_MCP_MAX_READ_MB" in message and str(900 * 2**20) in message
                assert f"{live_server.url}/v1/sessions/{sid}/files/content?path=huge.bin" in (
                    message
                )
            with pytest.raises(MCPError, match="SANDBOX_MCP_MAX_READ_MB"):
                await client.read_resource(f"sandbox://{sid}/files/over.bin")

            # A file that grows between the size check and the read is cut at the cap.
            monkeypatch.setattr(mcp_server, "_size_of", lambda f: 0)
            with pytest.raises(MCPError, match="grew while it was read"):
                await client.read_resource(f"sandbox://{sid}/files/over.bin")
            monkeypatch.undo()

            # The route the refusal names serves the file.
            async with httpx.AsyncClient() as http:
                url = f"{live_server.url}/v1/sessions/{sid}/files/content"
                headers = {"Authorization": f"Bearer {LiveServer.keys[0]}"}
                async with http.stream(
                    "GET", url, params={"path": "huge.bin"}, headers=headers
                ) as r:
                    assert r.status_code == 200
                    first = await anext(r.aiter_bytes())
                    assert first and set(first) == {0}
            await client.call_tool("close", {"session_id": sid})

    run(go())


async def _gather(*calls: Any) -> list[Any]:
    results: list[Any] = []

    async def one(call: Any) -> None:
        try:
            results.append(await call)
        except Exception as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        for call in calls:
            tg.start_soon(one, call)
    return results
