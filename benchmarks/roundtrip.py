"""Round trip of ``x = 1``: through the library, through HTTP, and on a bare local kernel.

The three are interleaved call by call in one run, so drift in the machine's load hits all
alike. The bare kernel is a local ipykernel driven by jupyter_client's ``execute_interactive``:
the floor the engine adds its sandbox, bookkeeping and HTTP to. The HTTP service runs in its own
process (``sandbox-engine serve``, API key on, request log on) and is called twice: with a
minimal keep-alive client (``http.client``: what the service itself adds) and with ``httpx``
(what a typical Python SDK adds on top).
Run: ``sandbox-engine bench roundtrip`` or ``python -m benchmarks.roundtrip [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx
from jupyter_client.manager import start_new_async_kernel

from . import common, fixtures
from .common import Report, summary

WARMUP = 50


async def measure(n: int) -> dict[str, list[float]]:
    km, kc = await start_new_async_kernel(kernel_name="python3", stderr=subprocess.DEVNULL)
    try:
        with fixtures.temp_dir("roundtrip") as tmp, fixtures.Server(tmp / "server") as server:
            async with (
                fixtures.engine(tmp / "engine") as engine,
                httpx.AsyncClient(
                    base_url=server.url, headers=server.headers, timeout=120
                ) as client,
            ):
                session = await engine.session("roundtrip")
                created = await client.post("/v1/sessions", json={"thread_id": "roundtrip"})
                created.raise_for_status()
                path = f"/v1/sessions/{created.json()['id']}/execute"
                raw = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                raw_headers = {**server.headers, "content-type": "application/json"}
                body = json.dumps({"code": fixtures.TRIVIAL})

                async def library() -> None:
                    result = await session.execute(fixtures.TRIVIAL)
                    assert result.ok, result.error

                async def over_http() -> None:
                    raw.request("POST", path, body=body, headers=raw_headers)
                    response = raw.getresponse()
                    data = json.loads(response.read())
                    assert response.status == 200 and data["status"] == "ok"

                async def over_httpx() -> None:
                    response = await client.post(path, json={"code": fixtures.TRIVIAL})
                    assert response.status_code == 200 and response.json()["status"] == "ok"

                async def bare() -> None:
                    reply = await kc.execute_interactive(fixtures.TRIVIAL)
                    assert reply["content"]["status"] == "ok"

                calls: dict[str, Callable[[], Awaitable[None]]] = {
                    "library": library,
                    "http": over_http,
                    "httpx": over_httpx,
                    "bare_kernel": bare,
                }
                samples: dict[str, list[float]] = {name: [] for name in calls}
                try:
                    for i in range(WARMUP + n):
                        for name, call in calls.items():
                            started = time.perf_counter()
                            await call()
                            if i >= WARMUP:
                                samples[name].append(time.perf_counter() - started)
                finally:
                    raw.close()
                return samples
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


@common.entry
def main(args: argparse.Namespace) -> int:
    n = 150 if common.quick(args) else 600
    samples = asyncio.run(measure(n))
    rows = {name: summary(values) for name, values in samples.items()}
    bare = rows["bare_kernel"]
    ratios = {
        name: {
            "p50": rows[name]["p50_ms"] / bare["p50_ms"],
            "p99": rows[name]["p99_ms"] / bare["p99_ms"],
        }
        for name in ("library", "http", "httpx")
    }
    labels = {
        "library": "library",
        "http": "HTTP",
        "httpx": "HTTP, httpx client",
        "bare_kernel": "bare local kernel",
    }
    common.table(
        "Round trip of x = 1 (interleaved, same run)",
        ["path", "p50 ms", "p90 ms", "p99 ms", "mean ms", "x bare p50", "x bare p99", "n"],
        [
            (
                labels[k],
                v["p50_ms"],
                v["p90_ms"],
                v["p99_ms"],
                v["mean_ms"],
                ratios.get(k, {}).get("p50", 1.0),
                ratios.get(k, {}).get("p99", 1.0),
                v["n"],
            )
            for k, v in rows.items()
        ],
    )
    report = Report("roundtrip", "Round trip of x = 1 against a bare local kernel")
    report.data.update({"latency": rows, "ratio_to_bare": ratios})
    report.target("library / bare kernel, p50", ratios["library"]["p50"], 0.5, "x")
    report.target("HTTP / bare kernel, p50", ratios["http"]["p50"], 1.5, "x")
    report.notes.append(
        f"p99 ratios: library {ratios['library']['p99']:.2f}x, HTTP {ratios['http']['p99']:.2f}x;"
        f" with httpx as the client: p50 {ratios['httpx']['p50']:.2f}x, "
        f"p99 {ratios['httpx']['p99']:.2f}x"
    )
    common.bar_chart(
        common.results_dir(args) / "roundtrip.png",
        "Round trip of x = 1",
        [labels[k] for k in rows],
        {"p50": [v["p50_ms"] for v in rows.values()], "p99": [v["p99_ms"] for v in rows.values()]},
        "ms",
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("roundtrip"))
