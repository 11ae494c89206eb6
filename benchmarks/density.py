"""Density: how many idle sessions this machine holds, and what one costs. An idle kernel has
not imported numpy, pandas or matplotlib: the sandbox imports them on a cell's first use.

Starts sessions (no warm pool) until ``--max`` (default 500) or until the host has 90% of its
memory in use, lets them sit idle, then measures: each container's cgroup memory (also as
``docker stats`` shows it), the PSS of every process in it (shared library pages split fairly
between the sessions that map them), its containerd shim, the host's MemAvailable before and
after, the CPU that idle sessions burn, and whether every session still answers. Also a
footprint of what a kernel imports.
Opt-in: ``sandbox-engine bench density [--max N]`` or ``python -m benchmarks.density``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

from engine import Engine, Session

from . import common, fixtures
from .common import MB, Report, meminfo, summary

DEFAULT_MAX = 500
STARTING_AT_ONCE = 4
STOP_AT_USED = 0.90
IDLE_SECONDS = 15
HOST_KEYS = (
    "MemAvailable",
    "AnonPages",
    "Cached",
    "Shmem",
    "Slab",
    "PageTables",
    "KernelStack",
    "EngineRSS",
)

FOOTPRINT_CODE = r"""
import re, subprocess, sys, threading
def mb(key, text):
    return int(re.search(key + r":\s+(\d+)", text).group(1)) // 1024
status, rollup = open("/proc/self/status").read(), open("/proc/self/smaps_rollup").read()
print("kernel", mb("VmRSS", status), mb("Pss", rollup), mb("Anonymous", rollup),
      len(threading.enumerate()), len(sys.modules))
