"""Uvicorn, telling the app that it stops before it waits for the requests in flight.

Uvicorn's graceful shutdown waits for every open request before the lifespan's shutdown runs, so a
stream open on a long response would hold the server up until the response ended by itself. The
app's ``before_shutdown`` hook (``app.state.before_shutdown``) ends the runs behind such streams
first: each stream then gets its terminal event and closes.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Hook = Callable[[], Awaitable[None]]


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self.config.app, "state", None)
        hook: Hook | None = getattr(state, "before_shutdown", None)
        if hook is not None:
            await hook()
        await super().shutdown(sockets)


def serve(app: Any, **config: Any) -> bool:
    """Run ``app`` until a signal stops it, as ``uvicorn.run`` does; whether it started."""
    server = Server(uvicorn.Config(app, **config))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return server.started
