"""``sandbox-engine mcp``: the MCP server over stdio, for clients that launch it (Claude
Desktop, Cursor). Its own engine, as a guest of the data folder: it touches no running server's
sandboxes and closes its own when the client closes the pipe."""

from __future__ import annotations

import logging

import anyio
from mcp.server.stdio import stdio_server

from ..config import Settings
from ..services import Engine
from .server import SandboxTools, build_server

LOCAL_TENANT = ""
"""Every stdio caller is the machine's own user: the tenant of a server without keys."""
log = logging.getLogger("engine.mcp")


async def serve_stdio(settings: Settings) -> None:
    # One client per process: one warm sandbox is enough.
    settings = settings.model_copy(update={"pool_size": min(settings.pool_size, 1)})
    async with Engine(settings, guest=True) as engine:
        server = build_server(SandboxTools(engine.runtime, local_tenant=LOCAL_TENANT))
        lowlevel = server._lowlevel_server
        log.info("MCP on stdio, data folder %s", settings.data_dir)
        async with stdio_server() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def run_stdio(settings: Settings) -> int:
    anyio.run(serve_stdio, settings)
    return 0