probe = "import re; print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
for name, imports in [("python", ""), ("numpy", "import numpy;"), ("pandas", "import pandas;"),
                      ("matplotlib.pyplot", "import matplotlib.pyplot;"),
                      ("ipykernel", "import ipykernel.ipkernel;"),
                      ("kernel + stack", "import ipykernel.ipkernel, numpy, pandas, "
                                         "matplotlib.pyplot;")]:
    out = subprocess.run([sys.executable, "-c", imports + probe], capture_output=True, text=True)
    print("import", name, int(out.stdout) // 1024)
"""


def _cgroup_dir(container_id: str) -> Path | None:
    for candidate in (
        Path("/sys/fs/cgroup/memory/docker") / container_id,
        Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",
        Path("/sys/fs/cgroup/docker") / container_id,
    ):
        if candidate.is_dir():
            return candidate
    return None


def _sessions_cpu(container_ids: list[str], seconds: float) -> float:
    """Share of all CPUs that these containers used over ``seconds`` (cgroup CPU accounting)."""

    def used() -> int:
        total = 0
        for cid in container_ids:
            for path in (
                Path("/sys/fs/cgroup/cpuacct/docker") / cid / "cpuacct.usage",
                Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope" / "cpu.stat",
            ):
                if path.name == "cpuacct.usage" and path.exists():
                    total += int(path.read_text())
                    break
                if path.exists():  # cgroup v2: usage_usec
                    total += int(path.read_text().split()[1]) * 1000
                    break
        return total

    before = used()
    time.sleep(seconds)
    return (used() - before) / 1e9 / seconds / (os.cpu_count() or 1)


def _smaps(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    return {k: int(v) * 1024 for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}


def _shims() -> dict[str, int]:
    """PSS of each containerd shim, by the container id it serves."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and b"-id" in argv:
            cid = argv[argv.index(b"-id") + 1].decode()
            found[cid] = _smaps(int(proc.name)).get("Pss", 0)
    return found


def container_memory(container_id: str, shims: dict[str, int]) -> dict[str, float]:
    """Memory of one sandbox in MB: cgroup usage and stat, PSS of its processes, its shim."""
    cgroup = _cgroup_dir(container_id)
    if cgroup is None:
        return {}
    stat = dict(
        (k, int(v))
        for k, v in (line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    )
    usage_file = cgroup / "memory.usage_in_bytes"
    usage = (
        int(usage_file.read_text())
        if usage_file.exists()
        else int((cgroup / "memory.current").read_text())
    )
    pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    maps = [_smaps(pid) for pid in pids]
    pss = sum(m.get("Pss", 0) for m in maps)
    private = sum(m.get("Private_Clean", 0) + m.get("Private_Dirty", 0) for m in maps)
    inactive_file = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    return {
        "cgroup_usage_mb": usage / MB,
        "docker_stats_mb": (usage - inactive_file) / MB,
        "cgroup_rss_mb": stat.get("rss", stat.get("anon", 0)) / MB,
        "cgroup_cache_mb": stat.get("cache", stat.get("file", 0)) / MB,
        "processes_pss_mb": pss / MB,
        "processes_private_mb": private / MB,
        "shim_pss_mb": shims.get(container_id, 0) / MB,
        "per_session_mb": (pss + shims.get(container_id, 0)) / MB,
    }


def _self_rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) * 1024  # type: ignore[index]


async def _fill(engine: Engine, target: int) -> tuple[list[Session], str]:
    """Start sessions until ``target``, memory pressure, or a failure; say why it stopped."""
    sessions: list[Session] = []
    total = meminfo()["MemTotal"]
    while len(sessions) < target:
        mem = meminfo()
        batch = min(STARTING_AT_ONCE, target - len(sessions))
        # Stop before this batch could push the host past STOP_AT_USED.
        if mem["MemAvailable"] - batch * 200 * MB < (1 - STOP_AT_USED) * total:
            return sessions, f"memory: {1 - mem['MemAvailable'] / total:.0%} of RAM in use"
        results = await asyncio.gather(
            *(engine.session(f"density-{len(sessions) + i}") for i in range(batch)),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                return sessions, f"a start failed: {r}"
            sessions.append(r)
        if len(sessions) % 20 < STARTING_AT_ONCE:
            common.console.print(f"  [dim]{len(sessions)} sessions[/]")
    return sessions, "reached --max"


async def measure(target: int) -> dict[str, Any]:
    with fixtures.temp_dir("density") as tmp:
        async with fixtures.engine(tmp / "engine") as engine:
            probe = await engine.session("footprint")
            footprint = await probe.execute(FOOTPRINT_CODE, timeout=120)
            await engine.sessions.close(probe.id)
            before = {**meminfo(), "EngineRSS": _self_rss()}
            started = time.perf_counter()
            sessions, why = await _fill(engine, target)
            start_seconds = time.perf_counter() - started
            await asyncio.sleep(IDLE_SECONDS)
            ids = [getattr(s.sandbox, "container_id", "") for s in sessions]
            engine_cpu = time.process_time()
            busy = await asyncio.to_thread(_sessions_cpu, ids, 10.0)
            engine_cpu = (time.process_time() - engine_cpu) / 10.0 / (os.cpu_count() or 1)
            after = {**meminfo(), "EngineRSS": _self_rss()}
            shims = _shims()
            per_container = [
                container_memory(getattr(s.sandbox, "container_id", ""), shims) for s in sessions
            ]
            latencies = []
            failures = 0
            for s in sessions:
                t = time.perf_counter()
                result = await s.execute(fixtures.TRIVIAL, timeout=60)
                latencies.append(time.perf_counter() - t)
                failures += not result.ok
            return {
                "sessions": len(sessions),
                "stopped_because": why,
                "start_seconds": start_seconds,
                "mem_before": before,
                "mem_after": after,
                "per_container": [c for c in per_container if c],
                "idle_cpu_sessions": busy,
                "idle_cpu_engine": engine_cpu,
                "roundtrip_after_idle": summary(latencies),
                "roundtrip_failures": failures,
                "footprint": _parse_footprint(footprint.stdout),
            }


def _parse_footprint(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = {"imports_rss_mb": {}}
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["kernel"]:
            rss, pss, anon, threads, modules = (int(x) for x in parts[1:6])
            out["kernel"] = {
                "rss_mb": rss,
                "pss_mb": pss,
                "anon_mb": anon,
                "threads": threads,
                "modules": modules,
            }
        elif parts[:1] == ["import"]:
            out["imports_rss_mb"][" ".join(parts[1:-1])] = int(parts[-1])
    return out


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in rows) / max(1, len(rows))


@common.entry
def main(args: argparse.Namespace) -> int:
    target = args.max if getattr(args, "max", None) else (20 if common.quick(args) else DEFAULT_MAX)
    m = asyncio.run(measure(target))
    rows, n = m["per_container"], m["sessions"]
    total = m["mem_before"]["MemTotal"]
    host_delta = (m["mem_before"]["MemAvailable"] - m["mem_after"]["MemAvailable"]) / max(1, n)
    per_session = max(_mean(rows, "per_session_mb") * MB, host_delta)
    room = m["mem_before"]["MemAvailable"] - (1 - STOP_AT_USED) * total
    fits = int(room / per_session) if per_session > 0 else 0
    figures = {
        "sessions_started": n,
        "stopped_because": m["stopped_because"],
        "per_session_pss_mb": _mean(rows, "per_session_mb"),
        "kernel_private_mb": _mean(rows, "processes_private_mb"),
        "shim_pss_mb": _mean(rows, "shim_pss_mb"),
        "cgroup_usage_mb": _mean(rows, "cgroup_usage_mb"),
        "docker_stats_mb": _mean(rows, "docker_stats_mb"),
        "cgroup_rss_mb": _mean(rows, "cgroup_rss_mb"),
        "host_delta_per_session_mb": host_delta / MB,
        "per_session_used_mb": per_session / MB,
        "sessions_that_fit_at_90pct": fits,
        "idle_cpu_sessions_pct": m["idle_cpu_sessions"] * 100,
        "idle_cpu_engine_pct": m["idle_cpu_engine"] * 100,
        "start_seconds": m["start_seconds"],
    }
    host = {key: (m["mem_after"][key] - m["mem_before"][key]) / max(1, n) / MB for key in HOST_KEYS}
    host["MemAvailable"] = -host["MemAvailable"]
    figures["host_delta_by_kind_mb"] = host
    common.table(
        f"Density: {n} idle sessions ({m['stopped_because']})",
        ["measure", "value"],
        [(k, v) for k, v in figures.items() if not isinstance(v, dict)]
        + [(f"host {k} per session, MB", v) for k, v in host.items()],
    )
    fp = m["footprint"]
    common.table(
        "What a kernel holds (RSS of a fresh python after each import, MB)",
        ["import", "RSS MB"],
        [
            *fp["imports_rss_mb"].items(),
            *(("running kernel " + k, v) for k, v in fp.get("kernel", {}).items()),
        ],
    )
    report = Report("density", "Density: idle sessions")
    keys = rows[0].keys() if rows else ()
    spread = {k: {"min": min(r[k] for r in rows), "max": max(r[k] for r in rows)} for k in keys}
    kept = {k: v for k, v in m.items() if k not in ("per_container", "mem_before", "mem_after")}
    report.data.update({"figures": figures, "per_container_spread_mb": spread, **kept})
    reached = max(n, fits)
    report.target("idle sessions this machine holds", reached, 500, "", at_least=True)
    report.notes.append(
        f"{n} started and answering ({m['roundtrip_failures']} failures); "
        f"{fits} fit at {STOP_AT_USED:.0%} RAM at {per_session / MB:.0f} MB each"
    )
    common.bar_chart(
        common.results_dir(args) / "density.png",
        f"Memory per idle session ({n} sessions)",
        [
            "PSS of processes",
            "private of kernel",
            "shim PSS",
            "cgroup usage",
            "docker stats",
            "host delta",
        ],
        {
            "MB": [
                figures["per_session_pss_mb"] - figures["shim_pss_mb"],
                figures["kernel_private_mb"],
                figures["shim_pss_mb"],
                figures["cgroup_usage_mb"],
                figures["docker_stats_mb"],
                figures["host_delta_per_session_mb"],
            ]
        },
        "MB per session",
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("density"))
