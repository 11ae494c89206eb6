"""Docker backend: one locked-down container per sandbox, its kernel reached over IPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import DriverConfig, LogConfig, Mount, Ulimit
from jupyter_client.connect import KernelConnectionInfo

from .. import errors
from .base import (
    DATA_MOUNT,
    SANDBOX_UID,
    KernelLaunch,
    ProcessHandle,
    Sandbox,
    SandboxBackend,
    SandboxSpec,
)
from .hostfs import FileEntry, HostDataDir
from .ipc import IpcKernelFolders, create_conn_dir, make_removable

T = TypeVar("T")
log = logging.getLogger(__name__)

MANAGED_LABEL = "org.sandbox-engine.managed"
SANDBOX_LABEL = "org.sandbox-engine.sandbox"
HOME = "/home/sandbox"
CONN_MOUNT = "/conn"
"""Where the host folder of the kernel's IPC sockets is mounted in the container."""
_USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
# PID 1 and its `sleep` run as a uid of their own, so the sandbox user's kill(-1) cannot end them.
_HOLDER_USER = f"{SANDBOX_UID + 1}:{SANDBOX_UID + 1}"
_TMPFS_OPTS = "rw,nosuid,nodev"
VOLUME_REMOVAL_WAIT = 30.0
INLINE_LIST_LIMIT = 64
"""Entries of /mnt/data listed on the event loop before the listing moves to a worker thread."""


