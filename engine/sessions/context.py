"""What every session of one engine shares, and the settings turned into sandbox and kernel
limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..blobs import open_blobs
from ..config import MB, Settings
from ..files import FileStore
from ..kernel import KernelLimits
from ..pool import WarmPool
from ..sandbox.base import SandboxBackend, SandboxSpec
from ..store import Store
from .records import SessionRecords
from .snapshots import SnapshotStore


def sandbox_spec(settings: Settings, image: str, labels: dict[str, str]) -> SandboxSpec:
    return SandboxSpec(
        image=image,
        memory_limit_mb=settings.memory_limit_mb,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        nofile_limit=settings.nofile_limit,
        fsize_limit_mb=settings.fsize_limit_mb,
        tmp_size_mb=settings.tmp_size_mb,
        home_size_mb=settings.home_size_mb,
        data_size_mb=settings.data_size_mb,
        log_max_size=settings.log_max_size,
        runtime=settings.runtime,
        env=dict(settings.sandbox_env),
        labels=labels,
    )


def kernel_limits(settings: Settings, memory_limit_mb: int) -> KernelLimits:
    return KernelLimits(
        start_timeout=settings.kernel_start_timeout,
        interrupt_grace=settings.interrupt_grace,
        output_limit_chars=settings.output_limit_chars,
        max_display_outputs=settings.max_display_outputs,
        max_display_bytes=settings.max_display_bytes,
        memory_limit_mb=memory_limit_mb,
        max_message_bytes=settings.max_kernel_message_mb * MB,
        receive_budget_bytes=settings.kernel_receive_budget_mb * MB,
    )


@dataclass
class SessionContext:
    """What every session of one engine shares."""

    backend: SandboxBackend
    spec: SandboxSpec
    settings: Settings
    store: Store
    files: FileStore
    pool: WarmPool | None = None
    resume_pool: WarmPool | None = None
    records: SessionRecords = field(init=False)
    snapshots: SnapshotStore = field(init=False)

    def __post_init__(self) -> None:
        self.records = SessionRecords(self.store)
        local = self.settings.data_dir / "snapshots"
        self.snapshots = SnapshotStore(open_blobs(self.settings.files_url, "snapshots", local))
