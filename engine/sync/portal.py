"""The background event loop that every blocking call of the sync face waits on."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Generic, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal

P = ParamSpec("P")
T = TypeVar("T")


class Portal:
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
        with self.get().wrap_async_context_manager(Closing(items)) as it:
            while True:
                try:
                    yield self.run(it.__anext__)
                except StopAsyncIteration:
                    return


class Closing(Generic[T]):
    """Holds an async iterator open across portal calls and closes it at the end."""

    def __init__(self, items: AsyncIterator[T]) -> None:
        self._items = items

    async def __aenter__(self) -> AsyncIterator[T]:
        return self._items

    async def __aexit__(self, *exc: object) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()
