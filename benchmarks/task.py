"""A realistic task end to end: upload a 10 MB CSV, read it with pandas, group it, plot it to PNG,
and download the PNG. Through the library and through HTTP, each repetition in a new session
taken from the warm pool (as a new conversation would).
Run: ``sandbox-engine bench task`` or ``python -m benchmarks.task [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx

from engine import Engine

from . import common, fixtures
from .common import Report, summary

STEPS = ("acquire", "upload", "execute", "download", "total")
POOL = 2


async def library(engine: Engine, csv: bytes, reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    pool = engine.pool
    assert pool is not None
    for i in range(reps):
        await pool.wait_ready(POOL, timeout=300)
        marks = [time.perf_counter()]
        session = await engine.session(f"task-{i}")
        marks.append(time.perf_counter())
        await session.upload("sales.csv", csv)
        marks.append(time.perf_counter())
        result = await session.execute(fixtures.task_code(), timeout=300)
        marks.append(time.perf_counter())
        if not result.ok:
            raise RuntimeError(f"the task failed: {result.error}")
        fixtures.check_task_stdout(result.stdout)
        chart = next(o for o in result.outputs if o.filename == "chart.png")
        fixtures.check_png(await engine.files.content(chart.file_id))
        marks.append(time.perf_counter())
        await engine.sessions.close(session.id)
        _record(times, marks)
    return times


async def over_http(server: fixtures.Server, csv: bytes, reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=300) as http:
        for i in range(reps):
            await _pool_ready(http, POOL)
            marks = [time.perf_counter()]
            created = await http.post("/v1/sessions", json={"thread_id": f"task-{i}"})
            created.raise_for_status()
            sid = created.json()["id"]
            marks.append(time.perf_counter())
            upload = await http.post(
                f"/v1/sessions/{sid}/files", files={"file": ("sales.csv", csv, "text/csv")}
            )
            upload.raise_for_status()
            marks.append(time.perf_counter())
            executed = await http.post(
                f"/v1/sessions/{sid}/execute", json={"code": fixtures.task_code(), "timeout": 300}
            )
            executed.raise_for_status()
            result = executed.json()
            marks.append(time.perf_counter())
            if result["status"] != "ok":
                raise RuntimeError(f"the task failed: {result['error']}")
            fixtures.check_task_stdout(result["stdout"])
            chart = next(o for o in result["outputs"] if o["filename"] == "chart.png")
            png = await http.get(f"/v1/files/{chart['file_id']}/content")
            png.raise_for_status()
            fixtures.check_png(png.content)
            marks.append(time.perf_counter())
            (await http.delete(f"/v1/sessions/{sid}")).raise_for_status()
            _record(times, marks)
    return times


async def _pool_ready(http: httpx.AsyncClient, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (await http.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith("sandbox_pool_ready ") and float(line.split()[1]) >= count:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError("the server's warm pool did not fill")


def _record(times: dict[str, list[float]], marks: list[float]) -> None:
    for i, step in enumerate(STEPS[:-1]):
        times[step].append(marks[i + 1] - marks[i])
    times["total"].append(marks[-1] - marks[0])


async def measure(reps: int) -> dict[str, dict[str, list[float]]]:
    with fixtures.temp_dir("task") as tmp:
        csv = fixtures.make_csv(tmp / "sales.csv").read_bytes()
        async with fixtures.engine(
            tmp / "engine", pool_size=POOL, pool_min=POOL, pool_max=POOL
        ) as engine:
            lib = await library(engine, csv, reps)
        with fixtures.Server(
            tmp / "server",
            SANDBOX_POOL_SIZE=str(POOL),
            SANDBOX_POOL_MIN=str(POOL),
            SANDBOX_POOL_MAX=str(POOL),
        ) as server:
            http = await over_http(server, csv, reps)
    return {"library": lib, "http": http}


def csv_size() -> int:
    with fixtures.temp_dir("csv") as tmp:
        return fixtures.make_csv(Path(tmp) / "sales.csv").stat().st_size


@common.entry
def main(args: argparse.Namespace) -> int:
    reps = 2 if common.quick(args) else 6
    samples = asyncio.run(measure(reps))
    rows = {
        path: {step: summary(values) for step, values in steps.items()}
        for path, steps in samples.items()
    }
    common.table(
        "Realistic task: 10 MB CSV -> pandas group-by -> PNG chart (p50 ms)",
        ["path", *STEPS, "total p99", "n"],
        [
            (path, *(r[s]["p50_ms"] for s in STEPS), r["total"]["p99_ms"], r["total"]["n"])
            for path, r in rows.items()
        ],
    )
    report = Report("task", "Realistic task end to end: upload, pandas, group-by, PNG")
    report.data.update(
        {
            "csv_bytes": csv_size(),
            "rows": fixtures.TASK_ROWS,
            "steps_ms": rows,
            "code": fixtures.task_code(),
        }
    )
    report.notes.append(
        f"total p50: library {rows['library']['total']['p50_ms']:.0f} ms, "
        f"HTTP {rows['http']['total']['p50_ms']:.0f} ms"
    )
    common.bar_chart(
        common.results_dir(args) / "task.png",
        "Realistic task, p50 per step",
        list(STEPS),
        {path: [r[s]["p50_ms"] for s in STEPS] for path, r in rows.items()},
        "ms",
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("task"))
