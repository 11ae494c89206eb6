"""The connection layer under the app: uvicorn's HTTP/1.1 protocol with a deadline on every
request head, a cap on open connections, and ``accept()`` errors logged once per interval.

Uvicorn has no header-read timeout, so a client that never finishes its request head holds a
descriptor for ever (slow-loris); past the process's open-files limit ``accept()`` fails, and
asyncio logs each failure, thousands a second. ``serve``, the tests' servers and the security
bench all build their server with ``server_config`` and ``EdgeServer``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from ..config import Settings
from ..logs import EveryInterval
from .errors import error_body

log = logging.getLogger("engine.serve")

ACCEPT_ERROR = "socket.accept() out of system resource"
EVICT_AFTER = 1.0
"""Seconds a connection must have waited for its first request head before it can be closed
to make room for a new one over the cap."""


class EdgeConfig(uvicorn.Config):
    """``uvicorn.Config`` plus the two limits the protocol reads."""

    def __init__(
        self, app: Any, *, header_timeout: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(app, http=BoundedH11Protocol, **kwargs)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.refused = EveryInterval(
            log, f"connections over the cap (SANDBOX_MAX_CONNECTIONS={max_connections}) refused"
        )
        self.slow_heads = EveryInterval(
            log,
            f"connections closed for not sending a request head within {header_timeout:g} s "
            "(SANDBOX_HEADER_TIMEOUT)",
        )
        self.accept_errors = EveryInterval(log, "accept() failed (out of descriptors or memory)")
        self.evicted = EveryInterval(
            log,
            "connections that never sent a request head closed to make room for new ones "
            f"(SANDBOX_MAX_CONNECTIONS={max_connections})",
        )
        self.waiting: dict[BoundedH11Protocol, float] = {}
        """Connections waiting for their first request head, oldest first."""


def _over_capacity_response(cap: int) -> bytes:
    body = json.dumps(
        error_body(
            f"the server holds its maximum of {cap} open connections; retry later "
            "(an operator can raise SANDBOX_MAX_CONNECTIONS)",
            "server_error",
            "too_many_connections",
        )
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\nretry-after: 1\r\n\r\n"
    )
    return head.encode() + body


class BoundedH11Protocol(H11Protocol):
    """A deadline runs while the connection waits for a request head: from the connection's
    start, and again after each response; the parsed head disarms it. Over the cap, the
    connection that has waited longest for its first head is closed to make room; when there
    is none, the new one gets a 503 and is closed."""

    config: EdgeConfig

    def __init__(
        self,
        config: EdgeConfig,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        victim, since = next(iter(self.config.waiting.items()), (None, 0.0))
        if (
            len(self.connections) > self.config.max_connections
            and victim is not None
            and self.loop.time() - since >= EVICT_AFTER
        ):
            # Full: the connection that has waited longest for its first head makes room; one
            # younger than EVICT_AFTER may just not have been read yet (a flood in one tick).
            victim._disarm()
            victim.transport.close()
            self.connections.discard(victim)
            self.config.evicted.note()
        elif len(self.connections) > self.config.max_connections:
            self.config.refused.note()
            self.connections.discard(self)
            transport.write(_over_capacity_response(self.config.max_connections))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._timed_cycle:
            self._timed_cycle = self.cycle  # a new request head was parsed
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may parse a pipelined head (handle_events)
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.config.header_timeout, self._head_too_slow)
        if self._timed_cycle is None:  # never sent a head: an idle keep-alive is not evicted
            self.config.waiting[self] = self.loop.time()

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
            self.config.waiting.pop(self, None)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        self.config.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.config.slow_heads.note()
            self.transport.close()


class EdgeServer(uvicorn.Server):
    """``uvicorn.Server`` whose event loop logs ``accept()`` failures once per interval, and
    which tells the app that it stops (``app.state.before_shutdown``) before it drains."""

    config: EdgeConfig

    async def startup(self, sockets: list[Any] | None = None) -> None:
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        accept_errors = self.config.accept_errors

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == ACCEPT_ERROR:
                accept_errors.note(f"last: {context.get('exception')}")
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        self._previous_handler = previous
        loop.set_exception_handler(handler)
        await super().startup(sockets)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        # Uvicorn waits for every open request before the lifespan's shutdown runs, so the app
        # first ends the runs behind open streams: each stream gets its terminal event and closes.
        hook = getattr(getattr(self.config.app, "state", None), "before_shutdown", None)
        if hook is not None:
            await hook()
        try:
            await super().shutdown(sockets)
        finally:
            asyncio.get_running_loop().set_exception_handler(
                getattr(self, "_previous_handler", None)
            )


def raise_open_files_limit() -> int:
    """The soft RLIMIT_NOFILE raised to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
    return soft


def connection_cap(settings: Settings) -> int:
    """``max_connections``, but at most half the open-files limit: the engine's own sockets,
    files and kernels need the rest, and ``accept()`` must never run out."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return settings.max_connections
    cap = max(1, min(settings.max_connections, soft // 2))
    if cap < settings.max_connections:
        log.warning(
            "SANDBOX_MAX_CONNECTIONS=%d is more than half the open-files limit (%d): capping "
            "connections at %d",
            settings.max_connections,
            soft,
            cap,
        )
    return cap


def server_config(app: Any, settings: Settings | None = None, **kwargs: Any) -> EdgeConfig:
    """The uvicorn config ``serve`` runs: ``kwargs`` are uvicorn's own options."""
    settings = settings or Settings()
    return EdgeConfig(
        app,
        header_timeout=settings.header_timeout,
        max_connections=connection_cap(settings),
        **kwargs,
    )
