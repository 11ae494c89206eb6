"""Peers side by side, on the same Docker engine, the same image and the same tasks.

- the engine: library and HTTP, task sessions from the warm pool;
- ``docker-run``: the naive way, ``docker run --rm --network none IMAGE python -c CODE`` per call;
- ``llm-sandbox``: its Docker backend (``SandboxSession``), a container per session, every run
  a ``docker exec`` of a new interpreter;
- ``llm-sandbox-interactive``: its persistent IPython runtime (``InteractiveSandboxSession``);
- ``autogen``: AutoGen's ``DockerCommandLineCodeExecutor``.

Every peer call is paired with engine calls made right after it, so each ratio compares figures
taken under the same load. The peers live in their own virtualenv (created on first use,
pinned versions) so that their dependencies never touch the engine's; each is driven in a child
process (``peer_drivers.py``).
Run: ``sandbox-engine bench peers`` or ``python -m benchmarks.peers [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from engine import Engine

from . import common, fixtures
from .common import Report, summary

PEER_PACKAGES = ["llm-sandbox==0.3.46", "autogen-ext[docker]==0.7.5", "autogen-core==0.7.5"]
PEERS = ["docker-run", "llm-sandbox", "llm-sandbox-interactive", "autogen"]
TRIVIAL = "x = 1\nprint(x)"
WARMUP = 3
POOL = 2
VENV = Path(
    os.environ.get(
        "SANDBOX_BENCH_PEERS_VENV", Path.home() / ".cache" / "sandbox-engine-bench" / "peers-venv"
    )
)


def peers_python() -> Path:
    """The peers' virtualenv, made on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        common.console.print(f"  [dim]creating {VENV} with {' '.join(PEER_PACKAGES)}[/]")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


