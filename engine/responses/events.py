"""A response's stream: numbered events to its listeners.

Every event carries a ``sequence_number`` that increases by one, from 0; the API sends each one
as a server-sent event named by its ``type``, as OpenAI does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

Event = dict[str, Any]
TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}
)


class ResponseEvents:
    """The listeners of one response, and the one way to tell them something."""

    def __init__(self) -> None:
        self.sequence = 0
        self._listeners: list[asyncio.Queue[Event]] = []

    def listen(self, queue: asyncio.Queue[Event]) -> None:
        self._listeners.append(queue)

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(queue)

    def emit(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        for queue in self._listeners:
            queue.put_nowait(event)
        return event
