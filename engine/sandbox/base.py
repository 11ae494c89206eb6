"""The sandbox backend interface: create, run processes in, and destroy locked-down sandboxes.

A backend knows nothing about kernels, threads or files: it hands out isolated places to run
processes, each with a host folder mounted at ``/conn`` (for the kernel's IPC sockets) and a
size-capped ``/mnt/data``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .hostfs import FileEntry

CONN_MOUNT = "/conn"
DATA_MOUNT = "/mnt/data"
SANDBOX_UID = 10001


@dataclass(frozen=True)
class SandboxSpec:
    """What one sandbox gets; defaults come from Settings."""

    image: str
    memory_limit_mb: int
    cpus: float
    pids_limit: int
    nofile_limit: int
    fsize_limit_mb: int
    tmp_size_mb: int
    home_size_mb: int
    data_size_mb: int
    log_max_size: str
    runtime: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessHandle:
    """A process started inside a sandbox."""

    id: str


class Sandbox(ABC):
    """One live sandbox. Its ``conn_dir`` is the host side of ``/conn``."""

    id: str
    conn_dir: Path

    @abstractmethod
    async def start_process(self, argv: list[str], env: dict[str, str]) -> ProcessHandle:
        """Start ``argv`` as the sandbox user, detached."""

    @abstractmethod
    async def exit_code(self, process: ProcessHandle) -> int | None:
        """None while the process runs, else its exit code (137 = SIGKILL)."""

    @abstractmethod
    async def kill_all(self) -> None:
        """SIGKILL every process of the sandbox user, keeping the sandbox itself alive."""

    @abstractmethod
    async def oom_kills(self) -> int:
        """How many processes the out-of-memory killer has ended in this sandbox so far."""

    @abstractmethod
    async def is_running(self) -> bool:
        """Whether the sandbox as a whole is still up."""

    @abstractmethod
    async def destroy(self) -> None:
        """Remove the sandbox and everything in it. Idempotent."""

    # Files under /mnt/data. No implementation may follow a symlink the sandbox planted.

    @abstractmethod
    async def list_files(self, limit: int) -> tuple[list[FileEntry], bool]:
        """Regular files under /mnt/data, and whether the listing was cut at ``limit``."""

    @abstractmethod
    async def open_file(self, path: str) -> BinaryIO:
        """A regular file under /mnt/data, opened for reading."""

    @abstractmethod
    async def write_file(self, path: str, src: BinaryIO, max_bytes: int) -> FileEntry:
        """Atomically create or replace a file under /mnt/data, owned by the sandbox user."""

    @abstractmethod
    async def remove_file(self, path: str) -> None:
        """Delete a file under /mnt/data."""


class SandboxBackend(ABC):
    """Creates sandboxes of one kind (Docker now; Kubernetes later)."""

    name: str

    @abstractmethod
    async def check(self, image: str) -> None:
        """Raise BackendUnavailable or ImageNotFound unless sandboxes can be created."""

    @abstractmethod
    async def create(self, spec: SandboxSpec) -> Sandbox:
        """Create and start a sandbox; return once it can run processes."""

    @abstractmethod
    async def find_leftovers(self, labels: dict[str, str]) -> list[Sandbox]:
        """Sandboxes carrying all these labels: what an earlier engine process left behind."""

    @abstractmethod
    async def close(self) -> None:
        """Release the backend's own resources (not the sandboxes)."""
