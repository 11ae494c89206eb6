"""The Engine: the library's entry point, owning the backend, the store, files and sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from types import TracebackType

from .config import Settings
from .files import FileStore
from .pool import WarmPool
from .sandbox.base import SandboxBackend
from .sandbox.docker import DockerBackend
from .sessions import Session, SessionContext, SessionManager, kernel_limits, sandbox_spec
from .store import Store

HOME_LABEL = "org.sandbox-engine.home"
MB = 1024 * 1024


class Engine:
    """Async face: ``async with Engine() as engine: session = await engine.session("t1")``."""

    def __init__(
        self, settings: Settings | None = None, *, backend: SandboxBackend | None = None
    ) -> None:
        self.settings = settings or Settings()
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.backend = backend or DockerBackend(data_dir / "sandboxes", self.settings.docker_host)
        # Containers from an earlier process on the same data folder are ours to clean up.
        home = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        self.labels = {HOME_LABEL: home}
        self.image = self.settings.image or _default_image(self.settings)
        self.store = Store(data_dir / "engine.db")
        self.files = FileStore(self.store, data_dir / "files", self.settings.max_file_mb * MB)
        self._sessions: SessionManager | None = None
        self.pool: WarmPool | None = None

    @property
    def sessions(self) -> SessionManager:
        if self._sessions is None:
            raise RuntimeError("the engine is not started; use `async with Engine() as engine`")
        return self._sessions

    async def start(self) -> Engine:
        await self.backend.check(self.image)
        self.files.sweep()
        spec = sandbox_spec(self.settings, self.image, self.labels)
        if self.settings.pool_max > 0 and (self.settings.pool_size or self.settings.pool_min):
            self.pool = WarmPool(
                self.backend,
                spec,
                kernel_limits(self.settings, spec.memory_limit_mb),
                size=self.settings.pool_size,
                minimum=self.settings.pool_min,
                maximum=self.settings.pool_max,
                parallel=self.settings.pool_parallel,
            )
        ctx = SessionContext(
            backend=self.backend,
            spec=spec,
            settings=self.settings,
            store=self.store,
            files=self.files,
            pool=self.pool,
        )
        self._sessions = SessionManager(ctx, self.labels)
        await self._sessions.start()  # removes what an earlier process left, before the pool
        if self.pool is not None:
            self.pool.start()
        return self

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.close_all()
        if self.pool is not None:
            await self.pool.close()
        await self.backend.close()
        self.store.close()

    async def __aenter__(self) -> Engine:
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
        *,
        file_ids: Iterable[str] = (),
        owner: str = "",
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
    ) -> Session:
        """The live session of ``thread_id``, created if there is none.

        ``file_ids`` are placed under /mnt/data; ``idle_timeout`` and ``ttl`` (seconds) and
        ``memory_limit_mb`` override the engine's defaults for a new session.
        """
        return await self.sessions.get_or_create(
            thread_id,
            owner=owner,
            file_ids=file_ids,
            idle_timeout=idle_timeout,
            ttl=ttl,
            memory_limit_mb=memory_limit_mb,
        )

    def get_session(self, session_id: str, owner: str | None = None) -> Session:
        return self.sessions.get(session_id, owner)


def _default_image(settings: Settings) -> str:
    from .image import default_image_tag

    return default_image_tag(settings)