class Driver:
    """A peer in its child process, one command at a time."""

    def __init__(self, python: Path, peer: str, image: str, csv: Path, code_file: Path) -> None:
        self.peer = peer
        self.process = subprocess.Popen(
            [
                str(python),
                str(Path(__file__).with_name("peer_drivers.py")),
                peer,
                "--image",
                image,
                "--csv",
                str(csv),
                "--code-file",
                str(code_file),
                "--rows",
                str(fixtures.TASK_ROWS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    async def call(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = await asyncio.to_thread(self.process.stdout.readline)
        if not line:
            raise RuntimeError(f"{self.peer}: the driver exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.peer} {command}: {answer['error']}")
        return answer

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.call("close"), timeout=180)
        except (RuntimeError, TimeoutError, OSError, ValueError):
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
            await asyncio.to_thread(self.process.wait)


class EngineSide:
    """The engine's calls that pair with a peer's: one library session, one over HTTP."""

    def __init__(self, engine: Engine, http: httpx.AsyncClient, csv: bytes) -> None:
        self.engine = engine
        self.http = http
        self.csv = csv
        self.tasks = 0

    async def open(self) -> None:
        self.session = await self.engine.session("peers-trivial")
        created = await self.http.post("/v1/sessions", json={})
        created.raise_for_status()
        self.path = f"/v1/sessions/{created.json()['id']}/execute"

    async def library(self) -> float:
        started = time.perf_counter()
        result = await self.session.execute(TRIVIAL)
        took = time.perf_counter() - started
        if result.stdout != "1\n":
            raise RuntimeError(f"engine: {result}")
        return took

    async def over_http(self) -> float:
        started = time.perf_counter()
        response = await self.http.post(self.path, json={"code": TRIVIAL})
        took = time.perf_counter() - started
        if response.json().get("stdout") != "1\n":
            raise RuntimeError(f"engine over HTTP: {response.text[:500]}")
        return took

    async def task(self) -> dict[str, float]:
        """Acquire from the warm pool, upload, run, download: the same steps as the peers."""
        engine = self.engine
        marks = [time.perf_counter()]
        session = await engine.session(f"peers-task-{self.tasks}")
        self.tasks += 1
        marks.append(time.perf_counter())
        await session.upload("sales.csv", self.csv)
        marks.append(time.perf_counter())
        result = await session.execute(fixtures.task_code(), timeout=300)
        marks.append(time.perf_counter())
        fixtures.check_task_stdout(result.stdout)
        chart = next(o for o in result.outputs if o.filename == "chart.png")
        fixtures.check_png(await engine.files.content(chart.file_id))
        marks.append(time.perf_counter())
        await engine.sessions.close(session.id)
        steps = ("start", "upload", "execute", "download")
        return {
            **{s: marks[i + 1] - marks[i] for i, s in enumerate(steps)},
            "total": marks[-1] - marks[0],
        }

    async def pool_ready(self) -> None:
        assert self.engine.pool is not None
        await self.engine.pool.wait_ready(POOL, timeout=300)


async def compare(
    driver: Driver, side: EngineSide, n: int, reps: int, starts: int
) -> dict[str, Any]:
    """Peer and engine calls in alternation; the samples of both, by measure."""
    peer: dict[str, list[float]] = {"start": [], "trivial": []}
    mine: dict[str, list[float]] = {"trivial": [], "trivial_http": []}
    result: dict[str, Any] = {"peer": peer, "engine": mine}
    result["version"] = (await driver.call("version"))["version"]
    for _ in range(starts):
        seconds = (await driver.call("start"))["seconds"]
        if seconds is not None:
            peer["start"].append(seconds)
    for i in range(WARMUP + n):
        took = (await driver.call("trivial"))["seconds"]
        lib = await side.library()
        http = await side.over_http()
        if i >= WARMUP:
            peer["trivial"].append(took)
            mine["trivial"].append(lib)
            mine["trivial_http"].append(http)
    for _ in range(reps):
        await side.pool_ready()
        for step, seconds in (await driver.call("task"))["steps"].items():
            peer.setdefault(f"task_{step}", []).append(seconds)
        await side.pool_ready()
        for step, seconds in (await side.task()).items():
            mine.setdefault(f"task_{step}", []).append(seconds)
    return result


async def measure(tmp: Path, quick: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    csv = fixtures.make_csv(tmp / "sales.csv")
    code_file = tmp / "task_code.py"
    code_file.write_text(fixtures.TASK_CODE)
    python = peers_python()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    async with fixtures.engine(
        tmp / "engine", pool_size=POOL, pool_min=POOL, pool_max=POOL
    ) as engine:
        with fixtures.Server(tmp / "server") as server:
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.headers, timeout=300
            ) as http:
                side = EngineSide(engine, http, csv.read_bytes())
                await side.open()
                for peer in PEERS:
                    n = (5 if quick else 10) if peer == "docker-run" else (10 if quick else 30)
                    driver = Driver(python, peer, engine.image, csv, code_file)
                    try:
                        results[peer] = await compare(
                            driver, side, n, 1 if quick else 3, 1 if quick else 3
                        )
                    except (RuntimeError, OSError, ValueError) as exc:
                        errors[peer] = str(exc)
                        common.console.print(f"  [red]{peer}: {exc}[/]")
                    finally:
                        await driver.close()
        return engine.image, results, errors


def _p50(samples: dict[str, list[float]], key: str) -> float:
    return summary(samples.get(key, []))["p50_ms"]


@common.entry
def main(args: argparse.Namespace) -> int:
    with fixtures.temp_dir("peers") as tmp:
        image, results, errors = asyncio.run(measure(tmp, common.quick(args)))
    rows = []
    ratios: dict[str, float] = {}
    for peer, r in results.items():
        p, e = r["peer"], r["engine"]
        ratios[peer] = _p50(p, "trivial") / _p50(e, "trivial")
        rows.append(
            (
                peer,
                _p50(p, "start"),
                _p50(p, "trivial"),
                summary(p["trivial"])["p99_ms"],
                _p50(p, "task_total"),
                "-",
            )
        )
        rows.append(
            (
                "  engine, same run",
                _p50(e, "task_start"),
                _p50(e, "trivial"),
                summary(e["trivial"])["p99_ms"],
                _p50(e, "task_total"),
                f"{ratios[peer]:.1f}x",
            )
        )
    common.table(
        f"Peers on the same Docker engine and image ({image}), calls interleaved",
        [
            "system",
            "start p50 ms",
            "x = 1 p50 ms",
            "x = 1 p99 ms",
            "task p50 ms",
            "peer / engine x = 1",
        ],
        rows,
    )
    engine_all = {
        key: [v for r in results.values() for v in r["engine"].get(key, [])]
        for key in ("trivial", "trivial_http", "task_start", "task_total")
    }
    report = Report("peers", "Peers side by side: trivial round trip, start, realistic task")
    report.data.update(
        {
            "image": image,
            "peer_packages": PEER_PACKAGES,
            "errors": errors,
            "engine_all": {k: summary(v) for k, v in engine_all.items()},
            "systems": {
                peer: {
                    "version": r["version"],
                    "peer": {k: summary(v) for k, v in r["peer"].items()},
                    "engine_same_run": {k: summary(v) for k, v in r["engine"].items()},
                    "ratio_trivial_p50": ratios[peer],
                }
                for peer, r in results.items()
            },
        }
    )
    for peer in PEERS:
        if peer in ratios:
            report.target(f"{peer} x = 1 p50 / engine's", ratios[peer], 20, "x", at_least=True)
        else:
            report.notes.append(f"{peer} did not run: {errors.get(peer)}")
    names = ["engine (library)", "engine (HTTP)", *results]
    trivial = [_p50(engine_all, "trivial"), _p50(engine_all, "trivial_http")]
    trivial += [_p50(r["peer"], "trivial") for r in results.values()]
    results_dir = common.results_dir(args)
    common.bar_chart(
        results_dir / "peers_trivial.png",
        "x = 1 round trip, p50 (log scale)",
        names,
        {"ms": trivial},
        "ms",
        log=True,
    )
    common.bar_chart(
        results_dir / "peers_task.png",
        "Realistic task end to end (10 MB CSV -> PNG), p50",
        ["engine (library)", *results],
        {
            "ms": [
                _p50(engine_all, "task_total"),
                *(_p50(r["peer"], "task_total") for r in results.values()),
            ]
        },
        "ms",
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("peers"))
