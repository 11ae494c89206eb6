"""The runtime: the backend, the store, files, the warm pool and sessions, under one lease."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypedDict, Unpack

import docker

from .blobs import open_blobs
from .config import MB, Settings
from .files import FileQuota, FileStore
from .lease import OWNER_LABEL, Lease, folder_id
from .pool import STACK_IMPORTS, WarmPool
from .sandbox.base import SandboxBackend
from .sandbox.docker import DockerBackend
from .sandbox.egress_proxy import EgressProxies
from .sessions import (
    Session,
    SessionContext,
    SessionManager,
    SessionOptions,
    kernel_limits,
    sandbox_spec,
)
from .sessions.surface import S_co, SessionDirectory
from .store import Store

HOME_LABEL = "org.sandbox-engine.home"
log = logging.getLogger(__name__)
POOL_LEASE = 60.0
"""Seconds a warm sandbox outlives the last reaper tick (so, its engine)."""


class RuntimeOptions(TypedDict, total=False):
    """How an engine runs, beside its settings: ``backend``, the sandbox backend (Docker by
    default); ``guest``, a throwaway engine (``run``, ``doctor``) that never becomes the data
    folder's primary, touches no other engine's sandboxes and closes its own (without it, the
    engine is the primary if no other process is, else a guest); ``exclusive``, which makes
    that an error (DataFolderInUse) instead, as ``serve`` wants."""

    backend: SandboxBackend | None
    guest: bool
    exclusive: bool


class SessionHost(ABC, Generic[S_co]):
    """What the runtime, the engine that holds it, and a cluster's API replica are: ``async
    with`` them, and ask them for sessions (``Session`` here, ``RemoteSession`` on a cluster)."""

    @property
    @abstractmethod
    def sessions(self) -> SessionDirectory[S_co]: ...

    @abstractmethod
    async def start(self) -> Self: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def session(
        self,
        thread_id: str | None = None,
        **options: Unpack[SessionOptions],
    ) -> S_co:
        """The live session of ``thread_id``, created if there is none, with ``options``
        (``SessionOptions``) if it is new."""
        return await self.sessions.get_or_create(thread_id, **options)

    def get_session(self, session_id: str, owner: str | None = None) -> S_co:
        return self.sessions.get(session_id, owner)


def open_files(settings: Settings, store: Store) -> FileStore:
    """The file objects of ``settings``' data folder, or of its shared blob store."""
    data_dir = settings.data_dir
    quota = FileQuota(
        files=settings.max_files_per_owner,
        bytes=settings.max_file_storage_mb_per_owner * MB,
        reserve=settings.disk_reserve_mb * MB,
    )
    blobs = open_blobs(settings.files_url, "files", data_dir / "files" / "blobs")
    return FileStore(store, data_dir / "files", settings.max_file_mb * MB, quota, blobs)


