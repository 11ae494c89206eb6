"""The synchronous face over the same async core, for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .config import Settings
from .core import Engine
from .kernel import EventCallback
from .results import DoneEvent, ExecutionResult, OutputEvent
from .sessions import Session


class SyncSession:
    def __init__(self, session: Session, portal: BlockingPortal) -> None:
        self._session = session
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __repr__(self) -> str:
        return repr(self._session)

    def execute(
        self, code: str, timeout: float | None = None, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        return self._portal.call(self._session.execute, code, timeout, on_event)

    def stream(self, code: str, timeout: float | None = None) -> Iterator[OutputEvent | DoneEvent]:
        with self._portal.wrap_async_context_manager(_aiter_cm(self._session, code, timeout)) as it:
            while True:
                try:
                    yield self._portal.call(it.__anext__)
                except StopAsyncIteration:
                    return

    def interrupt(self) -> None:
        self._portal.call(self._session.interrupt)

    def restart(self) -> None:
        self._portal.call(self._session.restart)

    def close(self) -> None:
        self._portal.call(self._session.close)


class SyncEngine:
    """``with SyncEngine() as engine: engine.session("t1").execute("1 + 1")``."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._engine = Engine(settings)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def start(self) -> SyncEngine:
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._portal.call(self._engine.start)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._portal is not None and self._portal_cm is not None:
            try:
                self._portal.call(self._engine.close)
            finally:
                self._portal_cm.__exit__(None, None, None)
                self._portal = self._portal_cm = None

    def __enter__(self) -> SyncEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._portal is None:
            raise RuntimeError("the engine is not started; use `with SyncEngine() as engine`")
        return self._portal.call(fn, *args)

    def session(self, thread_id: str | None = None) -> SyncSession:
        session = self._call(self._engine.session, thread_id)
        assert self._portal is not None
        return SyncSession(session, self._portal)


class _aiter_cm:
    """Holds a session's event stream open across blocking-portal calls."""

    def __init__(self, session: Session, code: str, timeout: float | None) -> None:
        self._gen = session.stream(code, timeout)

    async def __aenter__(self) -> Any:
        return self._gen

    async def __aexit__(self, *exc: object) -> None:
        await self._gen.aclose()
