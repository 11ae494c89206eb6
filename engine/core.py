"""The Engine: the library's entry point, owning the backend and the sessions."""

from __future__ import annotations

import hashlib
from types import TracebackType

from .config import Settings
from .sandbox.base import SandboxBackend
from .sandbox.docker import DockerBackend
from .sessions import Session, SessionManager, sandbox_spec

HOME_LABEL = "org.sandbox-engine.home"


class Engine:
    """Async face: ``async with Engine() as engine: session = await engine.session("t1")``."""

    def __init__(
        self, settings: Settings | None = None, *, backend: SandboxBackend | None = None
    ) -> None:
        self.settings = settings or Settings()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.backend = backend or DockerBackend(
            self.settings.data_dir / "sandboxes", self.settings.docker_host
        )
        # Containers from an earlier process on the same data folder are ours to clean up.
        home = hashlib.sha256(str(self.settings.data_dir.resolve()).encode()).hexdigest()[:16]
        self.labels = {HOME_LABEL: home}
        self.image = self.settings.image or _default_image(self.settings)
        self._sessions: SessionManager | None = None

    @property
    def sessions(self) -> SessionManager:
        if self._sessions is None:
            raise RuntimeError("the engine is not started; use `async with Engine() as engine`")
        return self._sessions

    async def start(self) -> Engine:
        await self.backend.check(self.image)
        await self.backend.remove_leftovers(self.labels)
        spec = sandbox_spec(self.settings, self.image, self.labels)
        self._sessions = SessionManager(self.backend, self.settings, spec)
        return self

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.close_all()
        await self.backend.close()

    async def __aenter__(self) -> Engine:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def session(self, thread_id: str | None = None) -> Session:
        """The live session of ``thread_id``, created if there is none."""
        return await self.sessions.get_or_create(thread_id)

    def get_session(self, session_id: str) -> Session:
        return self.sessions.get(session_id)


def _default_image(settings: Settings) -> str:
    from .image import default_image_tag

    return default_image_tag(settings)
