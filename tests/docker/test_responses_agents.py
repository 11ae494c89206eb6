"""The OpenAI Agents SDK against a live server: a hosted CodeInterpreterTool and a function_tool.

``CodeInterpreterTool`` is a hosted tool: the SDK sends its config to ``POST /v1/responses`` and
our server runs the code; the function tool runs in the test, as the SDK does, and its output
comes back with ``previous_response_id``-less input items (the SDK resends the whole history).
"""

from __future__ import annotations

import asyncio
from typing import Any

import agents
from openai import AsyncOpenAI

from ..support.servers import LiveServer


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@agents.function_tool
def get_time(timezone: str) -> str:
    """The time in a time zone."""
    return f"noon in {timezone}"


def _run(server: LiveServer, agent: Any, prompt: str) -> Any:
    async def go() -> Any:
        client = AsyncOpenAI(base_url=f"{server.url}/v1", api_key=LiveServer.keys[0])
        agents.set_default_openai_client(client, use_for_tracing=False)
        agents.set_default_openai_api("responses")
        agents.set_tracing_disabled(True)
        try:
            return await agents.Runner.run(agent, prompt)
        finally:
            await client.close()

    return asyncio.run(go())


def test_agent_runs_code_in_our_sandbox(live_server: LiveServer) -> None:
    agent = agents.Agent(
        name="analyst",
        instructions="You are a data analyst.",
        model="gpt-4.1",
        tools=[
            agents.CodeInterpreterTool(
                tool_config={"type": "code_interpreter", "container": {"type": "auto"}}
            ),
            get_weather,
        ],
    )
    result = _run(live_server, agent, "Plot a sine wave")
    assert "sine wave" in str(result.final_output).lower()
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    raw = calls[0].raw_item
    assert getattr(raw, "type", None) == "code_interpreter_call"
    assert "np.sin" in (getattr(raw, "code", "") or "")


def test_agent_function_tools(live_server: LiveServer) -> None:
    agent = agents.Agent(name="helper", model="gpt-4.1", tools=[get_weather, get_time])
    result = _run(live_server, agent, "What is the weather and time?")
    assert result.final_output == "Weather: sunny in Paris. Time: noon in Europe/Paris."
