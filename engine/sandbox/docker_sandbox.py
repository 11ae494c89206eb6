"""DockerSandbox: one locked-down container, its kernel reached over IPC, its /mnt/data read
from the host without following links."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import docker
from docker.errors import APIError, NotFound
from jupyter_client.connect import KernelConnectionInfo

from .. import errors
from .base import (
    DATA_MOUNT,
    SANDBOX_UID,
    CommandRun,
    FileEntry,
    KernelLaunch,
    OutputChunk,
    ProcessHandle,
    Sandbox,
)
from .hostfs import HostDataDir
from .ipc import IpcKernelFolders
from .lifetime import read_deadline, write_deadline

T = TypeVar("T")
log = logging.getLogger(__name__)

MANAGED_LABEL = "org.sandbox-engine.managed"
SANDBOX_LABEL = "org.sandbox-engine.sandbox"
HOME = "/home/sandbox"
CONN_MOUNT = "/conn"
"""Where the host folder of the kernel's IPC sockets is mounted in the container."""
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
# PID 1 and the lifetime watcher run as a uid of their own, so the sandbox user's kill(-1)
# cannot end them.
HOLDER_USER = f"{SANDBOX_UID + 1}:{SANDBOX_UID + 1}"
TMPFS_OPTS = "rw,nosuid,nodev"
VOLUME_REMOVAL_WAIT = 30.0
INLINE_LIST_LIMIT = 64
"""Entries of /mnt/data listed on the event loop before the listing moves to a worker thread."""


class DockerCalls(Protocol):
    """What a sandbox asks of the backend that made it (DockerBackend, in docker.py)."""

    @property
    def client(self) -> docker.DockerClient: ...

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking Docker SDK call on the backend's threads."""

    def remove_sandbox(self, sandbox_id: str, name: str) -> None: ...

    def remove_later(self, sandbox_id: str, name: str) -> None: ...


class DockerSandbox(Sandbox):
    def __init__(
        self,
        backend: DockerCalls,
        sandbox_id: str,
        container_id: str,
        volume_name: str,
        state_dir: Path,
        labels: dict[str, str] | None = None,
        deadline: int | None = None,
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
        self.deadline = deadline
        """The deadline last written, in whole seconds; None until known."""

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
                self.container_id, argv, user=SANDBOX_USER, environment=env, workdir=DATA_MOUNT
            )["Id"]
            api.exec_start(exec_id, detach=True)
            return str(exec_id)

        try:
            return ProcessHandle(await self._backend.run(start))
        except APIError as exc:
            # The container stopped between a liveness check and this exec (gVisor's OOM
            # killer ends the whole sandbox; runsc answers that with a 500): that is a lost
            # sandbox, not a backend failure.
            if exc.status_code in (404, 409) or _stopped(exc):
                raise errors.SandboxLost(f"the sandbox container is gone: {exc}") from exc
            raise

    async def run_command(
        self, argv: list[str], env: dict[str, str], cwd: str, max_output: int
    ) -> CommandRun:
        api = self._backend.client.api

        def start() -> tuple[str, Any]:
            exec_id = api.exec_create(
                self.container_id, argv, user=SANDBOX_USER, environment=env, workdir=cwd
            )["Id"]
            return str(exec_id), api.exec_start(exec_id, stream=True, demux=True)

        try:
            exec_id, frames = await self._backend.run(start)
        except NotFound as exc:
            raise errors.SandboxLost(f"the sandbox container is gone: {exc}") from exc
        except APIError as exc:
            if exc.status_code == 409 or _stopped(exc):
                raise errors.SandboxLost(f"the sandbox container is gone: {exc}") from exc
            raise
        return CommandRun(ProcessHandle(exec_id), _pump(frames, max_output))

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
                exec_id = api.exec_create(self.container_id, argv, user=SANDBOX_USER)["Id"]
                api.exec_start(exec_id)
            except NotFound:
                pass  # no container, no processes; is_running tells the caller
            except APIError as exc:
                # 409 (runsc: a 500 "in state stopped"): the container is not running
                if exc.status_code != 409 and not _stopped(exc):
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

    async def set_deadline(self, when: float) -> None:
        conn_dir = self._state_dir / "conn"
        if self.deadline is None:
            self.deadline = read_deadline(conn_dir)
        if int(when) == self.deadline:
            return  # one file write per change, not per call
        try:
            write_deadline(conn_dir, when)
        except FileNotFoundError:  # removed under us: is_running says the rest
            return
        self.deadline = int(when)

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


async def _pump(frames: Any, max_output: int) -> AsyncIterator[OutputChunk]:
    """A command's demultiplexed output, read on a thread of its own (it may run for hours,
    and must not hold one of the backend's workers) and handed to the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[OutputChunk | None] = asyncio.Queue()

    def read() -> None:
        left = max_output
        try:
            for out, err in frames:
                for chunk in (OutputChunk("stdout", out or b""), OutputChunk("stderr", err or b"")):
                    if chunk.data and left > 0:
                        kept = OutputChunk(chunk.stream, chunk.data[:left])
                        left -= len(kept.data)
                        loop.call_soon_threadsafe(queue.put_nowait, kept)
        except Exception as exc:  # the container went away under the stream
            log.debug("command output ended: %s", exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="sandbox-command-output", daemon=True).start()
    while (chunk := await queue.get()) is not None:
        yield chunk


def _stopped(exc: APIError) -> bool:
    """runsc's answer to an exec in a container that has just stopped."""
    return "in state stopped" in str(exc)
