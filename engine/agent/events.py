"""The one shape of an event to a streaming client, and the queues that listen to one stream.

Both faces stream through it: an Assistants run (``thread.run.created``, ...) and a response
(``response.created``, ...). The API sends each event as one server-sent event, named ``name``,
with ``data`` as its JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, NamedTuple


class Event(NamedTuple):
    name: str
    data: dict[str, Any]


class Listeners:
    """The queues listening to one stream, and the one way to tell them an event."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Event]] = []

    def listen(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.append(queue)

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def __bool__(self) -> bool:
        return bool(self._queues)

    def tell(self, event: Event) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
