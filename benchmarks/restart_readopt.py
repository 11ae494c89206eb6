"""Restart with live sessions: how long until every session answers again, variables intact.

50 sessions on a ``sandbox-engine serve`` process each set ``x``. The server is then killed
with SIGKILL (a crash) and, in a second round, stopped with SIGTERM (a deploy; sandboxes are
kept, the default). Each time a new server starts on the same data folder, and the clock runs
from its start until every session has answered ``print(x)`` with its own value.
Run: ``sandbox-engine bench restart`` or ``python -m benchmarks.restart_readopt [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from . import common, fixtures
from .common import Report

SESSIONS = 50
TARGET_S = 3.0
RECOVERED = re.compile(r"recovered (\d+) session\(s\) in ([0-9.]+) s")


def _engine_started_at(log: str) -> float | None:
    """The wall-clock time the new engine's start began, from its JSON log."""
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if str(record.get("msg", "")).startswith("engine starting"):
                return float(record["ts"])
    return None


async def _create(url: str, headers: dict[str, str], count: int) -> list[str]:
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:

        async def one(n: int) -> str:
            async with limit:
                r = await client.post("/v1/sessions", json={"thread_id": f"restart-{n}"})
                r.raise_for_status()
                sid: str = r.json()["id"]
                body = {"code": f"x = {n} * 1000"}
                r = await client.post(f"/v1/sessions/{sid}/execute", json=body)
                r.raise_for_status()
                return sid

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _all_answer(url: str, headers: dict[str, str], ids: list[str]) -> list[float]:
    """Poll until the server answers, then ask every session for ``x``; seconds each took."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.01)

        async def one(n: int, sid: str) -> float:
            started = time.perf_counter()
            r = await client.post(f"/v1/sessions/{sid}/execute", json={"code": "print(x)"})
            r.raise_for_status()
            if r.json()["stdout"] != f"{n * 1000}\n":
                raise RuntimeError(f"session {sid} lost its variables: {r.json()}")
            return time.perf_counter() - started

        return list(await asyncio.gather(*(one(n, s) for n, s in enumerate(ids))))


def _round(data_dir: Path, ids: list[str], env: dict[str, str]) -> tuple[fixtures.Server, dict]:
    server = fixtures.Server(data_dir, **env)
    started = time.perf_counter()
    server.__enter__()  # returns once /readyz answers
    ready = time.perf_counter() - started
    latencies = asyncio.run(_all_answer(server.url, server.headers, ids))
    total = time.perf_counter() - started
    done_at = time.time()
    log = server.log_path.read_text()
    found = RECOVERED.findall(log)
    recovered, recovery_s = (int(found[-1][0]), float(found[-1][1])) if found else (0, 0.0)
    engine_at = _engine_started_at(log)
    return server, {
        "engine_start_to_all_answering_s": round(done_at - engine_at, 3) if engine_at else None,
        "process_start_to_ready_s": round(ready, 3),
        "process_start_to_all_answering_s": round(total, 3),
        "engine_recovery_s": recovery_s,
        "sessions_recovered": recovered,
        "first_execute": common.summary(latencies),
    }


def _stop(server: fixtures.Server, how: signal.Signals) -> None:
    assert server.process is not None
    server.process.send_signal(how)
    try:
        server.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@common.entry
def main(args: argparse.Namespace) -> int:
    count = 10 if common.quick(args) else SESSIONS
    keep = {"SANDBOX_SHUTDOWN_SANDBOXES": "keep"}
    rounds: dict[str, dict] = {}
    with fixtures.temp_dir("restart") as tmp:
        data_dir = tmp / "engine"
        first = fixtures.Server(data_dir, **keep).__enter__()
        ids = asyncio.run(_create(first.url, first.headers, count))
        _stop(first, signal.SIGKILL)
        second, rounds["after kill -9"] = _round(data_dir, ids, keep)
        _stop(second, signal.SIGTERM)
        # The last server closes its sessions when it stops: nothing outlives the benchmark.
        last, rounds["after a graceful stop"] = _round(data_dir, ids, {})
        last.__exit__()
    common.table(
        f"Restart with {count} live sessions",
        [
            "restart",
            "engine start to all answering s",
            "process start to ready s",
            "process start to all answering s",
            "engine recovery s",
            "execute p50 ms",
            "n",
        ],
        [
            (
                name,
                r["engine_start_to_all_answering_s"],
                r["process_start_to_ready_s"],
                r["process_start_to_all_answering_s"],
                r["engine_recovery_s"],
                r["first_execute"]["p50_ms"],
                r["sessions_recovered"],
            )
            for name, r in rounds.items()
        ],
    )
    report = Report("restart", f"Restart with {count} live sessions: time until all answer")
    report.data.update({"sessions": count, "rounds": rounds})
    for name, r in rounds.items():
        report.target(
            f"engine start to all {count} answering, {name}",
            r["engine_start_to_all_answering_s"] or float("inf"),
            TARGET_S,
            " s",
        )
    report.notes.append(
        "engine start: the new server's Engine.start (its log's 'engine starting' line), until "
        "every session answered print(x) with its own value; the process-start figures add "
        "the Python, FastAPI and uvicorn start-up before it"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("restart"))