class DockerSandbox(Sandbox):
    def __init__(
        self,
        backend: DockerBackend,
        sandbox_id: str,
        container_id: str,
        volume_name: str,
        state_dir: Path,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.id = sandbox_id
        self.labels = dict(labels or {})
        self._backend = backend
        self.container_id = container_id
        self._volume_name = volume_name
        self._state_dir = state_dir
        self._ipc = IpcKernelFolders(state_dir / "conn", CONN_MOUNT, SANDBOX_UID)
        self._oom_file: Path | None = None
        self._data: HostDataDir | None = None

    async def prepare_kernel(self, key: bytes, signature_scheme: str) -> KernelLaunch:
        return self._ipc.prepare(key, signature_scheme)

    async def kernel_ready(
        self, launch: KernelLaunch, process: ProcessHandle, timeout: float
    ) -> KernelConnectionInfo:
        async def exited() -> bool:
            return await self.exit_code(process) is not None

        return await self._ipc.wait_bound(launch.id, exited, timeout)

    async def adopt_kernel(self, launch: KernelLaunch) -> KernelConnectionInfo:
        return self._ipc.adopt(launch.id)

    async def release_kernel(self, launch: KernelLaunch) -> None:
        self._ipc.release(launch.id)

    async def start_process(self, argv: list[str], env: dict[str, str]) -> ProcessHandle:
        api = self._backend.client.api

        def start() -> str:
            exec_id = api.exec_create(
                self.container_id, argv, user=_USER, environment=env, workdir=DATA_MOUNT
            )["Id"]
            api.exec_start(exec_id, detach=True)
            return str(exec_id)

        try:
            return ProcessHandle(await self._backend.run(start))
        except APIError as exc:
            # The container stopped between a liveness check and this exec (gVisor's OOM
            # killer ends the whole sandbox): that is a lost sandbox, not a backend failure.
            if exc.status_code in (404, 409):
                raise errors.SandboxLost(f"the sandbox container is gone: {exc}") from exc
            raise

    async def exit_code(self, process: ProcessHandle) -> int | None:
        try:
            info = await self._backend.run(self._backend.client.api.exec_inspect, process.id)
        except NotFound:
            return -1
        if info.get("Running"):
            return None
        code = info.get("ExitCode")
        return -1 if code is None else int(code)

    async def kill_all(self) -> None:
        # kill(-1) from the sandbox uid reaches every sandbox process except the namespace's init.
        argv = ["python3", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"]
        api = self._backend.client.api

        def kill() -> None:
            try:
                exec_id = api.exec_create(self.container_id, argv, user=_USER)["Id"]
                api.exec_start(exec_id)
            except NotFound:
                pass  # no container, no processes; is_running tells the caller
            except APIError as exc:
                if exc.status_code != 409:  # 409: the container is not running
                    raise

        await self._backend.run(kill)

    async def oom_kills(self) -> int:
        try:
            return await self._oom_kills()
        except NotFound:  # removed from outside: no OOM to report; is_running says the rest
            return 0

    async def _oom_kills(self) -> int:
        if self._oom_file is None:
            self._oom_file = await self._backend.run(self._find_oom_file)
        if self._oom_file is not None:
            try:
                text = self._oom_file.read_text()
            except OSError:
                text = ""
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        state = await self._backend.run(self._inspect_state)
        return 1 if state.get("OOMKilled") else 0

    def _inspect_state(self) -> dict[str, Any]:
        info = self._backend.client.api.inspect_container(self.container_id)
        return dict(info.get("State", {}))

    def _find_oom_file(self) -> Path | None:
        pid = self._inspect_state().get("Pid")
        if not pid:
            return None
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # cgroup v2
                candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events"
            elif "memory" in controllers.split(","):
                candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
            else:
                continue
            if candidate.exists():
                return candidate
        return None

    async def is_running(self) -> bool:
        try:
            state = await self._backend.run(self._inspect_state)
        except NotFound:
            return False
        return bool(state.get("Running"))

    async def destroy(self) -> None:
        self._ipc.close()
        try:
            await self._backend.run(self._backend.remove_sandbox, self.id, self._volume_name)
        except errors.EngineError:
            self._backend.remove_later(self.id, self._volume_name)
            raise

    def _data_dir(self) -> HostDataDir:
        if self._data is None:
            try:
                info = self._backend.client.api.inspect_volume(self._volume_name)
            except NotFound as exc:
                raise errors.SandboxLost(
                    f"the /mnt/data volume of sandbox {self.id} is gone"
                ) from exc
            self._data = HostDataDir(Path(info["Mountpoint"]), SANDBOX_UID)
        return self._data

    async def list_files(self, limit: int) -> tuple[list[FileEntry], bool]:
        # A few files are listed inline, for less than the hop to a worker thread costs; a
        # bigger folder, or the first call (which asks Docker where the volume is), goes there.
        data = self._data
        if data is not None:
            entries, truncated = data.list(min(limit, INLINE_LIST_LIMIT))
            if not truncated or limit <= INLINE_LIST_LIMIT:
                return entries, truncated
        return await self._backend.run(lambda: self._data_dir().list(limit))

    async def open_file(self, path: str) -> BinaryIO:
        return await self._backend.run(lambda: self._data_dir().open_read(path))

    async def write_file(self, path: str, src: BinaryIO, max_bytes: int) -> FileEntry:
        return await self._backend.run(lambda: self._data_dir().write(path, src, max_bytes))

    async def remove_file(self, path: str) -> None:
        await self._backend.run(lambda: self._data_dir().remove(path))


class DockerBackend(SandboxBackend):
    """Sandboxes as Docker containers, reached over a bind-mounted IPC folder."""

    name = "docker"

    def __init__(self, state_dir: Path, docker_host: str | None = None) -> None:
        self.state_dir = state_dir
        self._docker_host = docker_host
        self._client: docker.DockerClient | None = None
        # Sandboxes whose removal failed (Docker down): retried before the next create.
        self._to_remove: dict[str, str] = {}
        # Docker SDK calls block; a dedicated pool keeps many sessions from queueing on 6 threads.
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="docker")

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                if self._docker_host:
                    self._client = docker.DockerClient(base_url=self._docker_host, max_pool_size=32)
                else:
                    self._client = docker.from_env(max_pool_size=32)
            except DockerException as exc:
                raise errors.BackendUnavailable(
                    f"cannot reach the Docker engine ({exc}); is dockerd running? "
                    "`scripts/setup` installs and starts it on Debian"
                ) from exc
        return self._client

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, partial(fn, *args))
        except requests.exceptions.ConnectionError as exc:
            raise errors.BackendUnavailable(
                f"the Docker engine does not answer ({exc}); is dockerd running?"
            ) from exc

    async def check(self, image: str) -> None:
        def probe() -> None:
            try:
                self.client.ping()
            except (DockerException, OSError) as exc:
                raise errors.BackendUnavailable(
                    f"the Docker engine does not answer: {exc}"
                ) from exc
            try:
                self.client.images.get(image)
            except ImageNotFound as exc:
                raise errors.ImageNotFound(
                    f"sandbox image {image!r} is not built; run `sandbox-engine image build`"
                ) from exc

        await self.run(probe)

    def remove_later(self, sandbox_id: str, name: str) -> None:
        self._to_remove[sandbox_id] = name

    def _retry_removals(self) -> None:
        for sandbox_id, name in list(self._to_remove.items()):
            try:
                self.remove_sandbox(sandbox_id, name)
            except (errors.EngineError, requests.exceptions.ConnectionError) as exc:
                log.warning("sandbox %s: still cannot remove it: %s", sandbox_id, exc)
                return
            del self._to_remove[sandbox_id]

    async def create(self, spec: SandboxSpec) -> Sandbox:
        if self._to_remove:
            await self.run(self._retry_removals)
        sandbox_id = uuid.uuid4().hex[:16]
        state_dir = self.state_dir / sandbox_id
        conn_dir = state_dir / "conn"
        create_conn_dir(conn_dir)
        labels = {**spec.labels, MANAGED_LABEL: "true", SANDBOX_LABEL: sandbox_id}
        name = f"sandbox-engine-{sandbox_id}"
        try:
            container_id = await self.run(self._create_container, name, spec, labels, conn_dir)
        except BaseException:
            try:
                await self.run(self.remove_sandbox, sandbox_id, name)
            except errors.EngineError:  # Docker is down: removed before the next create
                self.remove_later(sandbox_id, name)
                make_removable(state_dir)
                shutil.rmtree(state_dir, ignore_errors=True)
            raise
        return DockerSandbox(self, sandbox_id, container_id, name, state_dir, labels)

    def _create_container(
        self, name: str, spec: SandboxSpec, labels: dict[str, str], conn_dir: Path
    ) -> str:
        api = self.client.api
        memory = f"{spec.memory_limit_mb}m"
        fsize = spec.fsize_limit_mb * 1024 * 1024
        data_volume = DriverConfig(
            "local",
            options={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size={spec.data_size_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID},"
                "mode=0755,nosuid,nodev",
            },
        )
        host_config = api.create_host_config(
            init=True,
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=spec.pids_limit,
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(spec.cpus * 1e9),
            ulimits=[
                Ulimit(name="nofile", soft=spec.nofile_limit, hard=spec.nofile_limit),
                Ulimit(name="fsize", soft=fsize, hard=fsize),
                Ulimit(name="core", soft=0, hard=0),
            ],
            tmpfs={
                "/tmp": f"{_TMPFS_OPTS},size={spec.tmp_size_mb}m,mode=1777",
                HOME: f"{_TMPFS_OPTS},size={spec.home_size_mb}m,"
                f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700",
            },
            mounts=[
                # Docker creates this named tmpfs volume with the container, labels included.
                Mount(
                    target=DATA_MOUNT,
                    source=name,
                    type="volume",
                    driver_config=data_volume,
                    labels=labels,
                ),
                Mount(target=CONN_MOUNT, source=str(conn_dir), type="bind"),
            ],
            log_config=LogConfig(
                type="json-file", config={"max-size": spec.log_max_size, "max-file": "1"}
            ),
            runtime=spec.runtime,
        )
        try:
            container_id = str(
                api.create_container(
                    spec.image,
                    command=["sleep", "infinity"],
                    name=name,
                    user=_HOLDER_USER,
                    working_dir=DATA_MOUNT,
                    hostname="sandbox",
                    network_disabled=True,
                    environment=dict(spec.env),
                    labels=labels,
                    host_config=host_config,
                )["Id"]
            )
            api.start(container_id)
        except ImageNotFound as exc:
            raise errors.ImageNotFound(
                f"sandbox image {spec.image!r} is not built; run `sandbox-engine image build`"
            ) from exc
        except (APIError, DockerException) as exc:
            raise errors.SandboxUnavailable(f"could not start a sandbox container: {exc}") from exc
        return container_id

    def remove_sandbox(self, sandbox_id: str, name: str) -> None:
        try:
            self._remove_container(name)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: its removal is already in progress
                raise errors.SandboxError(f"could not remove sandbox {sandbox_id}: {exc}") from exc
        # While someone else's removal of the container runs, the volume is "in use" (409):
        # wait for it rather than leave the volume behind.
        deadline = time.monotonic() + VOLUME_REMOVAL_WAIT
        while True:
            try:
                self._remove_volume(name)
                break
            except NotFound:
                break
            except APIError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise errors.SandboxError(
                        f"could not remove the volume of sandbox {sandbox_id}: {exc}"
                    ) from exc
                time.sleep(0.1)
        state_dir = self.state_dir / sandbox_id
        if state_dir.exists():
            make_removable(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)

    def _remove_container(self, name: str) -> None:
        self.client.api.remove_container(name, force=True, v=True)

    def _remove_volume(self, name: str) -> None:
        self.client.api.remove_volume(name, force=True)

    async def find_leftovers(self, labels: dict[str, str]) -> list[Sandbox]:
        filters = {"label": [f"{k}={v}" for k, v in {**labels, MANAGED_LABEL: "true"}.items()]}

        def sweep() -> list[Sandbox]:
            containers = self.client.api.containers(all=True, filters=filters)
            volumes = self.client.api.volumes(filters=filters).get("Volumes") or []
            found: dict[str, tuple[str, dict[str, str]]] = {
                c["Labels"][SANDBOX_LABEL]: (c["Id"], c["Labels"]) for c in containers
            }
            for volume in volumes:
                found.setdefault(volume["Labels"][SANDBOX_LABEL], ("", volume["Labels"]))
            return [
                DockerSandbox(self, sid, cid, f"sandbox-engine-{sid}", self.state_dir / sid, labels)
                for sid, (cid, labels) in found.items()
            ]

        return await self.run(sweep)

    async def close(self) -> None:
        if self._to_remove:
            with contextlib.suppress(errors.EngineError):
                await self.run(self._retry_removals)
        if self._client is not None:
            self._client.close()
        self._pool.shutdown(wait=False)
