"""Cold session start and the ``x = 1`` round trip, beside a bare local jupyter_client kernel.

Run: ``python -m benchmarks.kernel_roundtrip`` (or ``sandbox-engine bench kernel``).
Prints a table and writes ``kernel_roundtrip.json`` into ``--out`` (default ``./bench-results``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import start_new_async_kernel
from rich.console import Console
from rich.table import Table

from engine import Engine, Settings

from .common import results_dir, summary


async def _bare_execute(kc: AsyncKernelClient) -> None:
    await kc.execute_interactive("x = 1", store_history=True)


async def measure(n: int, starts: int) -> dict[str, list[float]]:
    """Cold starts first, then engine and bare-kernel round trips interleaved, so drift in the
    machine's load hits both alike."""
    km, kc = await start_new_async_kernel(kernel_name="python3")
    try:
        with TemporaryDirectory() as tmp:
            async with Engine(
                Settings(data_dir=Path(tmp), pool_size=0, shutdown_sandboxes="close")
            ) as engine:
                cold = []
                for i in range(starts):
                    t = time.perf_counter()
                    session = await engine.session(f"cold-{i}")
                    await session.execute("x = 1")
                    cold.append(time.perf_counter() - t)
                    if i < starts - 1:
                        await engine.sessions.close(session.id)
                engine_rt: list[float] = []
                bare_rt: list[float] = []
                for i in range(n + 20):
                    for target, times in ((session.execute, engine_rt), (None, bare_rt)):
                        t = time.perf_counter()
                        await (target("x = 1") if target else _bare_execute(kc))
                        if i >= 20:
                            times.append(time.perf_counter() - t)
                return {
                    "cold_start": cold,
                    "engine_roundtrip": engine_rt,
                    "bare_kernel_roundtrip": bare_rt,
                }
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def main(n: int, starts: int) -> dict[str, dict[str, float]]:
    samples = await measure(n, starts)
    report = {name: summary(values) for name, values in samples.items()}
    ratio = report["engine_roundtrip"]["p50_ms"] / report["bare_kernel_roundtrip"]["p50_ms"]
    report["roundtrip_ratio_p50"] = {"value": ratio}

    table = Table(title="Kernel benchmark (targets: cold start <= 1500 ms, ratio <= 1.2)")
    for col in ("measure", "p50 ms", "p99 ms", "mean ms", "n"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    for name, s in report.items():
        if name in samples:
            table.add_row(
                name, f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['mean_ms']:.2f}", str(s["n"])
            )
    console = Console()
    console.print(table)
    console.print(f"engine / bare kernel round trip, p50: {ratio:.2f}x")
    return report


def save(report: dict[str, dict[str, float]], results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "kernel_roundtrip.json").write_text(json.dumps(report, indent=2))


def bench(args: argparse.Namespace) -> int:
    """``sandbox-engine bench kernel``: the defaults of ``run``."""
    save(asyncio.run(main(300, 5)), results_dir(args))
    return 0


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=300, help="round trips per kernel")
    parser.add_argument("--starts", type=int, default=5, help="cold session starts")
    parser.add_argument("--out", "--results", dest="results", help="folder for the JSON file")
    args = parser.parse_args(argv)
    save(asyncio.run(main(args.n, args.starts)), results_dir(args))


if __name__ == "__main__":
    run()
