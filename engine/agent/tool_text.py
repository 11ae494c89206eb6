"""The tool text both faces give the model: the code tool's definition and its prompt, the
file_search tool's name, how a forced tool choice reaches the model, and an execution told to
the model (capped) or shown as logs."""

from __future__ import annotations

import json
import re
from typing import Any

from ..results import ExecutionResult

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
FILE_SEARCH = "file_search"  # the name under which the model sees the file_search tool
SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>]+")


def estimate_tokens(text: str) -> int:
    """About four characters a token: enough to keep a prompt inside a budget."""
    return len(text) // 4 + 4


def code_tool_prompt(files: list[str]) -> list[str]:
    """The system prompt's paragraphs about the code tool, naming the files in /mnt/data."""
    parts = [
        f"You can run Python with the `{CODE_TOOL}` tool (a Jupyter kernel with numpy, "
        "pandas, matplotlib and scipy). Save output files under /mnt/data and link them "
        "as sandbox:/mnt/data/<name>."
    ]
    if files:
        parts.append("Files available in /mnt/data: " + ", ".join(files) + ".")
    return parts


def tool_result_text(result: ExecutionResult, limit: int) -> str:
    """An execution, told to the model: capped, so one huge output cannot flood the context."""
    report: dict[str, Any] = {"status": result.status.value}
    if result.stdout:
        report["stdout"] = cut_middle(result.stdout, limit)
    if result.stderr:
        report["stderr"] = cut_middle(result.stderr, limit // 2)
    if result.result is not None and "text/plain" in result.result:
        report["result"] = cut_middle(str(result.result["text/plain"]), limit // 2)
    if result.error is not None:
        report["error"] = {
            "name": result.error.name,
            "value": cut_middle(result.error.value, 1000),
            "traceback": cut_middle("\n".join(result.error.traceback), limit // 2),
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


def cut_middle(text: str, limit: int, verb: str = "cut") -> str:
    """``text`` if it fits in ``limit`` characters, else its two ends, saying how many went."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters {verb} ...]\n{text[-half:]}"


def logs_of(result: ExecutionResult, limit: int) -> str:
    parts = [result.stdout, result.stderr]
    if result.result is not None and "text/plain" in result.result:
        parts.append(str(result.result["text/plain"]))
    if result.error is not None:
        parts.append(
            "\n".join(result.error.traceback) or f"{result.error.name}: {result.error.value}"
        )
    return cut_middle("\n".join(p for p in parts if p).strip(), limit)


def model_tool_choice(choice: Any, first_turn: bool) -> Any:
    """Forcing a tool applies to the run's first model turn; after that the model may answer."""
    if isinstance(choice, dict):
        if not first_turn:
            return "auto"
        if choice.get("type") == "code_interpreter":
            return {"type": "function", "function": {"name": CODE_TOOL}}
        if choice.get("type") == "file_search":
            return {"type": "function", "function": {"name": FILE_SEARCH}}
        return choice
    if choice == "required" and not first_turn:
        return "auto"
    return choice


def code_of(arguments: str) -> str:
    """The code of a code-interpreter call: its ``code`` argument, or the raw text if not JSON."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else arguments