class Runtime(SessionHost[Session]):
    """What every service runs on: sandboxes, the store, file objects and sessions."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: SandboxBackend | None = None,
        guest: bool = False,
        exclusive: bool = False,
    ) -> None:
        """See ``RuntimeOptions``."""
        self.settings = settings or Settings()
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if data_dir.stat().st_uid == os.geteuid():
            data_dir.chmod(0o700)  # the store in it holds kernels' message keys
        self.backend = backend or DockerBackend(
            data_dir / "sandboxes", self.settings.docker_host, _egress_proxies(self.settings)
        )
        # Every sandbox of this data folder carries the home label; which engine owns it, the
        # owner label (lease.py).
        home = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        self.labels = {HOME_LABEL: home}
        self._guest = guest
        self._exclusive = exclusive
        self.lease: Lease | None = None
        self.image = self.settings.image or _default_image(self.settings)
        url = self.settings.database_url
        self.store = Store(
            data_dir / "engine.db",
            url,
            folder_id(data_dir) if url else None,
            self.settings.cluster_node_id or None,
        )
        self.files = open_files(self.settings, self.store)
        self._sessions: SessionManager | None = None
        self._sweeping: asyncio.Task[int] | None = None
        self.pool: WarmPool | None = None
        self.resume_pool: WarmPool | None = None

    @property
    def sessions(self) -> SessionManager:
        if self._sessions is None:
            raise RuntimeError("the engine is not started; use `async with Engine() as engine`")
        return self._sessions

    async def start(self) -> Self:
        log.info("engine starting on %s", self.settings.data_dir)
        await self.backend.check(self.image)
        lease = Lease.take(self.settings.data_dir, guest=self._guest, exclusive=self._exclusive)
        self.lease = lease
        try:
            await self._start(lease)
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def primary(self) -> bool:
        """Whether this engine owns the data folder (its sessions can outlive it)."""
        return self.lease is not None and self.lease.primary

    async def _start(self, lease: Lease) -> None:
        if lease.primary:  # a guest could delete a running server's half-done upload
            if self.files.blobs.shared:  # a listing of a bucket: beside the first requests
                self._sweeping = asyncio.create_task(asyncio.to_thread(self._sweep_shared_files))
            else:
                self.files.sweep()
        self.labels = {**self.labels, OWNER_LABEL: lease.owner}
        spec = sandbox_spec(self.settings, self.image, self.labels)
        settings = self.settings
        if settings.pool_max > 0 and (settings.pool_size or settings.pool_min):
            make_pool = functools.partial(
                WarmPool,
                self.backend,
                spec,
                kernel_limits(settings, spec.memory_limit_mb),
                parallel=settings.pool_parallel,
                lease=POOL_LEASE + 2 * settings.reaper_interval,
            )
            self.pool = make_pool(
                size=settings.pool_size, minimum=settings.pool_min, maximum=settings.pool_max
            )
            if (n := settings.resume_pool_size) > 0:
                self.resume_pool = make_pool(
                    size=n, minimum=n, maximum=n, name="resumes", warm_up=STACK_IMPORTS
                )
        ctx = SessionContext(
            backend=self.backend,
            spec=spec,
            settings=self.settings,
            store=self.store,
            files=self.files,
            pool=self.pool,
            resume_pool=self.resume_pool,
        )
        self._sessions = SessionManager(ctx, self.labels, lease)
        await self._sessions.start()  # re-adopts or removes what earlier processes left
        for pool in self._pools():
            pool.start()

    def _sweep_shared_files(self) -> int:
        try:
            return self.files.sweep()
        except Exception:
            log.exception("sweeping the file blobs that no row names failed")
            return 0

    def _pools(self) -> list[WarmPool]:
        return [p for p in (self.pool, self.resume_pool) if p is not None]

    async def close(self) -> None:
        """Stop. The primary leaves its sessions' sandboxes running for the next engine on
        this data folder unless ``SANDBOX_SHUTDOWN_SANDBOXES=close``; a guest closes its own."""
        keep = self.primary and self.settings.shutdown_sandboxes == "keep"
        try:
            if self._sessions is not None:
                await self._sessions.close_all(keep=keep)
            for pool in self._pools():
                await pool.close()
            if self._sweeping is not None:
                await self._sweeping
            await self.backend.close()
            self.store.close()
        finally:
            if self.lease is not None:
                self.lease.release()


def _default_image(settings: Settings) -> str:
    from .image import default_image_tag

    return default_image_tag(settings)


def _egress_proxies(
    settings: Settings,
) -> Callable[[Callable[[], docker.DockerClient]], EgressProxies]:
    from .image import proxy_image_tag

    return functools.partial(
        EgressProxies,
        image=proxy_image_tag(settings),
        outward_network=settings.egress_network,
        memory_mb=settings.egress_proxy_memory_mb,
        ca_file=settings.data_dir / "egress-ca.pem",
        upstream_ca=settings.egress_upstream_ca,
    )
