"""What the model sees: the system prompt, the thread (truncated), tools, and tool results."""

from __future__ import annotations

import json
import re
from typing import Any

from ..results import ExecutionResult
from .models import Message, Run, TruncationStrategy

CODE_TOOL = "python"
CODE_TOOL_SPEC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": CODE_TOOL,
        "description": (
            "Run Python code in a stateful Jupyter kernel (the code interpreter). Variables and "
            "imports persist between calls. Files are in /mnt/data; save files there to give "
            "them to the user, and link them as sandbox:/mnt/data/<name>. No internet access. "
            "Returns stdout, stderr, the value of the last expression, errors with tracebacks, "
            "and the images and files produced."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}
SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>]+")


def estimate_tokens(text: str) -> int:
    """About four characters a token: enough to keep a prompt inside a budget."""
    return len(text) // 4 + 4


def system_prompt(run: Run, additional: str | None, files: list[str], code_tool: bool) -> str:
    parts = [run.instructions] if run.instructions else []
    if additional:
        parts.append(additional)
    if code_tool:
        parts.append(
            f"You can run Python with the `{CODE_TOOL}` tool (a Jupyter kernel with numpy, "
            "pandas, matplotlib and scipy). Save output files under /mnt/data and link them "
            "as sandbox:/mnt/data/<name>."
        )
        if files:
            parts.append("Files available in /mnt/data: " + ", ".join(files) + ".")
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


def tool_result_text(result: ExecutionResult, limit: int) -> str:
    """An execution, told to the model: capped, so one huge output cannot flood the context."""
    report: dict[str, Any] = {"status": result.status.value}
    if result.stdout:
        report["stdout"] = _cap(result.stdout, limit)
    if result.stderr:
        report["stderr"] = _cap(result.stderr, limit // 2)
    if result.result is not None and "text/plain" in result.result:
        report["result"] = _cap(str(result.result["text/plain"]), limit // 2)
    if result.error is not None:
        report["error"] = {
            "name": result.error.name,
            "value": _cap(result.error.value, 1000),
            "traceback": _cap("\n".join(result.error.traceback), limit // 2),
        }
    images = [o.file_id for o in result.outputs if o.type == "image"]
    if images:
        report["images"] = f"{len(images)} image(s) shown to the user"
    files = [o.sandbox_path for o in result.outputs if o.type == "file"]
    if files:
        report["files"] = files
    if result.state_lost:
        report["note"] = "the kernel was restarted: variables and imports are gone"
    return json.dumps(report)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def logs_of(result: ExecutionResult, limit: int) -> str:
    parts = [result.stdout, result.stderr]
    if result.result is not None and "text/plain" in result.result:
        parts.append(str(result.result["text/plain"]))
    if result.error is not None:
        parts.append(
            "\n".join(result.error.traceback) or f"{result.error.name}: {result.error.value}"
        )
    return _cap("\n".join(p for p in parts if p).strip(), limit)
