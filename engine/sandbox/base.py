"""The sandbox backend interface: create, run processes in, and destroy locked-down sandboxes.

A backend knows nothing about threads or files: it hands out isolated places to run processes,
each with a size-capped ``/mnt/data``, and owns the transport to the kernel that runs in one.
The kernel layer asks a sandbox for a kernel endpoint (``prepare_kernel``), starts the kernel
(``start_process``), and connects only to what ``kernel_ready`` verified; where the endpoints
live (a host folder of Unix sockets, a forwarded port) is the backend's business alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from jupyter_client.connect import KernelConnectionInfo

from ..egress.policy import DISABLED, EgressPolicy

DATA_MOUNT = "/mnt/data"
SANDBOX_UID = 10001
SESSION_LABEL = "org.sandbox-engine.session"
"""The session a sandbox was started for, when it has a network policy (its proxy logs it)."""
UPLOAD_PREFIX = ".sandbox-engine-upload-"
"""The name of a file the engine is still writing into /mnt/data (a temp file, then renamed):
never a user's file, never exported or listed."""


@dataclass(frozen=True)
class FileEntry:
    """A regular file below /mnt/data; ``path`` is relative to it."""

    path: str
    size: int
    mtime_ns: int
    inode: int


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
    egress: EgressPolicy = DISABLED
    """Where the sandbox may connect: nowhere (no network at all) unless an allowlist."""


@dataclass(frozen=True)
class ProcessHandle:
    """A process started inside a sandbox."""

    id: str


@dataclass(frozen=True)
class OutputChunk:
    """Bytes a command wrote to one of its streams."""

    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class CommandRun:
    """A command started with ``Sandbox.run_command``: its output as it comes, to the end."""

    process: ProcessHandle
    output: AsyncIterator[OutputChunk]


@dataclass(frozen=True)
class KernelLaunch:
    """One kernel start a sandbox has prepared."""

    id: str
    """The sandbox's name for this launch."""
    connection_file: str
    """Where the kernel reads its connection file, as a path inside the sandbox."""


class Sandbox(ABC):
    """One live sandbox."""

    id: str
    labels: dict[str, str]
    """The labels it was created with (``SandboxSpec.labels`` plus the backend's own)."""

    # The kernel's transport. The kernel layer picks the message key; the backend picks the
    # endpoints, and must never hand out one that sandboxed code could have put in its place.

    @abstractmethod
    async def prepare_kernel(self, key: bytes, signature_scheme: str) -> KernelLaunch:
        """Fresh endpoints for one kernel start, and its connection file (with this key) in
        place inside the sandbox, not writable by the sandbox user."""

    @abstractmethod
    async def kernel_ready(
        self, launch: KernelLaunch, process: ProcessHandle, timeout: float
    ) -> KernelConnectionInfo:
        """Wait until the kernel started as ``process`` has bound its endpoints, verify they
        are the kernel's, and return them as the host reaches them: ``transport``, ``ip`` and
        the five ``*_port`` keys. Raise KernelStartError if the process exits, the timeout
        passes, or an endpoint fails verification."""

    @abstractmethod
    async def adopt_kernel(self, launch: KernelLaunch) -> KernelConnectionInfo:
        """The endpoints of a kernel that an earlier engine process started here (its
        ``kernel_ready`` passed then), verified again as strictly as ``kernel_ready`` does:
        the sandbox has had all the time the engine was away to plant something in their
        place. Raise KernelStartError if anything fails the check; never connect to it."""

    @abstractmethod
    async def release_kernel(self, launch: KernelLaunch) -> None:
        """Free what ``prepare_kernel`` holds on the host for this launch. Idempotent."""

    @abstractmethod
    async def start_process(self, argv: list[str], env: dict[str, str]) -> ProcessHandle:
        """Start ``argv`` as the sandbox user, detached."""

    @abstractmethod
    async def run_command(
        self, argv: list[str], env: dict[str, str], cwd: str, max_output: int
    ) -> CommandRun:
        """Start ``argv`` as the sandbox user in ``cwd``, its stdout and stderr streamed back;
        the output ends when the command does, or after ``max_output`` bytes (the rest is
        dropped, the command keeps running). ``exit_code`` tells how it ended."""

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

    @abstractmethod
    async def set_deadline(self, when: float) -> None:
        """Move the time (seconds since the epoch) at which the sandbox stops itself, engine or
        not. Only the engine can move it: never through anything the sandbox can write."""

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
    async def create(self, spec: SandboxSpec, deadline: float | None = None) -> Sandbox:
        """Create and start a sandbox; return once it can run processes. It stops itself at
        ``deadline`` (seconds since the epoch; by default ``lifetime.DEFAULT_LIFETIME`` from
        now) unless ``set_deadline`` moves it."""

    @abstractmethod
    async def find_leftovers(self, labels: dict[str, str]) -> list[Sandbox]:
        """Sandboxes carrying all these labels, whatever their state: what an earlier engine
        process left behind. Each comes with its ``labels``; a running one can be re-adopted
        (``adopt_kernel``), any of them destroyed."""

    @abstractmethod
    async def close(self) -> None:
        """Release the backend's own resources (not the sandboxes)."""
