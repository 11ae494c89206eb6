"""A scripted OpenAI-compatible model: a real HTTP server speaking Chat Completions.

It stands in for the hosted LLM, the one thing tests cannot run here. The script is chosen by
keywords in the newest user message; what it answers depends on the tool results it has seen,
so the engine's loop (tool calls, results, retries) is exercised for real.

With ``stream: true`` it answers in Chat Completions chunks (text and tool-call arguments cut in
small pieces, usage last when ``stream_options.include_usage`` asks), as hosted models do; "stream
slowly" in the newest user message spaces the chunks out, so that a test can see deltas arrive
before the model has finished.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

SINE = (
    "import numpy as np\nimport matplotlib.pyplot as plt\n"
    "x = np.linspace(0, 4 * np.pi, 200)\nplt.plot(x, np.sin(x))\nplt.title('Sine wave')\n"
    "plt.savefig('/mnt/data/sine.png')\nplt.show()"
)
DARK_SINE = (
    "import numpy as np\nimport matplotlib.pyplot as plt\nplt.style.use('dark_background')\n"
    "x = np.linspace(0, 4 * np.pi, 200)\nplt.plot(x, np.sin(x), color='cyan')\n"
    "plt.savefig('/mnt/data/sine_dark.png')\nplt.show()"
)

app = FastAPI()
app.state.requests = []


def _reply(content: str | None = None, calls: Sequence[tuple[str, dict[str, Any]]] = ()) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _script(messages: list[dict[str, Any]]) -> dict[str, Any]:
    last_user = next(m for m in reversed(messages) if m["role"] == "user")
    ask = str(last_user["content"]).lower()
    after_user = messages[messages.index(last_user) + 1 :]
    if "over mcp" in ask:  # tests/docker/test_mcp_agents.py: our MCP server's `execute` tool
        outputs = [str(m["content"]) for m in after_user if m["role"] == "tool"]
        if not outputs:
            return _reply(None, [("create_session", {})])
        if len(outputs) == 1:
            found = re.search(r"sess_[0-9a-f]+", outputs[0])
            sid = found.group(0) if found else "none"
            return _reply(None, [("execute", {"code": "print(6 * 7)", "session_id": sid})])
        return _reply(f"The sandbox said: {outputs[-1]}")
    results = [
        json.loads(m["content"]) if m["content"].startswith("{") else m["content"]
        for m in after_user
        if m["role"] == "tool"
    ]
    last = results[-1] if results else None

    if "dark mode" in ask or "darkmode" in ask:
        if last is None:
            return _reply(None, [("python", {"code": DARK_SINE})])
        return _reply("Here is the dark version, saved as sandbox:/mnt/data/sine_dark.png.")
    if "two files" in ask:
        if last is None:
            code = (
                "open('/mnt/data/a.csv', 'w').write('x,1\\n')\n"
                "open('/mnt/data/my report.txt', 'w').write('report')"
            )
            return _reply(None, [("python", {"code": code})])
        return _reply(
            "See [a.csv](sandbox:/mnt/data/a.csv), then sandbox:/mnt/data/my%20report.txt. "
            "Not sandbox:/mnt/data/missing.txt."
        )
    if "show me the code" in ask:
        return _reply(f"This is the code I ran:\n```python\n{SINE}\n```")
    if "sinewave" in ask or "sine wave" in ask:
        if last is None:
            return _reply("Let me plot it.", [("python", {"code": SINE})])
        return _reply("Here is the sine wave. Download it: [sine.png](sandbox:/mnt/data/sine.png)")
    if "weather and time" in ask:
        if last is None:
            return _reply(
                None,
                [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Europe/Paris"})],
            )
        return _reply(f"Weather: {results[0]}. Time: {results[1]}.")
    if "fix it" in ask:
        if last is None:
            return _reply(None, [("python", {"code": "total = sum(range(10))\nprnt(total)"})])
        if isinstance(last, dict) and last.get("status") == "error":
            return _reply(None, [("python", {"code": "total = sum(range(10))\nprint(total)"})])
        return _reply(f"Fixed. The total is {last['stdout'].strip()}.")
    if "append a row" in ask:
        if last is None:
            return _reply(
                None,
                [
                    (
                        "python",
                        {
                            "code": (
                                "import glob\nf = sorted(glob.glob('/mnt/data/*.csv'))[0]\n"
                                "open(f, 'a').write('extra,100\\n')\nprint('appended')"
                            )
                        },
                    )
                ],
            )
        return _reply("I appended a row.")
    if "csv" in ask:
        if last is None:
            return _reply(
                None,
                [
                    (
                        "python",
                        {
                            "code": (
                                "import pandas as pd, glob\n"
                                "f = sorted(glob.glob('/mnt/data/*.csv'))[0]\n"
                                "print(pd.read_csv(f)['amount'].sum())"
                            )
                        },
                    )
                ],
            )
        return _reply(f"The total amount is {last['stdout'].strip()}.")
    if "set a variable" in ask:
        if last is None:
            return _reply(None, [("python", {"code": "secret = 41\nprint('set')"})])
        return _reply("I set it.")
    if "use the variable" in ask:
        if last is None:
            return _reply(None, [("python", {"code": "print(secret + 1)"})])
        if isinstance(last, dict) and last.get("status") == "error":
            return _reply(f"The variable is gone: {last['error']['name']}.")
        return _reply(f"The answer is {last['stdout'].strip()}.")
    if "two cells" in ask:
        if last is None:
            return _reply(
                None, [("python", {"code": "print('one')"}), ("python", {"code": "print('two')"})]
            )
        return _reply(f"Ran {len(results)} cells.")
    if "forever" in ask:
        return _reply(None, [("python", {"code": "1 + 1"})])
    if "take a nap" in ask:  # a run that lasts a few seconds, then ends by itself
        if last is None:
            return _reply(
                None, [("python", {"code": "import time; time.sleep(6); print('rested')"})]
            )
        return _reply(f"Rested: {last['stdout'].strip()}.")
    if "slow" in ask:
        if last is None:
            return _reply(None, [("python", {"code": "import time; time.sleep(60)"})])
        return _reply("done")
    if "search my files" in ask:
        return _file_search(ask, last)
    return _reply(f"echo: {last_user['content']}")


def _file_search(ask: str, last: Any) -> dict[str, Any]:
    """ "search my files for X and Y": one file_search call with a query per part (they run in
    parallel), then an answer quoting the best passage with a citation mark."""
    if last is None:
        topic = ask.split("search my files", 1)[1].removeprefix(" for").strip(" ?.")
        queries = [q.strip() for q in topic.split(" and ") if q.strip()]
        return _reply(None, [("file_search", {"queries": queries})])
    found = last.get("results", []) if isinstance(last, dict) else []
    if not found:
        return _reply(f"I found nothing in your files. ({last})")
    lines = [f"{r['text'][:160]} 【{r['source']}†{r['filename']}】" for r in found[:2]]
    return _reply("From your files: " + " ".join(lines))


def _example(schema: dict[str, Any], name: str = "", defs: dict[str, Any] | None = None) -> Any:
    """A value that fits a JSON schema (objects, arrays, enums, scalars, ``$ref`` to ``$defs``)."""
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return _example(defs[schema["$ref"].rsplit("/", 1)[1]], name, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: _example(v, k, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items", {}), name, defs)]
    scalars = {"integer": 21, "number": 21.5, "boolean": True}
    return scalars.get(str(kind), "Paris" if name == "city" else f"some {name}")


def _structured(body: dict[str, Any]) -> dict[str, Any]:
    """ "... as JSON": JSON only when the request asks for it (``response_format``), else the
    free text a model writes, which a client that expected an object cannot parse."""
    wanted = body.get("response_format") or {"type": "text"}
    if wanted["type"] == "json_schema":
        return _reply(json.dumps(_example(wanted["json_schema"]["schema"])))
    if wanted["type"] == "json_object":
        return _reply(json.dumps({"city": "Paris", "temperature": 21}))
    return _reply("It is sunny in Paris, 21 degrees.")


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    last_user: dict[str, Any] = next(
        (m for m in reversed(body["messages"]) if m["role"] == "user"), {}
    )
    if "as json" in str(last_user.get("content")).lower():
        return _structured(body)
    if body.get("tool_choice") == "none" or not body.get("tools"):
        return _reply("no tools for me")
    forced = body.get("tool_choice")
    if isinstance(forced, dict) and not any(m["role"] == "tool" for m in body["messages"]):
        name = forced["function"]["name"]
        args = {"code": "print('forced')"} if name == "python" else {}
        return _reply(None, [(name, args)])
    return _script(body["messages"])


@app.get("/v1/models")
async def models() -> dict[str, Any]:
    """The playground starts with the first model listed."""
    return {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]}


@app.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> dict[str, Any] | StreamingResponse:
    body = await request.json()
    app.state.requests.append(body)
    reply = _answer(body)
    if not body.get("stream"):
        return reply
    last_user: dict[str, Any] = next(
        (m for m in reversed(body["messages"]) if m["role"] == "user"), {}
    )
    delay = 0.1 if "stream slowly" in str(last_user.get("content")).lower() else 0.0
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return StreamingResponse(_chunks(reply, delay, usage), media_type="text/event-stream")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _chunks(reply: dict[str, Any], delay: float, usage: bool) -> AsyncIterator[str]:
    """The reply as a stream of ``chat.completion.chunk`` events."""
    choice = reply["choices"][0]
    message = choice["message"]
    head = {"id": reply["id"], "object": "chat.completion.chunk", "created": reply["created"]}
    head["model"] = reply["model"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(message.get("content") or "", 8):
        await asyncio.sleep(delay)
        yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        first = {"id": call["id"], "type": "function", "function": {"name": function["name"]}}
        yield chunk(
            {
                "tool_calls": [
                    {"index": index, **first, "function": {**first["function"], "arguments": ""}}
                ]
            }
        )
        for piece in _pieces(function["arguments"], 16):
            await asyncio.sleep(delay)
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, choice["finish_reason"])
    if usage:
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': reply['usage']})}\n\n"
    yield "data: [DONE]\n\n"
