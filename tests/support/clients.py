"""Reaching a live server with the official openai SDK, and what the tests ask of it."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from .servers import LiveServer

KEY_A, KEY_B = LiveServer.keys

CODE: list[Any] = [{"type": "code_interpreter", "container": {"type": "auto"}}]


def sdk(server: LiveServer, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


def coder(client: openai.OpenAI, **fields: Any) -> str:
    """A code-interpreter assistant; its id."""
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="You write and run Python to answer.",
        tools=[{"type": "code_interpreter"}],
        **fields,
    )
    return assistant.id


def execute(server: LiveServer, container_id: str, code: str) -> dict[str, Any]:
    """Run code in a container through the native endpoint (a container is a session)."""
    r = httpx.post(
        f"{server.url}/v1/sessions/{container_id}/execute",
        json={"code": code},
        headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
