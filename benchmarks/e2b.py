"""The E2B face, measured with E2B's own Python SDK against a real uvicorn serving the engine.

- Time to interactive (ComputeSDK's method): ``Sandbox.create`` until the first ``run_code``
  result, each sandbox killed after. Sequential (one at a time, the warm pool full before each),
  staggered (one every ``STAGGER`` seconds, overlapping) and a burst (``BURST`` at once).
- ``run_code("x = 1")`` round trip through the E2B face against the native API's
  ``POST /v1/sessions/{id}/execute`` in the same run, on the same server, interleaved.

Run: ``sandbox-engine bench e2b`` or ``python -m benchmarks.e2b [--quick]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from e2b_code_interpreter import Sandbox

from engine import Settings

from . import common, fixtures
from .common import Report, percentile, summary
from .responses_overhead import Thread

KEY = "e2b_" + "be" * 20
POOL = 4
STAGGER = 0.25
WARMUP = 10


def latencies(seconds: list[float]) -> dict[str, float]:
    """``summary`` with the p95 that ComputeSDK's tables show."""
    return {**summary(seconds), "p95_ms": percentile([s * 1000 for s in seconds], 95)}


@contextmanager
def server(data_dir: Path, burst: int) -> Iterator[tuple[str, Any]]:
    from engine.api import create_app

    settings = Settings(
        data_dir=data_dir,
        api_keys=KEY,
        pool_size=POOL,
        pool_min=POOL,
        pool_max=max(POOL, burst),
        max_sessions_per_owner=burst + 10,
        memory_limit_mb=256,
        shutdown_sandboxes="close",
    )
    app = create_app(settings)
    with Thread(app) as srv:
        yield srv.url, app


def sdk_params(url: str) -> dict[str, Any]:
    return {"api_key": KEY, "api_url": f"{url}/e2b", "sandbox_url": f"{url}/e2b"}


def wait_for_pool(app: Any, count: int, timeout: float = 120.0) -> None:
    """The warm pool holds ``count`` ready sandboxes (it refills in the server's own loop)."""
    pool = app.state.engine.runtime.pool
    deadline = time.monotonic() + timeout
    while pool.ready < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the warm pool did not refill to {count} in {timeout} s")
        time.sleep(0.02)


CREATES: list[float] = []
"""How long each ``Sandbox.create`` of the sequential run took, of its time to interactive."""


def time_to_interactive(url: str) -> float:
    started = time.perf_counter()
    sandbox = Sandbox.create(**sdk_params(url))
    created = time.perf_counter() - started
    try:
        if sandbox.run_code("1 + 1").text != "2":
            raise RuntimeError("the first run_code did not answer 2")
        CREATES.append(created)
        return time.perf_counter() - started
    finally:
        sandbox.kill()


def sequential(url: str, app: Any, n: int) -> list[float]:
    samples = []
    CREATES.clear()
    for _ in range(n):
        wait_for_pool(app, POOL)
        samples.append(time_to_interactive(url))
    return samples


def overlapping(url: str, n: int, every: float) -> list[float]:
    """``n`` sandboxes started ``every`` seconds apart (0: all at once), each timed alone."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as workers:
        futures = []
        for i in range(n):
            futures.append(workers.submit(time_to_interactive, url))
            if every and i < n - 1:
                time.sleep(every)
        return [f.result() for f in futures]


def round_trips(url: str, n: int) -> dict[str, list[float]]:
    """``x = 1`` through the E2B face and through the native API, alternately."""
    sandbox = Sandbox.create(**sdk_params(url))
    native = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    samples: dict[str, list[float]] = {"e2b": [], "native": []}
    try:
        session_id = native.post("/v1/sessions", json={}).json()["id"]
        for i in range(WARMUP + n):
            started = time.perf_counter()
            sandbox.run_code("x = 1")
            e2b = time.perf_counter() - started
            started = time.perf_counter()
            answer = native.post(f"/v1/sessions/{session_id}/execute", json={"code": "x = 1"})
            ours = time.perf_counter() - started
            if answer.json()["status"] != "ok":
                raise RuntimeError(answer.text)
            if i >= WARMUP:
                samples["e2b"].append(e2b)
                samples["native"].append(ours)
        native.delete(f"/v1/sessions/{session_id}")
    finally:
        sandbox.kill()
        native.close()
    return samples


@common.entry
def main(args: argparse.Namespace) -> int:
    quick = common.quick(args)
    n, burst, trips = (10, 5, 50) if quick else (30, 20, 200)
    with fixtures.temp_dir("e2b") as tmp, server(tmp / "engine", burst) as (url, app):
        wait_for_pool(app, POOL)
        samples = {"sequential": sequential(url, app, n)}
        samples["sequential: create only"] = list(CREATES)
        wait_for_pool(app, POOL)
        samples["staggered"] = overlapping(url, burst, STAGGER)
        wait_for_pool(app, POOL)
        samples["burst"] = overlapping(url, burst, 0)
        wait_for_pool(app, POOL)
        trip = round_trips(url, trips)
    tti = {name: latencies(values) for name, values in samples.items()}
    rtt = {name: latencies(values) for name, values in trip.items()}
    common.table(
        f"E2B face: time to interactive, Sandbox.create to the first run_code (warm pool {POOL})",
        ["run", "p50 ms", "p95 ms", "p99 ms", "mean ms", "n"],
        [(k, v["p50_ms"], v["p95_ms"], v["p99_ms"], v["mean_ms"], v["n"]) for k, v in tti.items()],
    )
    common.table(
        "run_code('x = 1') round trip: the E2B face against the native API",
        ["API", "p50 ms", "p95 ms", "p99 ms", "mean ms", "n"],
        [(k, v["p50_ms"], v["p95_ms"], v["p99_ms"], v["mean_ms"], v["n"]) for k, v in rtt.items()],
    )
    report = Report("e2b", "The E2B face: time to interactive and round trip")
    report.data.update({"time_to_interactive": tti, "round_trip": rtt, "pool": POOL})
    report.target("time to interactive p50, sequential", tti["sequential"]["p50_ms"], 50, " ms")
    ratio = rtt["e2b"]["p50_ms"] / rtt["native"]["p50_ms"]
    report.target("E2B round trip / native, p50", ratio, 1.3, "x")
    report.notes.append(
        f"staggered: {burst} sandboxes, one every {STAGGER} s; burst: {burst} at once, with "
        f"{POOL} warm (the rest start cold)"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("e2b"))
