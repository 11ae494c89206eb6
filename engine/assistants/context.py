"""What the model sees of an Assistants run: the system prompt and the thread, truncated."""

from __future__ import annotations

from typing import Any

from ..agent.tool_text import code_tool_prompt, estimate_tokens
from .models import Message, Run, TruncationStrategy


def system_prompt(run: Run, additional: str | None, files: list[str], code_tool: bool) -> str:
    parts = [run.instructions] if run.instructions else []
    if additional:
        parts.append(additional)
    if code_tool:
        parts += code_tool_prompt(files)
    return "\n\n".join(parts)


def thread_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        text = message.text()
        images = [p.image_file.file_id for p in message.content if p.image_file is not None]
        if images:
            text += "".join(f"\n[image {file_id} was shown to the user]" for file_id in images)
        out.append({"role": message.role, "content": text})
    return out


def truncate(
    history: list[dict[str, Any]], strategy: TruncationStrategy, budget: int
) -> list[dict[str, Any]]:
    """``last_messages`` keeps N; ``auto`` keeps the newest that fit in ``budget`` tokens."""
    if strategy.type == "last_messages" and strategy.last_messages is not None:
        history = history[-strategy.last_messages :]
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(history):
        cost = estimate_tokens(str(message.get("content") or ""))
        if kept and used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return kept
