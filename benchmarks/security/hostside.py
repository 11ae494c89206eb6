"""Facts read from the host about one sandbox: its container, CPU time, memory, logs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import docker

from engine import Session

_client: docker.DockerClient | None = None


def client() -> docker.DockerClient:
    global _client
    if _client is None:
        _client = docker.from_env()
    return _client


def container_id(session: Session) -> str:
    return str(getattr(session.sandbox, "container_id", ""))


async def inspect(session: Session) -> dict[str, Any]:
    cid = container_id(session)
    info: dict[str, Any] = await asyncio.to_thread(client().api.inspect_container, cid)
    return info


def _cgroup_file(cid: str, v1: str, v2: str) -> Path | None:
    for path in (
        Path("/sys/fs/cgroup") / v1.split("/")[0] / "docker" / cid / v1.split("/")[1],
        Path("/sys/fs/cgroup/docker") / cid / v2,
        Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope" / v2,
    ):
        if path.exists():
            return path
    return None


async def cpu_seconds(session: Session) -> float:
    """CPU time the whole container has used so far, from its cgroup (or Docker's stats)."""
    cid = container_id(session)
    path = _cgroup_file(cid, "cpuacct/cpuacct.usage", "cpu.stat")
    if path is not None:
        text = path.read_text()
        if path.name == "cpuacct.usage":
            return int(text) / 1e9
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    stats = await asyncio.to_thread(client().api.stats, cid, stream=False)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


async def cpu_rate(session: Session, seconds: float = 2.0) -> float:
    """CPU seconds per wall second the container burns over ``seconds``."""
    loop = asyncio.get_running_loop()
    before, t0 = await cpu_seconds(session), loop.time()
    await asyncio.sleep(seconds)
    after, t1 = await cpu_seconds(session), loop.time()
    return (after - before) / (t1 - t0)


def log_bytes(info: dict[str, Any]) -> int:
    path = info.get("LogPath") or ""
    with contextlib.suppress(OSError):
        return os.path.getsize(path)
    return 0


def rss_mb() -> float:
    """This process's resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_used(path: Path) -> int:
    return shutil.disk_usage(path).used


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
