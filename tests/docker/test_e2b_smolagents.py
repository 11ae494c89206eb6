"""A framework end to end: smolagents' CodeAgent with its own E2BExecutor (the unmodified
``e2b-code-interpreter`` SDK underneath) runs the model's code in our sandboxes. The model is
scripted (no hosted model here); it reads the observations it is sent back, so the agent's loop
(code, observation, final answer) runs for real."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from smolagents import CodeAgent
from smolagents.models import ChatMessage, MessageRole, Model

from ..support.servers import LiveServer, ServerThread, serve_live

KEY = "e2b_" + "5a" * 20
FIRST = (
    "Thought: I will compute it in the sandbox.\n<code>\nimport numpy as np\n"
    "total = int(np.arange(10).sum())\nprint('total is', total)\n</code>"
)


class ScriptedModel(Model):
    """Writes code first, then answers with what the sandbox printed."""

    def __init__(self) -> None:
        super().__init__(model_id="scripted")
        self.seen: list[str] = []

    def generate(self, messages: list[Any], **kwargs: Any) -> ChatMessage:
        texts = [_text(m) for m in messages if _role(m) != "system"]  # its examples observe too
        observed = [t for t in texts if "Observation:" in t]
        self.seen.extend(observed)
        if not observed:
            return ChatMessage(role=MessageRole.ASSISTANT, content=FIRST)
        found = re.search(r"total is (\d+)", observed[-1])
        value = found.group(1) if found else "nothing"
        code = f"Thought: the sandbox said {value}.\n<code>\nfinal_answer({value})\n</code>"
        return ChatMessage(role=MessageRole.ASSISTANT, content=code)


def _role(message: Any) -> str:
    role = message.role if hasattr(message, "role") else message.get("role")
    return str(getattr(role, "value", role))


def _text(message: Any) -> str:
    content = message.content if hasattr(message, "content") else message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    yield from serve_live(tmp_path_factory, model_server, keys=(KEY,))


def test_smolagents_e2b_executor_runs_on_the_engine(server: LiveServer) -> None:
    url = f"{server.url}/e2b"
    model = ScriptedModel()
    agent = CodeAgent(
        tools=[],
        model=model,
        executor_type="e2b",
        executor_kwargs={"api_key": KEY, "api_url": url, "sandbox_url": url},
        additional_authorized_imports=["numpy"],
        max_steps=4,
    )
    try:
        answer = agent.run("What is the sum of the integers from 0 to 9?")
        sandbox_id = agent.python_executor.sandbox.sandbox_id  # type: ignore[attr-defined]
        assert server.engine.sessions.info(sandbox_id, None).status.value == "active"
    finally:
        agent.cleanup()
    assert answer == 45
    assert any("total is 45" in seen for seen in model.seen)
