"""What ``sandbox-engine cluster head``, ``node --join`` and ``cluster status`` do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from .. import errors
from ..config import Settings
from .placement import NodeState
from .ray_nodes import RayProcess, head_process, start_agent, worker_process


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, through its ``finally``."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ready(line: dict[str, Any]) -> None:
    """One JSON line on stdout when the process is up, for scripts and tests to wait on."""
    print(json.dumps(line), flush=True)


def _hold(process: RayProcess) -> None:
    while process.alive():
        time.sleep(0.5)


def run_head(
    settings: Settings, port: int, node_ip: str | None = None, temp_dir: Path | None = None
) -> int:
    head = head_process(settings, port=port, node_ip=node_ip, temp_dir=temp_dir)
    with stopped_by_sigterm():
        head.start()
        try:
            address = f"{node_ip or _own_address()}:{port}"
            _wait_gcs(address, head)
            _ready({"address": address, "token": str(settings.data_dir / "cluster-token")})
            _hold(head)
        except KeyboardInterrupt:
            pass
        finally:
            head.stop()
    return 0


def _wait_gcs(address: str, head: RayProcess, seconds: float = 60.0) -> None:
    host, port = address.rsplit(":", 1)
    end = time.monotonic() + seconds
    while time.monotonic() < end and head.alive():
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Ray head did not start; see {head.log}")


def run_node(
    settings: Settings,
    address: str,
    node_id: str,
    node_ip: str | None = None,
    temp_dir: Path | None = None,
) -> int:
    """A Ray worker node and this host's node agent, until Ctrl-C or SIGTERM; then the agent
    lets go of its runtime (its sandboxes stay for the next agent here) and Ray stops."""
    from .host import connect

    worker = worker_process(settings, address, node_id, node_ip=node_ip, temp_dir=temp_dir)
    agent: Any = None
    with stopped_by_sigterm():
        worker.start()
        try:
            connect(address, settings)
            signal.signal(signal.SIGTERM, _interrupt)  # ray.init put its own in place
            overrides = {"data_dir": str(settings.data_dir), "docker_host": settings.docker_host}
            agent = start_agent(node_id, overrides)
            report = sys.modules["ray"].get(agent.report_data.remote(), timeout=60)
            _ready({"node_id": node_id, "pid": worker.pid, "agent_pid": report["pid"]})
            _hold(worker)
        except KeyboardInterrupt:
            pass
        finally:
            if (ray := sys.modules.get("ray")) is not None:
                if agent is not None:
                    with contextlib.suppress(Exception):
                        ray.get(agent.stop.remote(), timeout=60)
                    with contextlib.suppress(Exception):
                        ray.kill(agent, no_restart=True)
                ray.shutdown()
            worker.stop()
    return 0


def node_states(address: str, settings: Settings) -> list[NodeState]:
    """Every node agent's report, read once."""
    from .host import ClusterHost

    async def read() -> list[NodeState]:
        host = ClusterHost(address, settings)
        await host.start()
        try:
            return host.status()
        finally:
            await host.close()

    return asyncio.run(read())


def drain(address: str, settings: Settings, node_id: str, draining: bool = True) -> None:
    """The node takes no new session (or, with ``draining`` False, takes them again)."""
    from . import NAMESPACE
    from .host import agent_name, connect

    connect(address, settings)
    ray = sys.modules["ray"]
    try:
        agent = ray.get_actor(agent_name(node_id), NAMESPACE)
    except ValueError:
        raise errors.NotFound(f"no node {node_id!r} in the cluster") from None
    ray.get(agent.drain.remote(draining), timeout=settings.cluster_call_timeout)


def status_rows(states: list[NodeState]) -> list[dict[str, Any]]:
    rows = []
    for state in states:
        report = state.report
        rows.append(
            {
                "node": state.node_id,
                "healthy": state.healthy,
                "problem": state.why_not() if not state.healthy else None,
                "docker": None if report is None else report.docker_ok,
                "capacity": None if report is None else report.capacity,
                "free": None if report is None else report.free,
                "sessions": None if report is None else report.sessions,
                "draining": None if report is None else report.draining,
                "seen_s_ago": None if (age := state.age()) is None else round(age, 1),
                "session_ids": [] if report is None else [i["id"] for i in report.infos],
                "agent_pid": None if report is None else report.pid,
            }
        )
    return rows


def _own_address() -> str:
    """The address other hosts reach this one at (the one a default route leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
