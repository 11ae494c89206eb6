"""Kernel floods: what hostile kernels cost the engine, and whether the other sessions notice.

For 1, 4 and 16 flooding kernels at once, two floods: six 200 MB messages each (over the
64 MB cap: refused from the frame header, the kernel restarted), and many 1 MB messages each
(under the cap: received, decoded and dropped by the output caps). Meanwhile a canary session
runs ``1+1`` in a loop. Reports the engine's RSS growth over its level before the flood (target
under 256 MiB at every count) and the canary's latency.
Opt-in: ``sandbox-engine bench flood [--quick]`` or ``python -m benchmarks.kernel_flood``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from engine import Session

from . import common, fixtures
from .common import Report, summary

COUNTS = (1, 4, 16)
TARGET_MIB = 256
# The frames are built once and sent without copies: the engine sees exactly what
# ``kernel.session.send`` would send, and sixteen kernels need not build 200 MB strings each.
FLOOD = """
import json
k = get_ipython().kernel
s = k.session
parent = json.dumps(k.get_parent()["header"], default=str).encode()
content = b'{{"name": "stdout", "text": "' + b"x" * {size} + b'"}}'
for i in range({count}):
    header = json.dumps(s.msg_header("stream"), default=str).encode()
    parts = [header, parent, b"{{}}", content]
    k.iopub_socket.send_multipart([b"<IDS|MSG>", s.sign(parts), *parts], copy=False)
print("sent")
"""
FLOODS = {
    "6 x 200 MB": {"count": 6, "size": 200 * 2**20},
    "1 MB messages": {"count": 200, "size": 2**20},
}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _flood(flooders: list[Session], canary: Session, code: str) -> dict[str, Any]:
    base = rss_mib()
    peak = base
    latencies: list[float] = []
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib())
            await asyncio.sleep(0.02)

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            r = await canary.execute("1+1", timeout=60)
            latencies.append(time.perf_counter() - t)
            if r.text != "2":
                raise RuntimeError(f"the canary answered {r}")
            await asyncio.sleep(0.05)

    tasks = [asyncio.ensure_future(sample()), asyncio.ensure_future(probe())]
    started = time.perf_counter()
    results = await asyncio.gather(*(s.execute(code, timeout=300) for s in flooders))
    seconds = time.perf_counter() - started
    done.set()
    await asyncio.gather(*tasks)
    outcomes: dict[str, int] = {}
    for r in results:
        key = r.error.name if r.error else r.status.value
        outcomes[key] = outcomes.get(key, 0) + 1
    # Every flooder answers again (a restarted one in a fresh kernel).
    answers = await asyncio.gather(*(s.execute("1+1", timeout=120) for s in flooders))
    return {
        "rss_before_mib": base,
        "rss_peak_mib": peak,
        "growth_mib": peak - base,
        "seconds": seconds,
        "canary": summary(latencies),
        "outcomes": outcomes,
        "answering_after": sum(a.text == "2" for a in answers),
    }


async def measure(counts: tuple[int, ...]) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    with fixtures.temp_dir("flood") as tmp:
        async with fixtures.engine(tmp / "engine", memory_limit_mb=1024) as engine:
            canary = await engine.session("canary")
            flooders: list[Session] = []
            for n in counts:
                while len(flooders) < n:
                    flooders.append(await engine.session(f"flood-{len(flooders)}"))
                for name, flood in FLOODS.items():
                    figures = await _flood(flooders[:n], canary, FLOOD.format(**flood))
                    runs[f"{n} x {name}"] = {"kernels": n, "flood": name, **figures}
                    common.console.print(
                        f"  [dim]{n} kernels, {name}: +{figures['growth_mib']:.0f} MiB, canary "
                        f"max {figures['canary']['max_ms']:.0f} ms[/]"
                    )
    return runs


@common.entry
def main(args: argparse.Namespace) -> int:
    counts = COUNTS[:2] if common.quick(args) else COUNTS
    runs = asyncio.run(measure(counts))
    report = Report("kernel_flood", "Hostile kernels flooding the engine")
    common.table(
        report.title,
        ["run", "growth MiB", "peak MiB", "seconds", "canary p50 ms", "canary max ms", "outcomes"],
        [
            (
                name,
                r["growth_mib"],
                r["rss_peak_mib"],
                r["seconds"],
                r["canary"]["p50_ms"],
                r["canary"]["max_ms"],
                ", ".join(f"{k}: {v}" for k, v in r["outcomes"].items()),
            )
            for name, r in runs.items()
        ],
    )
    report.data["runs"] = runs
    report.target(
        "engine RSS growth, worst run", max(r["growth_mib"] for r in runs.values()), TARGET_MIB
    )
    report.target(
        "flooding sessions answering afterwards",
        min(r["answering_after"] / r["kernels"] for r in runs.values()),
        1.0,
        at_least=True,
    )
    report.notes.append(
        "growth is the engine's peak VmRSS during the flood over its level just before; "
        "the canary ran 1+1 every 50 ms throughout"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("flood"))
