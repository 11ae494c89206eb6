"""The MCP face with real clients against a live server: the mcp SDK's Client over streamable
HTTP in both protocol eras (2026-07-28 without sessions, the handshake era with Mcp-Session-Id)
and over stdio (``python -m engine.cli mcp``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent

from .conftest import LiveServer

pytestmark = pytest.mark.docker

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
            assert tools["list_files"].annotations.read_only_hint is True
            assert tools["close"].annotations.destructive_hint is True
            assert tools["execute"].annotations.open_world_hint is False
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
    # The client ended its MCP session (DELETE): its sandbox is closed.
    info = live_server.engine.sessions.info(sid)
    assert info.status.value == "closed"


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
