"""The typed container of the services: ``async with Engine() as engine``.

The library, ``sandbox-engine serve`` and stdio MCP build it the same way, outside HTTP:
``Engine(settings)``. It holds the runtime (sandboxes, the store, files, sessions) and the
services (file search over vector stores, the model provider, the Assistants and Responses
services), built together in one step, each given what it needs in its constructor: on first
use (the server uses them at start), so that an engine that never does pays nothing for them.
``start()`` starts the runtime, then the services; ``close()`` closes them in reverse.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self, Unpack

from .config import Settings
from .files import FileStore
from .lease import Lease
from .pool import WarmPool
from .runtime import Runtime, RuntimeOptions
from .sandbox.base import SandboxBackend
from .sessions import Session, SessionManager, SessionOptions
from .store import Store

if TYPE_CHECKING:
    from .agent import OpenAIChatProvider
    from .faces import AssistantsFace, Conversations, Responses, Threads, VectorStoresFace
    from .retrieval import FileSearch


class Services:
    """File search, the model provider, and the Assistants and Responses services over one
    runtime, each given what it needs in its constructor, behind the library's faces."""

    def __init__(self, runtime: Runtime, *, quiet: bool = False) -> None:
        # Imported here: `import engine` and an engine that never uses them skip their cost
        # (the openai SDK, numpy, the embedded model's checksum).
        from .agent import OpenAIChatProvider
        from .assistants import AssistantsService
        from .faces import AssistantsFace, Conversations, Responses, Threads, VectorStoresFace
        from .responses import ResponsesService
        from .retrieval import FileSearch

        settings = runtime.settings
        self.file_search = FileSearch(runtime, settings, quiet=quiet)
        self.provider = OpenAIChatProvider(settings.llm_base_url, settings.llm_api_key)
        stores = self.file_search.stores
        assistants = AssistantsService(runtime, self.provider, settings, stores)
        responses = ResponsesService(runtime, self.provider, settings, stores)
        self.responses = Responses(responses)
        self.conversations = Conversations(responses)
        self.vector_stores = VectorStoresFace(stores)
        self.assistants = AssistantsFace(assistants)
        self.threads = Threads(assistants)

    def start(self, primary: bool) -> None:
        """Only the data folder's primary recovers what an earlier process left: runs and
        responses it was driving fail, saying so, and files it was ingesting are ingested
        again (a guest leaves a running server's work alone)."""
        self.file_search.start(primary)
        if primary:
            self.assistants.service.recover()
            self.responses.service.recover()

    async def close(self) -> None:
        """Running runs and responses fail, saying the engine stopped; then file search."""
        await self.assistants.service.close()
        await self.responses.service.close()
        await self.file_search.close()


class Engine:
    """Async face: ``async with Engine() as engine: session = await engine.session("t1")``,
    ``await engine.responses.create(...)``, ``engine.conversations``, ``engine.vector_stores``,
    ``engine.assistants``, ``engine.threads``."""

    def __init__(
        self,
        settings: Settings | None = None,
        **options: Unpack[RuntimeOptions],
    ) -> None:
        """``options``: see ``RuntimeOptions``."""
        self.runtime = Runtime(settings, **options)
        self._guest = options.get("guest", False)
        self._services: Services | None = None
        self._started = False

    # --- the services ---

    def services(self) -> Services:
        """The services, built (and, once the engine runs, started) on first use, so that an
        engine that never uses them (``run``, ``doctor``, sessions only) pays nothing for them.
        The server asks for them at start, to recover what an earlier process left."""
        if self._services is None:
            self._services = Services(self.runtime, quiet=self._guest)
            if self._started:
                self._services.start(self.runtime.primary)
        return self._services

    @property
    def file_search(self) -> FileSearch:
        return self.services().file_search

    @property
    def provider(self) -> OpenAIChatProvider:
        """The model provider of responses and runs (``SANDBOX_LLM_BASE_URL``)."""
        return self.services().provider

    @property
    def responses(self) -> Responses:
        return self.services().responses

    @property
    def conversations(self) -> Conversations:
        return self.services().conversations

    @property
    def vector_stores(self) -> VectorStoresFace:
        return self.services().vector_stores

    @property
    def assistants(self) -> AssistantsFace:
        return self.services().assistants

    @property
    def threads(self) -> Threads:
        return self.services().threads

    # --- the runtime, as library users reach it ---

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def backend(self) -> SandboxBackend:
        return self.runtime.backend

    @property
    def labels(self) -> dict[str, str]:
        return self.runtime.labels

    @property
    def lease(self) -> Lease | None:
        return self.runtime.lease

    @property
    def primary(self) -> bool:
        """Whether this engine owns the data folder (its sessions can outlive it)."""
        return self.runtime.primary

    @property
    def image(self) -> str:
        return self.runtime.image

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def files(self) -> FileStore:
        return self.runtime.files

    @property
    def pool(self) -> WarmPool | None:
        return self.runtime.pool

    @property
    def sessions(self) -> SessionManager:
        return self.runtime.sessions

    # --- lifecycle ---

    async def start(self) -> Self:
        """The runtime, then the services if they are built already."""
        try:
            await self.runtime.start()  # closes itself if it fails
        except BaseException:
            if self._services is not None:
                await self._services.close()
            raise
        self._started = True
        if self._services is not None:
            try:
                self._services.start(self.runtime.primary)
            except BaseException:
                await self.close()
                raise
        return self

    async def close(self) -> None:
        """The services, then the runtime."""
        try:
            if self._services is not None:
                await self._services.close()
        finally:
            self._started = False
            await self.runtime.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- sessions ---

    async def session(
        self,
        thread_id: str | None = None,
        **options: Unpack[SessionOptions],
    ) -> Session:
        """The live session of ``thread_id``, created if there is none, with ``options``
        (``SessionOptions``) if it is new."""
        return await self.runtime.session(thread_id, **options)

    def get_session(self, session_id: str, owner: str | None = None) -> Session:
        return self.runtime.get_session(session_id, owner)
