"""Throughput: executions of ``x = 1`` per second with 1, 8, 32 and 64 sessions at once.

One engine, 64 live sessions; for each level, that many sessions each run executions back to
back for a fixed time. Each session runs one execution at a time, so the level is also the
number of executions in flight.
Run: ``sandbox-engine bench throughput`` or ``python -m benchmarks.throughput [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from engine import Engine, Session

from . import common, fixtures
from .common import Report, summary

LEVELS = (1, 8, 32, 64)
STARTING_AT_ONCE = 4


async def _start(engine: Engine, count: int) -> list[Session]:
    gate = asyncio.Semaphore(STARTING_AT_ONCE)

    async def one(i: int) -> Session:
        async with gate:
            return await engine.session(f"throughput-{i}")

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _level(sessions: list[Session], seconds: float) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds

    async def worker(session: Session) -> None:
        nonlocal failures
        while time.perf_counter() < stop:
            started = time.perf_counter()
            result = await session.execute(fixtures.TRIVIAL)
            latencies.append(time.perf_counter() - started)
            failures += not result.ok

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in sessions))
    return failures, latencies, time.perf_counter() - started


async def measure(seconds: float) -> tuple[dict[int, dict[str, float]], float]:
    with fixtures.temp_dir("throughput") as tmp:
        async with fixtures.engine(tmp / "engine") as engine:
            started = time.perf_counter()
            sessions = await _start(engine, max(LEVELS))
            start_seconds = time.perf_counter() - started
            await _level(sessions[:1], 1.0)  # warm-up
            rows = {}
            for level in LEVELS:
                failures, latencies, elapsed = await _level(sessions[:level], seconds)
                rows[level] = {
                    "executions_per_second": len(latencies) / elapsed,
                    "executions": len(latencies),
                    "failures": failures,
                    **summary(latencies),
                }
            return rows, start_seconds


@common.entry
def main(args: argparse.Namespace) -> int:
    seconds = 3.0 if common.quick(args) else 10.0
    rows, start_seconds = asyncio.run(measure(seconds))
    common.table(
        f"Throughput of x = 1 ({seconds:g} s per level, library)",
        ["sessions", "exec/s", "p50 ms", "p99 ms", "executions", "failures"],
        [
            (
                str(level),
                r["executions_per_second"],
                r["p50_ms"],
                r["p99_ms"],
                r["executions"],
                r["failures"],
            )
            for level, r in rows.items()
        ],
    )
    report = Report("throughput", "Throughput: executions per second by concurrent sessions")
    report.data.update(
        {"seconds_per_level": seconds, "levels": rows, "start_64_sessions_s": start_seconds}
    )
    report.notes.append(
        f"started {max(LEVELS)} sessions in {start_seconds:.1f} s "
        f"({STARTING_AT_ONCE} at a time, no warm pool)"
    )
    common.line_chart(
        common.results_dir(args) / "throughput.png",
        "Throughput of x = 1",
        list(LEVELS),
        {"executions per second": [rows[level]["executions_per_second"] for level in LEVELS]},
        "concurrent sessions",
        "executions / s",
        logx=True,
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("throughput"))
