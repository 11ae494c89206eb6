"""One reply of a stand-in Chat Completions model, as a JSON body or as an SSE stream: what the
benchmarks' scripted models answer once they have chosen the assistant's message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def chat_reply(
    body: dict[str, Any], message: dict[str, Any], model: str
) -> dict[str, Any] | StreamingResponse:
    """``message`` as the request ``body`` asked for it: whole, or streamed when it set stream."""
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    head = {"id": "c", "created": 0, "model": model}
    if not body.get("stream"):
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return {**head, "object": "chat.completion", "choices": [choice], "usage": USAGE}

    async def chunks() -> AsyncIterator[str]:
        delta = {k: v for k, v in message.items() if v is not None}
        for index, call in enumerate(delta.get("tool_calls", [])):
            call["index"] = index
        kind = {"object": "chat.completion.chunk"}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        for chunk in ({"choices": [choice]}, {"choices": [], "usage": USAGE}):
            yield f"data: {json.dumps({**head, **kind, **chunk})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")
