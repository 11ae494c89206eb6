"""Our Ray processes: a head, and a sandbox host's node (a Ray worker node plus its node
agent), each started by ``ray start --block`` with the security of ``security.py``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import errors
from ..config import Settings
from . import NAMESPACE
from .security import RayToken, ray_client_installed, token_for

NODE_RESOURCE = "sandbox-node:"
"""A node of ours carries the custom resource ``sandbox-node:<node id>``; its agent asks for it,
so that it runs on that host and nowhere else."""
START_SECONDS = 60.0


def ray_executable() -> str:
    found = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(found).exists():
        raise errors.InvalidRequest(
            "Ray is not installed: pip install 'sandbox-engine[cluster]' (docs/cluster.md)"
        )
    return found


@dataclass
class RayProcess:
    """``ray start --block``: it holds the node's Ray processes (GCS, raylet, workers) in its
    own process group, and ends them when it ends."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> RayProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the group (``ray start --block`` stops its children), then SIGKILL."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                _wait_group_gone(self.process.pid, wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()


def _wait_group_gone(pgid: int, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not group_alive(pgid):
            return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired(f"process group {pgid}", seconds)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. Zombies do not count: where PID 1 does
    not reap orphans (some containers), Ray's ended processes stay as zombies."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _common(temp_dir: Path | None) -> list[str]:
    args = ["--block", "--disable-usage-stats"]
    if temp_dir is not None:
        args.append(f"--temp-dir={temp_dir}")
    return args


def head_process(
    settings: Settings,
    *,
    port: int = 6379,
    node_ip: str | None = None,
    temp_dir: Path | None = None,
) -> RayProcess:
    """A Ray head with token auth (made in the data folder if the operator gave none), no
    dashboard or Jobs API, no Ray Client port, and no CPUs: no sandbox work runs on it."""
    if ray_client_installed():
        raise errors.InvalidRequest(
            "grpc (ray[client]) is installed here: `ray start --head` would open Ray Client's "
            "port 10001 on every interface, which runs any code it is sent. Run the head from "
            "an environment without grpcio (pip install 'sandbox-engine[cluster]' has none)"
        )
    token = token_for(settings.data_dir, generate=True)
    argv = [
        ray_executable(),
        "start",
        "--head",
        f"--port={port}",
        "--include-dashboard=false",
        "--num-cpus=0",
        *_common(temp_dir),
    ]
    if node_ip:
        argv.append(f"--node-ip-address={node_ip}")
    return RayProcess(argv, token.env(), settings.data_dir / "cluster-logs" / "head.log")


def worker_process(
    settings: Settings,
    address: str,
    node_id: str,
    *,
    node_ip: str | None = None,
    temp_dir: Path | None = None,
    token: RayToken | None = None,
) -> RayProcess:
    """A Ray worker node of the cluster at ``address`` that carries ``node_id``'s resource."""
    token = token or token_for(settings.data_dir)
    argv = [
        ray_executable(),
        "start",
        f"--address={address}",
        "--num-cpus=1",
        f"--resources={json.dumps({NODE_RESOURCE + node_id: 1})}",
        *_common(temp_dir),
    ]
    if node_ip:
        argv.append(f"--node-ip-address={node_ip}")
    log = settings.data_dir / "cluster-logs" / f"node-{node_id}.log"
    return RayProcess(argv, token.env(), log)


def start_agent(node_id: str, overrides: dict[str, Any]) -> Any:
    """The node agent of ``node_id``, detached and named ``node:<node id>``, on the Ray node
    that carries its resource; started (its runtime up) before this returns. The caller is a
    connected driver (``host.connect``)."""
    import ray

    from .host import agent_name
    from .node_agent import NodeAgent

    wait_for_resource(node_id)
    name = agent_name(node_id)
    try:
        old = ray.get_actor(name, NAMESPACE)
    except ValueError:
        pass
    else:  # an agent of an earlier process: it let go of its runtime (or died with its node)
        ray.kill(old, no_restart=True)
        _wait_name_free(name)
    remote_class: Any = ray.remote(NodeAgent)
    actor = remote_class.options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        num_cpus=0,
        resources={NODE_RESOURCE + node_id: 0.001},
        max_concurrency=1000,
        max_restarts=0,
    )
    agent: Any = actor.remote(node_id, overrides)
    ray.get(agent.start.remote(), timeout=START_SECONDS + 60)
    return agent


def wait_for_resource(node_id: str) -> None:
    import ray

    end = time.monotonic() + START_SECONDS
    while time.monotonic() < end:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        if resources.get(NODE_RESOURCE + node_id):
            return
        time.sleep(0.2)
    raise errors.BackendUnavailable(f"Ray node {node_id} did not join within {START_SECONDS:g} s")


def _wait_name_free(name: str) -> None:
    import ray

    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            ray.get_actor(name, NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)
