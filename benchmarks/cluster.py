"""The cluster against a single host, in one run: the round trip of ``x = 1`` through an API
replica and a node agent (Ray) against a local ``serve``, interleaved call by call; and how fast
each creates sessions, several at once. The cluster is ``LocalCluster`` on this machine: a Ray
head, 2 nodes on this machine's Docker and 1 replica, all real processes.
Run: ``sandbox-engine bench cluster`` or ``python -m benchmarks.cluster [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time

import httpx

from engine.cluster.demo import DemoState, LocalCluster, stop

from . import common, fixtures
from .common import Report, summary

WARMUP = 30
PARALLEL = 4


async def round_trips(urls: dict[str, tuple[str, dict[str, str]]], n: int) -> dict[str, list]:
    clients = {
        name: httpx.AsyncClient(base_url=url, headers=headers, timeout=120)
        for name, (url, headers) in urls.items()
    }
    try:
        paths = {}
        for name, client in clients.items():
            created = await client.post("/v1/sessions", json={})
            created.raise_for_status()
            paths[name] = f"/v1/sessions/{created.json()['id']}/execute"
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(WARMUP + n):
            for name, client in clients.items():
                started = time.perf_counter()
                reply = await client.post(paths[name], json={"code": fixtures.TRIVIAL})
                took = time.perf_counter() - started
                assert reply.status_code == 200 and reply.json()["status"] == "ok", reply.text
                if i >= WARMUP:
                    samples[name].append(took)
        return samples
    finally:
        for client in clients.values():
            await client.aclose()


async def creation_rate(url: str, headers: dict[str, str], count: int) -> float:
    """Sessions per second, ``PARALLEL`` creations at a time (then closed)."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        limit = asyncio.Semaphore(PARALLEL)

        async def create() -> str:
            async with limit:
                reply = await client.post("/v1/sessions", json={})
                reply.raise_for_status()
                return str(reply.json()["id"])

        started = time.perf_counter()
        made = await asyncio.gather(*(create() for _ in range(count)))
        took = time.perf_counter() - started
        for session in made:
            await client.delete(f"/v1/sessions/{session}")
        return count / took


def node_death(state: DemoState) -> dict[str, float]:
    """Seconds from SIGKILL of a node's processes until an execution in a session there answers
    (503 node_unreachable), and until that session's info carries the notice."""
    victim = state.nodes[0]
    with httpx.Client(base_url=state.urls[0], timeout=120) as http:
        sessions = [http.post("/v1/sessions", json={}).json()["id"] for _ in state.nodes]
        for session in sessions:  # placement put one on each node
            http.post(f"/v1/sessions/{session}/execute", json={"code": "1"}).raise_for_status()
        assert victim.node is not None and victim.ray_pid and victim.agent_pid
        killed = time.perf_counter()
        for group in (victim.node.pid, victim.ray_pid, victim.agent_pid):
            os.killpg(group, signal.SIGKILL)
        answers = [http.post(f"/v1/sessions/{s}/execute", json={"code": "1"}) for s in sessions]
        answered = time.perf_counter() - killed
        assert sorted(a.status_code for a in answers) == [200, 503], [a.text for a in answers]
        lost = sessions[[a.status_code for a in answers].index(503)]
        end = time.monotonic() + 120
        while not http.get(f"/v1/sessions/{lost}").json()["notice"]:
            assert time.monotonic() < end, "the lost session's info never said so"
            time.sleep(0.05)
        noticed = time.perf_counter() - killed
    return {"answered_s": answered, "notice_s": noticed}


@common.entry
def main(args: argparse.Namespace) -> int:
    n = 60 if common.quick(args) else 300
    count = 4 if common.quick(args) else 8
    with fixtures.temp_dir("cluster") as tmp, fixtures.Server(tmp / "local") as server:
        cluster = LocalCluster(
            tmp / "cluster",
            nodes=2,
            replicas=1,
            own_docker=False,
            env={"SANDBOX_MAX_SESSIONS": "1000", "SANDBOX_MAX_SESSIONS_PER_OWNER": "1000"},
        )
        state = cluster.start()
        try:
            urls = {"local": (server.url, server.headers), "cluster": (state.urls[0], {})}
            samples = asyncio.run(round_trips(urls, n))
            rates = {
                "local": asyncio.run(creation_rate(server.url, server.headers, count)),
                "cluster": asyncio.run(creation_rate(state.urls[0], {}, count)),
            }
            death = node_death(state)
        finally:
            stop(state)
    rows = {name: summary(values) for name, values in samples.items()}
    added = rows["cluster"]["p50_ms"] - rows["local"]["p50_ms"]
    common.table(
        "Round trip of x = 1 over HTTP (httpx), interleaved in one run",
        ["path", "p50 ms", "p90 ms", "p99 ms", "mean ms", "n"],
        [
            (name, v["p50_ms"], v["p90_ms"], v["p99_ms"], v["mean_ms"], v["n"])
            for name, v in rows.items()
        ],
    )
    common.table(
        f"Session creation, {count} sessions, {PARALLEL} at a time (no warm pool)",
        ["engine", "sessions/s"],
        [(name, rate) for name, rate in rates.items()],
    )
    common.table(
        "A node's processes SIGKILLed: seconds until its session answers (503), and shows why",
        ["what", "seconds"],
        [
            ("execution answers node_unreachable", death["answered_s"]),
            ("info notice", death["notice_s"]),
        ],
    )
    report = Report("cluster", "A cluster on Ray (2 nodes, 1 replica) against a local serve")
    report.data.update(
        {"latency": rows, "added_p50_ms": added, "creation_per_s": rates, "node_death": death}
    )
    report.target("execute round trip added by the cluster, p50", added, 5.0, " ms")
    report.notes.append(
        "both nodes share this machine's 2 cores and Docker: creation through the cluster "
        "cannot scale with nodes here; run it with a node per host for that figure"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("cluster"))
