"""A whole cluster on one machine (``sandbox-engine cluster demo``): a Ray head, N sandbox nodes
(each with its own dockerd, or all on this machine's Docker), M API replicas; what it started is
written to ``demo.json`` in its folder, so that ``--stop`` (or a test) can end all of it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import docker

from .. import errors
from ..config import Settings
from ..runtime import HOME_LABEL
from .ray_nodes import group_alive
from .security import TOKEN_FILE

STATE_FILE = "demo.json"
READY_SECONDS = 180.0
STOP_SECONDS = 60.0


@dataclass
class Part:
    """One process of the demo, in its own process group."""

    name: str
    pid: int
    log: str
    ready: dict[str, Any] = field(default_factory=dict)
    """What it printed when it was up (its ready line)."""


@dataclass
class DemoNode:
    node_id: str
    data_dir: str
    docker_host: str | None
    node: Part | None = None
    dockerd: Part | None = None
    ray_pid: int | None = None
    """``ray start``'s process group: the node's raylet and workers."""
    agent_pid: int | None = None


@dataclass
class DemoState:
    folder: str
    address: str = ""
    pid: int = field(default_factory=os.getpid)
    head: Part | None = None
    nodes: list[DemoNode] = field(default_factory=list)
    replicas: list[Part] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    ray_temp: str = ""
    """Ray's session folders (sockets, logs) of every node: short, under /tmp."""

    def save(self) -> None:
        path = Path(self.folder) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> DemoState:
        data = json.loads((folder / STATE_FILE).read_text())
        state = cls(folder=data["folder"], address=data["address"], pid=data["pid"])
        state.ray_temp = data["ray_temp"]
        state.head = Part(**data["head"]) if data["head"] else None
        for n in data["nodes"]:
            node = DemoNode(n["node_id"], n["data_dir"], n["docker_host"])
            node.node = Part(**n["node"]) if n["node"] else None
            node.dockerd = Part(**n["dockerd"]) if n["dockerd"] else None
            node.ray_pid, node.agent_pid = n["ray_pid"], n["agent_pid"]
            state.nodes.append(node)
        state.replicas = [Part(**r) for r in data["replicas"]]
        state.urls = data["urls"]
        return state


