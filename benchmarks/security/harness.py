"""What every case runs against: one real engine behind a real uvicorn on loopback, a canary
session whose files and state must survive every case, and a watch on the host itself."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from engine import Engine, ExecutionStatus, Session, Settings
from engine.api import create_app
from engine.api.auth import KeyRing
from engine.api.connections import EdgeServer, raise_open_files_limit, server_config
from engine.errors import EngineError
from engine.runtime import HOME_LABEL

KEYS = ("bench-key-a", "bench-key-b")
CANARY_THREAD = "security-canary"
HOST_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts")
SANDBOX_UIDS = {10001, 10002}


def tenant_of(key: str) -> str:
    tenant = KeyRing([key]).tenant(key)
    assert tenant is not None
    return tenant


class ApiServer:
    """``sandbox-engine serve`` in this event loop: a real uvicorn on a real loopback socket.

    The app starts and owns the engine, so library cases and API cases hit the same one."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # The connection layer of `serve`: head deadline, connection cap, accept errors.
        raise_open_files_limit()
        config = server_config(self.app, settings, log_level="error", timeout_graceful_shutdown=30)
        self.server = EdgeServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine

    async def start(self, timeout: float = 120.0) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self._sock]))
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the API server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 120)
        self._sock.close()


class Canary:
    """An innocent session on the same engine: variables, uploaded files, an exported output.

    After every case it must still hold all of them, byte for byte."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self.token = secrets.token_hex(8)
        self.files = {
            "canary.bin": secrets.token_bytes(2 * 1024 * 1024),
            "notes.txt": b"canary notes\n" * 1000,
        }
        self.file_ids: dict[str, str] = {}
        self.session: Session | None = None
        self.restarts = 0

    async def start(self) -> None:
        for name, data in self.files.items():
            obj = await self.engine.files.create(data, name, owner=self.owner)
            self.file_ids[name] = obj.id
        self.session = await self.engine.session(
            CANARY_THREAD, owner=self.owner, file_ids=list(self.file_ids.values())
        )
        r = await self.session.execute(f"canary_token = {self.token!r}", timeout=60)
        if r.status is not ExecutionStatus.OK:
            raise RuntimeError(f"the canary session does not work: {r}")

    _PROBE = (
        "import hashlib, os\n"
        "print('token=' + canary_token)\n"
        "for name in sorted(os.listdir('/mnt/data')):\n"
        "    print(name + '=' + hashlib.sha256(open('/mnt/data/' + name, 'rb').read())"
        ".hexdigest())\n"
    )

    async def check(self) -> tuple[bool, str]:
        """The canary's kernel state, its files seen from inside and outside, its file objects."""
        problems: list[str] = []
        session = self.session
        if session is None:
            return False, "no canary session"
        try:
            r = await session.execute(self._PROBE, timeout=60)
        except EngineError as exc:
            r = None
            problems.append(f"canary execute raised {type(exc).__name__}: {exc}")
        if r is not None:
            seen = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
            expected = {n: hashlib.sha256(d).hexdigest() for n, d in self.files.items()}
            if r.status is not ExecutionStatus.OK:
                problems.append(f"canary cell {r.status.value}: {r.error}")
            if seen.pop("token", None) != self.token:
                problems.append("canary kernel state lost")
            if seen != expected:
                problems.append(f"canary /mnt/data differs: {sorted(seen)}")
        for name, data in self.files.items():
            try:
                if await session.read_file(name) != data:
                    problems.append(f"{name} differs when read from the host")
                if await self.engine.files.content(self.file_ids[name], self.owner) != data:
                    problems.append(f"file object of {name} differs")
            except EngineError as exc:
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        if problems:
            await self._replace()
            return False, "; ".join(problems)
        return True, "canary intact"

    async def _replace(self) -> None:
        """A broken canary would fail every later case too: start a fresh one."""
        self.restarts += 1
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.engine.sessions.close(self.session.id)
        self.session = None
        self.token = secrets.token_hex(8)
        with contextlib.suppress(Exception):
            await self.start()

    async def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(EngineError):
                await self.engine.sessions.close(self.session.id)


