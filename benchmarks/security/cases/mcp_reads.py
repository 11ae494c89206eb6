"""MCP resource reads against huge files: the engine must not load them whole."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..harness import KEYS, Context
from ..model import API, Case, Verdict

HUGE = 900 * 1024 * 1024
READS = 8
GROWTH_LIMIT_MB = 100


def _rss_mb(field: str) -> float:
    """This process hosts the engine (the bench serves it in its own loop)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


async def huge_reads(ctx: Context) -> Verdict:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=httpx2.Timeout(30, read=300)
    )
    async with http, Client(streamable_http_client(f"{ctx.api_url}/mcp", http_client=http)) as c:
        made = await c.call_tool("create_session", {})
        sid = (made.structured_content or {})["session_id"]
        code = f"with open('/mnt/data/huge.bin', 'wb') as f:\n    f.truncate({HUGE})"
        wrote = await c.call_tool("execute", {"code": code, "session_id": sid})
        if wrote.is_error:
            return Verdict(False, f"could not make the file: {wrote.content}")
        _reset_peak()
        before = _rss_mb("VmRSS")
        outcomes = await asyncio.gather(
            *(c.read_resource(f"sandbox://{sid}/files/huge.bin") for _ in range(READS)),
            return_exceptions=True,
        )
        growth = _rss_mb("VmHWM") - before
        end = time.perf_counter()
        refused = [
            o for o in outcomes if isinstance(o, MCPError) and "SANDBOX_MCP_MAX_READ_MB" in str(o)
        ]
        points = all(f"/v1/sessions/{sid}/files/content?path=huge.bin" in str(o) for o in refused)
        await c.call_tool("close", {"session_id": sid})
    ok = len(refused) == READS and points and growth < GROWTH_LIMIT_MB
    return Verdict(
        ok,
        f"{len(refused)}/{READS} concurrent reads of a 900 MB file refused"
        f"{', each naming the HTTP download route' if points else ' WITHOUT the download route'}; "
        f"engine peak RSS growth {growth:.1f} MB (limit {GROWTH_LIMIT_MB} MB); cap "
        f"{ctx.settings.mcp_max_read_mb} MB",
        None,
        end,
    )


CASES = [
    Case(
        "mcp-huge-read",
        API,
        f"{READS} concurrent MCP resource reads of a 900 MB file in /mnt/data",
        "each refused before reading, with the HTTP download route; the engine's peak RSS "
        f"grows by under {GROWTH_LIMIT_MB} MB",
        huge_reads,
        limit=180,
    ),
]
