"""The Responses API's own overhead per code-interpreter call, and the time to the first delta.

One response = two model turns (the model asks for ``x = 1``, then answers) and one execution.
The server runs in this process (a real uvicorn on a socket) so that the time spent waiting for
the model (inside the provider) and running the code (inside ``Session.execute``) can be summed
per response; the overhead is the client's total minus both: HTTP in and out, checks, the
prompt, items, events, the store, the container's file listing for citations. The model is a
scripted Chat Completions server in this process too, answering at once (it streams when asked).
Run: ``sandbox-engine bench responses`` or ``python -m benchmarks.responses_overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import openai
import uvicorn
from fastapi import FastAPI, Request

from engine import Settings
from engine.agent.provider import OpenAIChatProvider
from engine.sessions import Session

from . import common, fixtures
from .chat_reply import chat_reply
from .common import Report, summary

WARMUP = 5
TIMES = {"model": 0.0, "execute": 0.0, "list_files": 0.0}


def scripted_model() -> FastAPI:
    app = FastAPI()

    def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] != "tool":
            function = {"name": "python", "arguments": json.dumps({"code": "x = 1"})}
            call = {"id": "call_1", "type": "function", "function": function}
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"role": "assistant", "content": "done"}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        return chat_reply(body, reply(body["messages"]), "scripted")

    return app


class Thread:
    """An ASGI app served by uvicorn on a free loopback port, in a background thread.

    uvicorn binds the port itself: handed a bound socket (``sockets=``), its connections lack
    TCP_NODELAY here, and every small response then waits ~40 ms for a delayed ACK.
    """

    def __init__(self, app: Any) -> None:
        port = fixtures.free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Thread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=90)


def _timed(cls: Any, name: str, bucket: str) -> None:
    original = getattr(cls, name)

    @wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            TIMES[bucket] += time.perf_counter() - started

    setattr(cls, name, timed)


@contextmanager
def servers(data_dir: Path) -> Iterator[openai.OpenAI]:
    from engine.api import create_app

    _timed(OpenAIChatProvider, "complete", "model")
    _timed(Session, "execute", "execute")
    _timed(Session, "list_files", "list_files")
    with Thread(scripted_model()) as model:
        settings = Settings(
            data_dir=data_dir,
            api_keys=fixtures.API_KEY,
            pool_size=0,
            pool_min=0,
            llm_base_url=f"{model.url}/v1",
            llm_api_key="k",
        )
        with Thread(create_app(settings)) as engine:
            yield openai.OpenAI(
                base_url=f"{engine.url}/v1", api_key=fixtures.API_KEY, max_retries=0
            )


def measure(client: openai.OpenAI, n: int) -> dict[str, list[float]]:
    parts = ("total", "model", "execute", "overhead", "list_files")
    samples: dict[str, list[float]] = {k: [] for k in parts}
    samples |= {"first_code_delta": [], "first_text_delta": []}
    # One container for every response, so that no history grows from one sample to the next.
    tools: list[Any] = [
        {"type": "code_interpreter", "container": client.containers.create(name="b").id}
    ]
    for i in range(WARMUP + n):
        TIMES.update(model=0.0, execute=0.0, list_files=0.0)
        started = time.perf_counter()
        r = client.responses.create(model="m", tools=tools, input="run x = 1")
        total = time.perf_counter() - started
        assert r.status == "completed" and r.output_text == "done", r
        if i < WARMUP:
            continue
        samples["total"].append(total)
        samples["model"].append(TIMES["model"])
        samples["execute"].append(TIMES["execute"])
        samples["overhead"].append(total - TIMES["model"] - TIMES["execute"])
        samples["list_files"].append(TIMES["list_files"])
    for i in range(WARMUP + n):
        started = time.perf_counter()
        firsts: dict[str, float] = {}
        with client.responses.stream(model="m", tools=tools, input="run x = 1") as stream:
            for event in stream:
                key = {
                    "response.code_interpreter_call_code.delta": "first_code_delta",
                    "response.output_text.delta": "first_text_delta",
                }.get(event.type)
                if key and key not in firsts:
                    firsts[key] = time.perf_counter() - started
            stream.get_final_response()
        if i >= WARMUP:
            for key, value in firsts.items():
                samples[key].append(value)
    return samples


@common.entry
def main(args: argparse.Namespace) -> int:
    n = 20 if common.quick(args) else 100
    with fixtures.temp_dir("responses") as tmp, servers(tmp / "engine") as client:
        samples = measure(client, n)
    rows = {name: summary(values) for name, values in samples.items()}
    common.table(
        "Responses API: one code-interpreter call per response (scripted model)",
        ["part", "p50 ms", "p90 ms", "p99 ms", "mean ms", "n"],
        [(k, v["p50_ms"], v["p90_ms"], v["p99_ms"], v["mean_ms"], v["n"]) for k, v in rows.items()],
    )
    report = Report("responses", "Responses API overhead per code-interpreter call")
    report.data.update({"latency": rows})
    report.target("server overhead per code call, p50", rows["overhead"]["p50_ms"], 15, " ms")
    report.notes.append(
        f"time to the first code delta p50 {rows['first_code_delta']['p50_ms']:.1f} ms "
        f"(includes getting the container and the model's first chunk); total p50 "
        f"{rows['total']['p50_ms']:.1f} ms, model {rows['model']['p50_ms']:.1f} ms, execution "
        f"{rows['execute']['p50_ms']:.1f} ms"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("responses"))