@dataclass
class HostWatch:
    """The host must not change: a sentinel file outside the engine's folder, a few system
    files, and no container, volume or sandbox-uid process the engine does not account for."""

    workdir: Path
    engine: Engine
    marker: str
    client: docker.DockerClient = field(default_factory=docker.from_env)
    sentinel: Path = field(init=False)
    _baseline: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        sentinel_dir = self.workdir / "host-sentinel"
        sentinel_dir.mkdir(mode=0o755)
        self.sentinel = sentinel_dir / "sentinel.txt"
        self.sentinel.write_text(f"host sentinel {self.marker}\n")
        self.sentinel.chmod(0o644)
        self._baseline = self._files()

    def _files(self) -> dict[str, Any]:
        state: dict[str, Any] = {"dir": sorted(os.listdir(self.sentinel.parent))}
        for path in (self.sentinel, *map(Path, HOST_FILES)):
            try:
                st = path.stat()
                state[str(path)] = (
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    st.st_mtime_ns,
                    st.st_ino,
                    stat.S_IMODE(st.st_mode),
                )
            except OSError as exc:
                state[str(path)] = f"unreadable: {exc.strerror}"
        return state

    def _label(self) -> str:
        return f"{HOME_LABEL}={self.engine.labels[HOME_LABEL]}"

    def ours(self) -> tuple[set[str], set[str]]:
        """Containers and volumes carrying this engine's label."""
        label = {"label": self._label()}
        containers = {
            c.id for c in self.client.containers.list(all=True, filters=label, sparse=True)
        }
        volumes = {v.name for v in self.client.volumes.list(filters=label)}
        return containers, volumes

    def accounted(self) -> tuple[set[str], set[str]]:
        """Containers and volumes of the engine's live sessions."""
        containers, volumes = set(), set()
        for session in self.engine.sessions.live():
            with contextlib.suppress(EngineError):
                sandbox = session.sandbox
                containers.add(str(getattr(sandbox, "container_id", "")))
                volumes.add(f"sandbox-engine-{sandbox.id}")
        return containers, volumes

    def check(self) -> list[str]:
        problems = []
        now = self._files()
        for key, before in self._baseline.items():
            if now.get(key) != before:
                problems.append(f"host changed: {key}")
        containers, volumes = self.ours()
        known_c, known_v = self.accounted()
        if extra := containers - known_c:
            problems.append(f"{len(extra)} container(s) of this engine not owned by a session")
        if extra_v := volumes - known_v:
            problems.append(f"{len(extra_v)} volume(s) of this engine not owned by a session")
        if stray := stray_processes():
            problems.append(f"sandbox-uid processes outside any container: {stray}")
        return problems


def stray_processes() -> list[int]:
    """Processes of the sandbox uids whose cgroup is not a container's: an escape would show."""
    stray = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid not in SANDBOX_UIDS:
                continue
            cgroup = Path(f"/proc/{entry.name}/cgroup").read_text()
        except OSError:
            continue
        if "docker" not in cgroup and "containerd" not in cgroup:
            stray.append(int(entry.name))
    return stray


@dataclass
class Context:
    """Handed to every case: the engine, the API, the host's markers, and fresh sessions."""

    engine: Engine
    api_url: str
    workdir: Path
    marker: str
    watch: HostWatch
    canary: Canary
    sessions: list[Session] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def sentinel(self) -> Path:
        return self.watch.sentinel

    def fill(self, code: str) -> str:
        """Host facts hostile code may look for: ``@MARKER@``, ``@SENTINEL@``, ``@DATA_DIR@``."""
        return (
            code.replace("@MARKER@", self.marker)
            .replace("@SENTINEL@", str(self.sentinel))
            .replace("@DATA_DIR@", str(self.settings.data_dir))
        )

    async def session(self, **kwargs: Any) -> Session:
        """A fresh session for one case; the runner closes it afterwards."""
        kwargs.setdefault("owner", "hostile")
        session = await self.engine.session(f"hostile-{secrets.token_hex(6)}", **kwargs)
        self.sessions.append(session)
        return session

    def client(self, key: int | None = 0, **kwargs: Any) -> httpx.AsyncClient:
        headers = {} if key is None else {"Authorization": f"Bearer {KEYS[key]}"}
        kwargs.setdefault("timeout", 120)
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, **kwargs)

    async def close_sessions(self) -> None:
        sessions, self.sessions = self.sessions, []
        for session in sessions:
            if session is not self.canary.session:
                with contextlib.suppress(EngineError):
                    await self.engine.sessions.close(session.id)
        # Sessions a case created through the API belong to the case too.
        for session in self.engine.sessions.live():
            if session is not self.canary.session:
                with contextlib.suppress(EngineError):
                    await self.engine.sessions.close(session.id)
