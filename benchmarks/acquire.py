"""Acquire latency: ``engine.session()`` from the warm pool against a cold start.

A warm acquisition hands out a sandbox whose kernel is up with the stack imported; a cold one
starts a container and a kernel. Also timed: acquisition plus the first ``x = 1``.
Run: ``sandbox-engine bench acquire`` or ``python -m benchmarks.acquire [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from engine import Engine, Session

from . import common, fixtures
from .common import Report, summary

POOL = 10


async def _acquire(engine: Engine, thread: str) -> tuple[Session, float, float]:
    started = time.perf_counter()
    session = await engine.session(thread)
    acquired = time.perf_counter()
    result = await session.execute(fixtures.TRIVIAL)
    if not result.ok:
        raise RuntimeError(f"x = 1 failed: {result.error}")
    return session, acquired - started, time.perf_counter() - started


async def warm(rounds: int, gap: float) -> tuple[list[float], list[float], int]:
    """``rounds`` times: fill a pool of POOL, then take every sandbox in it, ``gap`` apart."""
    acquire: list[float] = []
    first: list[float] = []
    with fixtures.temp_dir("acquire-warm") as tmp:
        async with fixtures.engine(
            tmp / "engine", pool_size=POOL, pool_min=POOL, pool_max=POOL
        ) as engine:
            pool = engine.pool
            assert pool is not None
            for r in range(rounds):
                await pool.wait_ready(POOL, timeout=300)
                sessions = []
                for i in range(POOL):
                    session, took, with_first = await _acquire(engine, f"warm-{r}-{i}")
                    acquire.append(took)
                    first.append(with_first)
                    sessions.append(session)
                    await asyncio.sleep(gap)
                await asyncio.gather(*(engine.sessions.close(s.id) for s in sessions))
            return acquire, first, pool.misses


async def cold(starts: int) -> tuple[list[float], list[float]]:
    acquire: list[float] = []
    first: list[float] = []
    with fixtures.temp_dir("acquire-cold") as tmp:
        async with fixtures.engine(tmp / "engine") as engine:
            for i in range(starts + 1):
                session, took, with_first = await _acquire(engine, f"cold-{i}")
                if i:  # the first start also warms Docker's and the kernel's file caches
                    acquire.append(took)
                    first.append(with_first)
                await engine.sessions.close(session.id)
    return acquire, first


@common.entry
def main(args: argparse.Namespace) -> int:
    rounds, starts = (1, 3) if common.quick(args) else (3, 10)
    warm_acq, warm_first, misses = asyncio.run(warm(rounds, gap=0.05))
    cold_acq, cold_first = asyncio.run(cold(starts))
    rows = {
        "warm pool": summary(warm_acq),
        "cold start": summary(cold_acq),
        "warm pool + first x = 1": summary(warm_first),
        "cold start + first x = 1": summary(cold_first),
    }
    common.table(
        "Acquire latency: engine.session()",
        ["path", "p50 ms", "p90 ms", "p99 ms", "max ms", "n"],
        [(k, v["p50_ms"], v["p90_ms"], v["p99_ms"], v["max_ms"], v["n"]) for k, v in rows.items()],
    )
    report = Report("acquire", "Acquire latency: warm pool against cold start")
    report.data.update(
        {"latency": rows, "pool_size": POOL, "rounds": rounds, "pool_misses": misses}
    )
    report.target("warm acquire p50", rows["warm pool"]["p50_ms"], 25, " ms")
    report.target("warm acquire p99", rows["warm pool"]["p99_ms"], 100, " ms")
    speedup = rows["cold start"]["p50_ms"] / rows["warm pool"]["p50_ms"]
    report.notes.append(f"cold / warm p50: {speedup:.0f}x; pool misses during the run: {misses}")
    common.bar_chart(
        common.results_dir(args) / "acquire.png",
        "Acquire latency (log scale)",
        ["warm pool", "cold start"],
        {
            "p50": [rows["warm pool"]["p50_ms"], rows["cold start"]["p50_ms"]],
            "p99": [rows["warm pool"]["p99_ms"], rows["cold start"]["p99_ms"]],
        },
        "ms",
        log=True,
        lines={"target p50 25 ms": 25, "target p99 100 ms": 100},
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("acquire"))
