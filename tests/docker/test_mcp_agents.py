"""The OpenAI Agents SDK's MCPServerStreamableHttp inside an Agent, against the live server's
/mcp, with the scripted model (tests/support/model_server.py) calling our ``execute`` tool."""

from __future__ import annotations

import asyncio
from typing import Any

import agents
import agents.mcp as agents_mcp
from openai import AsyncOpenAI

from ..support.servers import LiveServer, ServerThread


def test_agent_uses_our_mcp_execute_tool(
    live_server: LiveServer, model_server: ServerThread
) -> None:
    async def go() -> Any:
        model = AsyncOpenAI(base_url=f"{model_server.url}/v1", api_key="model-key")
        agents.set_default_openai_client(model, use_for_tracing=False)
        agents.set_default_openai_api("chat_completions")
        agents.set_tracing_disabled(True)
        server = agents_mcp.MCPServerStreamableHttp(
            params={
                "url": f"{live_server.url}/mcp",
                "headers": {"Authorization": f"Bearer {LiveServer.keys[0]}"},
                "timeout": 60,
            },
            cache_tools_list=True,
        )
        try:
            async with server:
                tools = {t.name for t in await server.list_tools()}
                assert {"execute", "create_session", "upload_file"} <= tools
                agent = agents.Agent(name="analyst", model="gpt-4.1", mcp_servers=[server])
                return await agents.Runner.run(agent, "Compute six times seven over MCP")
        finally:
            await model.close()

    result = asyncio.run(go())
    assert "42" in str(result.final_output), result.final_output
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    names = [getattr(c.raw_item, "name", None) for c in calls]
    assert names == ["create_session", "execute"]
