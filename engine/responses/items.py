"""Input items, checked and normalised, and a list of items told to a Chat Completions model.

A client's ``input`` is a string or a list of items (easy messages without ``type``, typed
messages, ``function_call_output`` items, even earlier output items). The model sees them as
Chat Completions messages: a run of calls becomes one assistant turn with ``tool_calls``, each
followed by its tool message, as Chat Completions requires.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .. import errors
from ..agent.tool_text import CODE_TOOL, FILE_SEARCH, estimate_tokens
from ..files import FileStore
from .models import (
    CodeInterpreterCall,
    CodeLogs,
    FileSearchCall,
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Item,
    MessageItem,
    OutputText,
    Refusal,
)

_ITEM: TypeAdapter[Item] = TypeAdapter(Item)


def parse_input(raw: str | list[dict[str, Any]]) -> list[Item]:
    """The request's ``input`` as items, each with an id; a 400 names the bad one."""
    if isinstance(raw, str):
        return [MessageItem(role="user", content=[InputText(text=raw)])] if raw else []
    items: list[Item] = []
    for index, entry in enumerate(raw):
        entry = dict(entry)
        kind = entry.setdefault("type", "message")
        if kind == "item_reference":
            raise errors.InvalidRequest(
                f"input[{index}]: item_reference is not supported; send the item itself"
            )
        if kind == "message" and isinstance(entry.get("content"), str):
            part = "output_text" if entry.get("role") == "assistant" else "input_text"
            entry["content"] = [{"type": part, "text": entry["content"]}]
        if kind == "message" and entry.get("role") == "assistant":
            entry["content"] = [
                {**p, "type": "output_text"} if p.get("type") == "input_text" else p
                for p in entry.get("content") or []
                if isinstance(p, dict)
            ]
        if entry.get("id") is None:
            entry.pop("id", None)
        if kind == "code_interpreter_call":
            entry.setdefault("container_id", "")
        try:
            items.append(_ITEM.validate_python(entry))
        except ValidationError as exc:
            at, what = errors.first_problem(exc)
            raise errors.InvalidRequest(
                f"input[{index}]{'.' + at if at else ''}: {what} (item type {kind!r})"
            ) from None
    return items


async def store_inline_files(items: list[Item], files: FileStore, owner: str) -> None:
    """``input_file`` parts with ``file_data`` become file objects; others must exist."""
    for item in items:
        if not isinstance(item, MessageItem):
            continue
        for part in item.content:
            if isinstance(part, InputFile):
                if part.file_url is not None:
                    raise errors.InvalidRequest(
                        "input_file.file_url is not supported (sandboxes have no network); "
                        "upload the file and send its file_id, or send file_data"
                    )
                if part.file_data is not None:
                    data = _decode(part.file_data)
                    obj = await files.create(data, part.filename or "file", owner=owner)
                    part.file_id, part.file_data = obj.id, None
                if part.file_id is None:
                    raise errors.InvalidRequest("input_file needs a file_id or file_data")
                part.filename = files.retrieve(part.file_id, owner).filename
            elif isinstance(part, InputImage):
                if part.file_id is not None:
                    files.retrieve(part.file_id, owner)
                elif not part.image_url:
                    raise errors.InvalidRequest("input_image needs an image_url or a file_id")


def _decode(data: str) -> bytes:
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidRequest("input_file.file_data is not valid base64") from None


def input_file_ids(items: Iterable[Item]) -> list[str]:
    """The files the items attach, to place in the container's /mnt/data."""
    found = [
        part.file_id
        for item in items
        if isinstance(item, MessageItem)
        for part in item.content
        if isinstance(part, InputFile) and part.file_id
    ]
    return list(dict.fromkeys(found))


