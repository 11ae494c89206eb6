"""The synchronous face over the same async core, for scripts and notebooks.

Like httpx's ``Client`` next to ``AsyncClient``: every public method of ``Engine``, ``Session``,
``SessionManager`` and ``FileStore`` is spelled out here as a blocking method with the same
parameters. The async core runs on an event loop in a background thread (an anyio blocking
portal); each call here waits for its result there.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, Generic, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .config import Settings
from .core import Engine
from .files import FileObject, FileStore, Source
from .kernel import EventCallback
from .paging import Page
from .pool import WarmPool
from .results import DoneEvent, ExecutionResult, OutputEvent
from .sandbox.base import Sandbox, SandboxBackend, SandboxSpec
from .sessions import Session, SessionFile, SessionInfo, SessionManager, SessionStatus
from .store import Store

P = ParamSpec("P")
T = TypeVar("T")


class _Portal:
    """The event loop thread of one SyncEngine, while it is started."""

    def __init__(self) -> None:
        self.portal: BlockingPortal | None = None

    def get(self) -> BlockingPortal:
        if self.portal is None:
            raise RuntimeError(
                "the engine is not started (or already closed); use `with SyncEngine() as engine`"
            )
        return self.portal

    def run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` on the engine's loop and return its result."""
        return self.get().call(functools.partial(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` on the engine's loop: the core's objects are only touched from there."""
        return self.get().call(functools.partial(fn, *args, **kwargs))

    def iterate(self, items: AsyncIterator[T]) -> Generator[T, None, None]:
        """A blocking iterator over ``items``; leaving it early closes ``items`` on the loop."""
        with self.get().wrap_async_context_manager(_Closing(items)) as it:
            while True:
                try:
                    yield self.run(it.__anext__)
                except StopAsyncIteration:
                    return


class _Closing(Generic[T]):
    """Holds an async iterator open across portal calls and closes it at the end."""

    def __init__(self, items: AsyncIterator[T]) -> None:
        self._items = items

    async def __aenter__(self) -> AsyncIterator[T]:
        return self._items

    async def __aexit__(self, *exc: object) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()


class SyncSession:
    """A live kernel in its own sandbox (see ``Session``); every method blocks."""

    def __init__(self, session: Session, portal: _Portal) -> None:
        self._session = session
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._session)

    @property
    def session(self) -> Session:
        """The async session underneath."""
        return self._session

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def thread_id(self) -> str:
        return self._session.thread_id

    @property
    def owner(self) -> str:
        return self._session.owner

    @property
    def status(self) -> SessionStatus:
        return self._session.status

    @property
    def busy(self) -> bool:
        return self._session.busy

    @property
    def info(self) -> SessionInfo:
        return self._session.info

    @property
    def sandbox(self) -> Sandbox:
        """The backend's sandbox: an async object, for low-level use on the engine's loop."""
        return self._session.sandbox

    @property
    def spec(self) -> SandboxSpec:
        return self._session.spec

    @property
    def deadline(self) -> int:
        """The hard deadline, in seconds since the epoch."""
        return self._session.deadline

    @property
    def last_active(self) -> float:
        return self._session.last_active

    @property
    def idle_expired(self) -> bool:
        return self._session.idle_expired

    def wait_idle(self) -> None:
        """Return once every execution queued so far has finished."""
        self._portal.run(self._session.wait_idle)

    def touch(self) -> None:
        """Any activity resets the idle timeout."""
        self._portal.run_sync(self._session.touch)

    def keepalive(self) -> SessionInfo:
        return self._portal.run_sync(self._session.keepalive)

    def extend(self, seconds: int) -> SessionInfo:
        """Push the hard deadline out by ``seconds`` (and count as activity)."""
        return self._portal.run_sync(self._session.extend, seconds)

    def start(self, file_ids: Iterable[str] = ()) -> None:
        self._portal.run(self._session.start, file_ids)

    def execute(
        self,
        code: str,
        timeout: float | None = None,
        on_event: EventCallback | None = None,
        *,
        queue_timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; ``on_event`` receives stdout, stderr, display, result and error live
        (called on the engine's thread).

        Waits its turn behind earlier executions; ``queue_timeout`` bounds that wait.
        """
        return self._portal.run(
            self._session.execute, code, timeout, on_event, queue_timeout=queue_timeout
        )

    def stream(
        self, code: str, timeout: float | None = None
    ) -> Generator[OutputEvent | DoneEvent, None, None]:
        """Yield output events while ``code`` runs, then one DoneEvent with the result.

        Closing the iterator early interrupts the execution.
        """
        return self._portal.iterate(self._session.stream(code, timeout))

    def interrupt(self) -> None:
        self._portal.run(self._session.interrupt)

    def restart(self) -> None:
        """A fresh kernel: variables go, files in /mnt/data stay."""
        self._portal.run(self._session.restart)

    def upload(self, name: str, data: Source) -> SessionFile:
        """Place raw bytes at /mnt/data/<name>; they also become a file object."""
        return self._portal.run(self._session.upload, name, data)

    def add_file(self, file_id: str, name: str | None = None) -> SessionFile:
        """Place an existing file object at /mnt/data/<name> (its own filename by default)."""
        return self._portal.run(self._session.add_file, file_id, name)

    def list_files(self) -> list[SessionFile]:
        return self._portal.run(self._session.list_files)

    def open_file(self, path: str) -> IO[bytes]:
        """Open /mnt/data/<path> for reading; symlinks and special files are refused."""
        return self._portal.run(self._session.open_file, path)

    def read_file(self, path: str) -> bytes:
        return self._portal.run(self._session.read_file, path)

    def remove_file(self, path: str) -> None:
        self._portal.run(self._session.remove_file, path)

    def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        """End the session and remove its sandbox. Its thread gets a new session next time."""
        self._portal.run(self._session.close, status)


class SyncSessions:
    """Every live session of the engine (see ``SessionManager``); every method blocks.

    The manager's own lifecycle (``start``, ``recover``, ``close_all``) is run by
    ``SyncEngine.start`` and ``SyncEngine.close``.
    """

    def __init__(self, manager: SessionManager, portal: _Portal) -> None:
        self._manager = manager
        self._portal = portal

    def __len__(self) -> int:
        return len(self._manager)

    def _wrap(self, session: Session) -> SyncSession:
        return SyncSession(session, self._portal)

    def get_or_create(
        self,
        thread_id: str | None = None,
        *,
        owner: str = "",
        file_ids: Iterable[str] = (),
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
    ) -> SyncSession:
        session = self._portal.run(
            self._manager.get_or_create,
            thread_id,
            owner=owner,
            file_ids=file_ids,
            idle_timeout=idle_timeout,
            ttl=ttl,
            memory_limit_mb=memory_limit_mb,
        )
        return self._wrap(session)

    def get(self, session_id: str, owner: str | None = None) -> SyncSession:
        """A live session. Closed or expired ones raise SessionClosed; unknown ones NotFound."""
        return self._wrap(self._portal.run_sync(self._manager.get, session_id, owner))

    def by_thread(self, thread_id: str, owner: str = "") -> SyncSession | None:
        """The live session of a thread, if there is one."""
        session = self._portal.run_sync(self._manager.by_thread, thread_id, owner)
        return None if session is None else self._wrap(session)

    def info(self, session_id: str, owner: str | None = None) -> SessionInfo:
        return self._portal.run_sync(self._manager.info, session_id, owner)

    def list(
        self,
        owner: str | None = None,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        live_only: bool = False,
    ) -> Page[SessionInfo]:
        return self._portal.run_sync(
            self._manager.list,
            owner,
            limit=limit,
            order=order,
            after=after,
            before=before,
            live_only=live_only,
        )

    def live(self) -> builtins.list[SyncSession]:
        return [self._wrap(s) for s in self._portal.run_sync(self._manager.live)]

    def close(
        self,
        session_id: str,
        owner: str | None = None,
        status: SessionStatus = SessionStatus.CLOSED,
    ) -> None:
        self._portal.run(self._manager.close, session_id, owner, status)

    def reap(self) -> int:
        """End every session whose time is up. Returns how many ended."""
        return self._portal.run(self._manager.reap)


class SyncFiles:
    """File objects (see ``FileStore``); every method blocks."""

    def __init__(self, files: FileStore, portal: _Portal) -> None:
        self._files = files
        self._portal = portal

    @property
    def root(self) -> Path:
        return self._files.root

    @property
    def max_bytes(self) -> int:
        return self._files.max_bytes

    def sweep(self) -> int:
        """Remove temp files and blobs with no row. Returns how many were removed."""
        return self._portal.run_sync(self._files.sweep)

    def blob_path(self, file_id: str) -> Path:
        return self._files.blob_path(file_id)

    def create(
        self,
        data: Source,
        filename: str | None = None,
        purpose: str = "assistants",
        *,
        owner: str = "",
        session_id: str | None = None,
        path: str | None = None,
        mime_type: str | None = None,
    ) -> FileObject:
        return self._portal.run(
            self._files.create,
            data,
            filename,
            purpose,
            owner=owner,
            session_id=session_id,
            path=path,
            mime_type=mime_type,
        )

    def retrieve(self, file_id: str, owner: str | None = None) -> FileObject:
        return self._portal.run_sync(self._files.retrieve, file_id, owner)

    def list(
        self,
        owner: str | None = None,
        *,
        purpose: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[FileObject]:
        return self._portal.run_sync(
            self._files.list,
            owner,
            purpose=purpose,
            limit=limit,
            order=order,
            after=after,
            before=before,
        )

    def iter_content(self, file_id: str, owner: str | None = None) -> Generator[bytes, None, None]:
        """The file's bytes, streamed in chunks. Unknown ids raise here, not mid-stream."""
        chunks = self._portal.run_sync(self._files.iter_content, file_id, owner)
        return self._portal.iterate(chunks)

    def content(self, file_id: str, owner: str | None = None) -> bytes:
        """The file's bytes, whole."""
        return self._portal.run(self._files.content, file_id, owner)

    def delete(self, file_id: str, owner: str | None = None) -> None:
        self._portal.run_sync(self._files.delete, file_id, owner)


class SyncEngine:
    """``with SyncEngine() as engine: engine.session("t1").execute("1 + 1")``."""

    def __init__(
        self, settings: Settings | None = None, *, backend: SandboxBackend | None = None
    ) -> None:
        self._engine = Engine(settings, backend=backend)
        self._portal = _Portal()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._files = SyncFiles(self._engine.files, self._portal)

    def __repr__(self) -> str:
        state = "started" if self._portal.portal is not None else "not started"
        return f"<SyncEngine {self._engine.settings.data_dir} {state}>"

    @property
    def engine(self) -> Engine:
        """The async engine underneath."""
        return self._engine

    @property
    def settings(self) -> Settings:
        return self._engine.settings

    @property
    def backend(self) -> SandboxBackend:
        """The sandbox backend: an async object, for low-level use on the engine's loop."""
        return self._engine.backend

    @property
    def labels(self) -> dict[str, str]:
        return self._engine.labels

    @property
    def image(self) -> str:
        return self._engine.image

    @property
    def store(self) -> Store:
        return self._engine.store

    @property
    def pool(self) -> WarmPool | None:
        """The warm pool, if there is one: an async object, for use on the engine's loop."""
        return self._engine.pool

    @property
    def files(self) -> SyncFiles:
        return self._files

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
        *,
        file_ids: Iterable[str] = (),
        owner: str = "",
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
    ) -> SyncSession:
        """The live session of ``thread_id``, created if there is none.

        ``file_ids`` are placed under /mnt/data; ``idle_timeout`` and ``ttl`` (seconds) and
        ``memory_limit_mb`` override the engine's defaults for a new session.
        """
        session = self._portal.run(
            self._engine.session,
            thread_id,
            file_ids=file_ids,
            owner=owner,
            idle_timeout=idle_timeout,
            ttl=ttl,
            memory_limit_mb=memory_limit_mb,
        )
        return SyncSession(session, self._portal)

    def get_session(self, session_id: str, owner: str | None = None) -> SyncSession:
        return SyncSession(
            self._portal.run_sync(self._engine.get_session, session_id, owner), self._portal
        )