class LocalCluster:
    """Starts and stops the demo's processes; ``own_docker``: a dockerd per node (own socket,
    data-root, exec-root and pidfile) with the sandbox image loaded into it."""

    def __init__(
        self,
        folder: Path,
        *,
        nodes: int,
        replicas: int,
        own_docker: bool = True,
        port: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.count, self.replica_count = nodes, replicas
        self.own_docker = own_docker
        self.port = port or _free_port()
        # A node that stops removes its sandboxes: nothing of the demo outlives it.
        self.env = {"SANDBOX_SHUTDOWN_SANDBOXES": "close", "SANDBOX_POOL_SIZE": "0", **(env or {})}
        self.state = DemoState(folder=str(folder))

    # --- up ---

    def start(self) -> DemoState:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (self.folder / STATE_FILE).exists():
            raise errors.InvalidRequest(
                f"a demo already runs in {self.folder}: sandbox-engine cluster demo --stop"
            )
        self.state.ray_temp = tempfile.mkdtemp(prefix="se-ray-")
        self.state.save()
        try:
            self._start()
        except BaseException:
            stop(self.state)
            raise
        return self.state

    def _start(self) -> None:
        head_dir = self.folder / "head"
        temp = ["--temp-dir", self.state.ray_temp]
        head = self._spawn("head", ["cluster", "head", "--port", str(self.port), *temp], head_dir)
        self.state.head = head
        self.state.address = head.ready["address"]
        self.state.save()
        token = head_dir / TOKEN_FILE
        self.env["RAY_AUTH_TOKEN_PATH"] = str(token)
        image = Settings().image or _image_tag()
        for i in range(1, self.count + 1):
            node = DemoNode(f"n{i}", str(self.folder / f"n{i}" / "engine"), None)
            self.state.nodes.append(node)
            if self.own_docker:
                node.dockerd, node.docker_host = self._dockerd(Path(node.data_dir).parent)
                self.state.save()
                _copy_image(image, node.docker_host)
            # One after the other: raylets that start together on a busy machine time out.
            node.node = self._spawn(
                f"node-{node.node_id}",
                ["node", "--join", self.state.address, "--node-id", node.node_id, *temp],
                Path(node.data_dir),
                {"SANDBOX_DOCKER_HOST": node.docker_host} if node.docker_host else {},
            )
            node.ray_pid = node.node.ready["pid"]
            node.agent_pid = node.node.ready.get("agent_pid")
            self.state.save()
        for i in range(1, self.replica_count + 1):
            port = _free_port()
            replica = self._spawn(
                f"replica-{i}",
                ["serve", "--cluster", self.state.address, "--port", str(port)],
                self.folder / f"replica-{i}",
                ready_url=f"http://127.0.0.1:{port}/healthz",
            )
            self.state.replicas.append(replica)
            self.state.urls.append(f"http://127.0.0.1:{port}")
            self.state.save()

    def _spawn(
        self,
        name: str,
        args: list[str],
        data_dir: Path,
        extra: dict[str, str] | None = None,
        ready_url: str | None = None,
    ) -> Part:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.folder / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN",)}
        env.update(self.env)
        env.update(extra or {})
        env["SANDBOX_DATA_DIR"] = str(data_dir)
        out = self.folder / f"{name}.out"
        with out.open("wb") as stdout, log.open("ab") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        part = Part(name, process.pid, str(log))
        if ready_url is not None:
            _wait_url(ready_url, process, log)
        else:
            part.ready = _wait_ready_line(out, process, log)
        return part

    def _dockerd(self, folder: Path) -> tuple[Part, str]:
        """A dockerd of the node's own: nothing shared with this machine's but the kernel."""
        binary, unshare = shutil.which("dockerd"), shutil.which("unshare")
        if binary is None or unshare is None:
            raise errors.BackendUnavailable(
                "dockerd and unshare (util-linux) are needed: see scripts/setup"
            )
        root = folder / "docker"
        for sub in ("data", "exec"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        config = root / "daemon.json"
        config.write_text("{}")
        socket_path = root / "docker.sock"
        log = folder / "dockerd.log"
        with log.open("ab") as out:
            # In a network namespace of its own: a dockerd with --bridge=none deletes the
            # default bridge (docker0) of whatever namespace it starts in, this machine's too.
            process = subprocess.Popen(
                [
                    unshare,
                    "--net",
                    binary,
                    f"--host=unix://{socket_path}",
                    f"--data-root={root / 'data'}",
                    f"--exec-root={root / 'exec'}",
                    f"--pidfile={root / 'docker.pid'}",
                    f"--config-file={config}",
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        host = f"unix://{socket_path}"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if process.poll() is not None:
                raise errors.BackendUnavailable(f"the node's dockerd ended; see {log}")
            with contextlib.suppress(Exception):
                docker.DockerClient(base_url=host, timeout=5).ping()
                return Part(f"dockerd-{folder.name}", process.pid, str(log)), host
            time.sleep(0.3)
        raise errors.BackendUnavailable(f"the node's dockerd did not answer in 60 s; see {log}")


def _image_tag() -> str:
    from ..image import default_image_tag

    return default_image_tag(Settings())


def _copy_image(image: str, docker_host: str | None) -> None:
    """This machine's sandbox image, saved and loaded into the node's dockerd."""
    source = docker.from_env(timeout=600)
    target = docker.DockerClient(base_url=docker_host, timeout=600)
    try:
        target.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        chunks = source.images.get(image).save(named=True)
    except docker.errors.ImageNotFound as exc:
        raise errors.ImageNotFound(
            f"sandbox image {image!r} is not built; run `sandbox-engine image build`"
        ) from exc
    target.images.load(_Chunks(chunks))


class _Chunks:
    """A stream of chunks read as a file, for ``images.load``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._rest += chunk
        if size < 0:
            out, self._rest = self._rest, b""
        else:
            out, self._rest = self._rest[:size], self._rest[size:]
        return out


def _wait_ready_line(out: Path, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    end = time.monotonic() + READY_SECONDS
    while time.monotonic() < end:
        for line in out.read_text().splitlines():
            with contextlib.suppress(ValueError):
                ready: dict[str, Any] = json.loads(line)
                return ready
        if process.poll() is not None:
            raise errors.EngineError(f"{process.args!r} ended; see {log}")
        time.sleep(0.2)
    raise errors.EngineError(f"not up within {READY_SECONDS:g} s; see {log}")


def _wait_url(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    end = time.monotonic() + READY_SECONDS
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if process.poll() is not None:
            raise errors.EngineError(f"the replica ended; see {log}")
        time.sleep(0.2)
    raise errors.EngineError(f"the replica was not up within {READY_SECONDS:g} s; see {log}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- down ---


def stop(state: DemoState) -> None:
    """Everything the demo started, in reverse: replicas, nodes (their sandboxes removed), the
    head, the nodes' dockerds and what they held; then the folder's state file."""
    for replica in state.replicas:
        _end_group(replica.pid)
    for node in state.nodes:
        if node.node is not None:
            _end_group(node.node.pid)
        for pid in (node.ray_pid, node.agent_pid):
            if pid is not None:
                _end_group(pid, grace=5)
    if state.head is not None:
        _end_group(state.head.pid)
    for node in state.nodes:
        _remove_sandboxes(node)
        if node.dockerd is not None:
            _end_group(node.dockerd.pid)
            shutil.rmtree(Path(node.data_dir).parent / "docker", ignore_errors=True)
    if state.ray_temp:
        shutil.rmtree(state.ray_temp, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (Path(state.folder) / STATE_FILE).unlink()


def _remove_sandboxes(node: DemoNode) -> None:
    """The node's containers and volumes (by its data folder's label), whatever happened."""
    import hashlib

    home = hashlib.sha256(str(Path(node.data_dir).resolve()).encode()).hexdigest()[:16]
    filters = {"label": f"{HOME_LABEL}={home}"}
    with contextlib.suppress(Exception):
        client = docker.DockerClient(base_url=node.docker_host) if node.docker_host else None
        client = client or docker.from_env()
        for container in client.containers.list(all=True, filters=filters, sparse=True):
            container.remove(force=True, v=True)
        for volume in client.volumes.list(filters=filters):
            volume.remove(force=True)


def _end_group(pid: int, grace: float = STOP_SECONDS) -> None:
    """SIGTERM to the process group ``pid`` leads, then SIGKILL if it outlives ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        end = time.monotonic() + wait
        while time.monotonic() < end:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not group_alive(pid):
                return
            time.sleep(0.2)


def stop_folder(folder: Path) -> bool:
    """``--stop``: the demo in ``folder``, if one runs (False if none)."""
    if not (folder / STATE_FILE).exists():
        return False
    stop(DemoState.load(folder))
    return True


def print_state(state: DemoState, as_json: bool, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        print(json.dumps(asdict(state)), file=out, flush=True)
        return
    print(f"Ray head: {state.address} (token: {state.folder}/head/{TOKEN_FILE})", file=out)
    for node in state.nodes:
        docker_host = node.docker_host or "this machine's Docker"
        print(f"node {node.node_id}: {docker_host}", file=out)
    for url in state.urls:
        print(f"API replica: {url}", file=out)
    print("Ctrl-C, or sandbox-engine cluster demo --stop, removes it all.", file=out, flush=True)
