"""The typed container of the services: ``async with Engine() as engine``.

The library, ``sandbox-engine serve`` and stdio MCP build it the same way, outside HTTP:
``Engine(settings)``. It holds the runtime (sandboxes, the store, files, sessions) and the
services (file search over vector stores, the model provider, the Assistants and Responses
services), built together in one step, each given what it needs in its constructor: on first
use (the server uses them at start), so that an engine that never does pays nothing for them.
``start()`` starts the runtime, then the services; ``close()`` closes them in reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, Unpack

from .config import Settings
from .delegation import through
from .files import FileStore
from .lease import Lease
from .pool import WarmPool
from .runtime import Runtime, RuntimeOptions, SessionHost
from .sandbox.base import SandboxBackend
from .sessions import Session, SessionManager
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


class Engine(SessionHost[Session]):
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
    def _built(self) -> Services:
        return self.services()

    file_search: through[FileSearch] = through("_built.file_search")
    provider: through[OpenAIChatProvider] = through(
        "_built.provider", "The model provider of responses and runs (``SANDBOX_LLM_BASE_URL``)."
    )
    responses: through[Responses] = through("_built.responses")
    conversations: through[Conversations] = through("_built.conversations")
    vector_stores: through[VectorStoresFace] = through("_built.vector_stores")
    assistants: through[AssistantsFace] = through("_built.assistants")
    threads: through[Threads] = through("_built.threads")

    # --- the runtime, as library users reach it ---

    settings: through[Settings] = through("runtime.settings")
    backend: through[SandboxBackend] = through("runtime.backend")
    labels: through[dict[str, str]] = through("runtime.labels")
    lease: through[Lease | None] = through("runtime.lease")
    primary: through[bool] = through(
        "runtime.primary", "Whether this engine owns the data folder (its sessions can outlive it)."
    )
    image: through[str] = through("runtime.image")
    store: through[Store] = through("runtime.store")
    files: through[FileStore] = through("runtime.files")
    pool: through[WarmPool | None] = through("runtime.pool")
    sessions: through[SessionManager] = through("runtime.sessions")

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
