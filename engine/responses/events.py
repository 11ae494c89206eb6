"""A response's stream: numbered events to its listeners.

Every event carries a ``sequence_number`` that increases by one, from 0; the API sends each one
as a server-sent event named by its ``type``, as OpenAI does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..agent.events import Event, Listeners

__all__ = ["TERMINAL_EVENTS", "Event", "ResponseEvents"]

TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}
)


class ResponseEvents:
    """The listeners of one response, and the one way to tell them something."""

    def __init__(self) -> None:
        self.sequence = 0
        self._listeners = Listeners()

    def listen(self, queue: asyncio.Queue[Event]) -> None:
        self._listeners.listen(queue)

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        self._listeners.unlisten(queue)

    def emit(self, type_: str, **fields: Any) -> Event:
        event = Event(type_, {"type": type_, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        self._listeners.tell(event)
        return event