def to_messages(items: Iterable[Item], files: FileStore, owner: str) -> list[dict[str, Any]]:
    """The items as Chat Completions messages; a function call with no output is a 400."""
    out: list[dict[str, Any]] = []
    turn: dict[str, Any] | None = None  # the open assistant turn with tool_calls
    results: list[dict[str, Any]] = []  # its tool messages, sent right after it
    waiting: set[str] = set()

    def close() -> None:
        nonlocal turn
        if turn is not None:
            if waiting:
                raise errors.InvalidRequest(
                    f"No tool output found for function call {sorted(waiting)[0]}."
                )
            out.append(turn)
            out.extend(results)
        turn = None
        results.clear()

    def open_turn() -> dict[str, Any]:
        nonlocal turn
        if turn is None:
            last = out[-1] if out else None
            content = None
            if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
                content = out.pop()["content"]  # the words the model said before its calls
            turn = {"role": "assistant", "content": content, "tool_calls": []}
        return turn

    for item in items:
        if isinstance(item, CodeInterpreterCall):
            arguments = json.dumps({"code": item.code or ""})
            open_turn()["tool_calls"].append(_call(item.id, CODE_TOOL, arguments))
            results.append({"role": "tool", "tool_call_id": item.id, "content": _logs(item)})
        elif isinstance(item, FileSearchCall):
            arguments = json.dumps({"queries": item.queries})
            open_turn()["tool_calls"].append(_call(item.id, FILE_SEARCH, arguments))
            found = [{"filename": r.filename, "text": r.text} for r in item.results or []]
            results.append({"role": "tool", "tool_call_id": item.id, "content": json.dumps(found)})
        elif isinstance(item, FunctionCall):
            open_turn()["tool_calls"].append(_call(item.call_id, item.name, item.arguments))
            waiting.add(item.call_id)
        elif isinstance(item, FunctionCallOutput):
            if item.call_id not in waiting:
                raise errors.InvalidRequest(
                    f"No function call found for function_call_output with call_id {item.call_id}."
                )
            waiting.discard(item.call_id)
            results.append({"role": "tool", "tool_call_id": item.call_id, "content": _output(item)})
        else:
            close()
            out.append(_message(item, files, owner))
    close()
    return out


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _logs(item: CodeInterpreterCall) -> str:
    logs = [o.logs for o in item.outputs or [] if isinstance(o, CodeLogs)]
    images = sum(1 for o in item.outputs or [] if not isinstance(o, CodeLogs))
    report: dict[str, Any] = {"status": item.status, "logs": "\n".join(logs)}
    if images:
        report["images"] = f"{images} image(s) shown to the user"
    return json.dumps(report)


def _output(item: FunctionCallOutput) -> str:
    if isinstance(item.output, str):
        return item.output
    return "\n".join(p.text for p in item.output if isinstance(p, InputText))


def _message(item: MessageItem, files: FileStore, owner: str) -> dict[str, Any]:
    role = "system" if item.role == "developer" else item.role
    parts: list[dict[str, Any]] = []
    for part in item.content:
        if isinstance(part, InputText | OutputText):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, Refusal):
            parts.append({"type": "text", "text": part.refusal})
        elif isinstance(part, InputFile):
            note = f"[the file {part.filename} is at /mnt/data/{part.filename}]"
            parts.append({"type": "text", "text": note})
        elif isinstance(part, InputImage):
            url = part.image_url or _data_uri(files, part.file_id or "", owner)
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": part.detail}})
    if role != "user" or all(p["type"] == "text" for p in parts):
        text = "\n".join(p["text"] for p in parts if p["type"] == "text")
        return {"role": role, "content": text}
    return {"role": role, "content": parts}


def _data_uri(files: FileStore, file_id: str, owner: str) -> str:
    obj = files.retrieve(file_id, owner)
    with files.open_blob(obj.id) as src:
        data = src.read()
    return f"data:{obj.mime_type};base64,{base64.b64encode(data).decode()}"


def message_tokens(message: dict[str, Any]) -> int:
    return (
        estimate_tokens(str(message.get("content") or ""))
        + len(str(message.get("tool_calls") or "")) // 4
    )


def truncate(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """``truncation: auto``: the oldest messages go first, never half of a tool-call turn; a
    last message that alone is over the budget keeps the end of its text (where its question
    usually is)."""
    kept = list(history)
    while len(kept) > 1 and _tokens(kept) > budget:
        kept.pop(0)
        while kept and kept[0]["role"] == "tool":
            kept.pop(0)
    if len(kept) == 1 and _tokens(kept) > budget and isinstance(kept[0].get("content"), str):
        text: str = kept[0]["content"]
        room = budget - message_tokens({**kept[0], "content": ""})
        keep = max(0, room * 4 - 16)  # estimate_tokens: four characters a token, plus four
        kept = [{**kept[0], "content": text[len(text) - keep :] if keep else ""}]
    return kept


def _tokens(messages: list[dict[str, Any]]) -> int:
    return sum(message_tokens(m) for m in messages)
