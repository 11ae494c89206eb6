"""SyncEngine: the blocking face of Engine."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Unpack

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import Settings
from ..delegation import through
from ..lease import Lease
from ..pool import WarmPool
from ..runtime import Runtime, RuntimeOptions
from ..sandbox.base import SandboxBackend
from ..services import Engine, Services
from ..sessions import SessionOptions
from ..store import Store
from .files import SyncFiles
from .portal import Portal
from .session import SyncSession, SyncSessions

if TYPE_CHECKING:
    from ..agent import OpenAIChatProvider
    from ..retrieval import FileSearch
    from .faces import (
        SyncAssistants,
        SyncConversations,
        SyncResponses,
        SyncServices,
        SyncThreads,
        SyncVectorStores,
    )


class SyncEngine:
    """``with SyncEngine() as engine: engine.session("t1").execute("1 + 1")``."""

    def __init__(
        self,
        settings: Settings | None = None,
        **options: Unpack[RuntimeOptions],
    ) -> None:
        """``options``: see ``RuntimeOptions``."""
        self._engine = Engine(settings, **options)
        self._portal = Portal()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._files = SyncFiles(self._engine.files, self._portal)

    def __repr__(self) -> str:
        state = "started" if self._portal.portal is not None else "not started"
        return f"<SyncEngine {self._engine.settings.data_dir} {state}>"

    engine: through[Engine] = through("_engine", "The async engine underneath.")
    runtime: through[Runtime] = through(
        "_engine.runtime",
        "The runtime underneath: an async object, for low-level use on the engine's loop.",
    )

    def services(self) -> Services:
        """The services (async objects, for use on the engine's loop), built on first use."""
        return self._portal.run_sync(self._engine.services)

    @property
    def _twins(self) -> SyncServices:
        from .faces import SyncServices  # with the faces, on first use

        return SyncServices(self.services(), self._portal)

    file_search: through[FileSearch] = through(
        "_twins.file_search",
        "File search (vector stores, ingestion): an async object, for the engine's loop.",
    )
    provider: through[OpenAIChatProvider] = through(
        "_twins.provider", "The model provider of responses and runs (``SANDBOX_LLM_BASE_URL``)."
    )
    responses: through[SyncResponses] = through("_twins.responses")
    conversations: through[SyncConversations] = through("_twins.conversations")
    vector_stores: through[SyncVectorStores] = through("_twins.vector_stores")
    assistants: through[SyncAssistants] = through("_twins.assistants")
    threads: through[SyncThreads] = through("_twins.threads")
    settings: through[Settings] = through("_engine.settings")
    backend: through[SandboxBackend] = through(
        "_engine.backend",
        "The sandbox backend: an async object, for low-level use on the engine's loop.",
    )
    labels: through[dict[str, str]] = through("_engine.labels")
    lease: through[Lease | None] = through("_engine.lease")
    primary: through[bool] = through("_engine.primary")
    image: through[str] = through("_engine.image")
    store: through[Store] = through("_engine.store")
    pool: through[WarmPool | None] = through(
        "_engine.pool",
        "The warm pool, if there is one: an async object, for use on the engine's loop.",
    )
    files: through[SyncFiles] = through("_files")

    @property
    def sessions(self) -> SyncSessions:
        self._portal.get()
        return SyncSessions(self._engine.sessions, self._portal)

    def start(self) -> SyncEngine:
        self._portal_cm = start_blocking_portal()
        self._portal.portal = self._portal_cm.__enter__()
        try:
            self._portal.run(self._engine.start)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        portal_cm = self._portal_cm
        if self._portal.portal is not None and portal_cm is not None:
            try:
                self._portal.run(self._engine.close)
            finally:
                portal_cm.__exit__(None, None, None)
                self._portal.portal = self._portal_cm = None

    def __enter__(self) -> SyncEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def session(
        self,
        thread_id: str | None = None,
        **options: Unpack[SessionOptions],
    ) -> SyncSession:
        """The live session of ``thread_id``, created if there is none, with ``options``
        (``SessionOptions``) if it is new."""
        return SyncSession(
            self._portal.run(self._engine.session, thread_id, **options), self._portal
        )

    def get_session(self, session_id: str, owner: str | None = None) -> SyncSession:
        return SyncSession(
            self._portal.run_sync(self._engine.get_session, session_id, owner), self._portal
        )
