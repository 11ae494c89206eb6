"""Run events: what a streaming client of a run is told, each an ``Event`` (name, JSON data).

Listeners are queues; the API turns each event into one server-sent event. Objects are sent whole
(``thread.run.completed``); ``*.delta`` events carry only what is new, because the SDK
accumulates them (strings are concatenated, lists merged by ``index``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..agent.events import Event, Listeners
from .models import CodeOutput, ContentPart, RunStep

__all__ = ["Event", "RunEvents", "code_outputs_delta", "message_delta", "step_delta"]


class RunEvents:
    """The listeners of each run, and the one way to tell them something."""

    def __init__(self) -> None:
        self._listeners: dict[str, Listeners] = {}

    def listen(self, run_id: str, queue: asyncio.Queue[Event]) -> Callable[[], None]:
        self._listeners.setdefault(run_id, Listeners()).listen(queue)
        return lambda: self.unlisten(run_id, queue)

    def unlisten(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        listeners = self._listeners.get(run_id)
        if listeners is None:
            return
        listeners.unlisten(queue)
        if not listeners:
            self._listeners.pop(run_id, None)

    def listening(self, run_id: str) -> bool:
        """Whether anyone streams the run (then the model is asked to stream too)."""
        return bool(self._listeners.get(run_id))

    def emit(self, run_id: str, event: str, obj: BaseModel | dict[str, Any]) -> None:
        listeners = self._listeners.get(run_id)
        if listeners:
            data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
            listeners.tell(Event(event, data))


def step_delta(step: RunStep, index: int, call: dict[str, Any]) -> dict[str, Any]:
    """A ``thread.run.step.delta`` for tool call ``index`` of a tool-calls step."""
    return {
        "id": step.id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [{"index": index, **call}]}},
    }


def code_outputs_delta(outputs: list[CodeOutput]) -> dict[str, Any]:
    """The outputs of a code-interpreter call, as the tool-call part of a step delta."""
    return {
        "type": "code_interpreter",
        "code_interpreter": {
            "outputs": [
                {"index": n, **o.model_dump(mode="json", exclude_none=True)}
                for n, o in enumerate(outputs)
            ]
        },
    }


def message_delta(message_id: str, index: int, part: ContentPart) -> dict[str, Any]:
    """A ``thread.message.delta`` carrying content part ``index`` whole."""
    delta = part.model_dump(mode="json", exclude_none=True)
    if "text" in delta:  # delta annotations carry their index, as OpenAI's do
        delta["text"]["annotations"] = [
            {"index": n, **a} for n, a in enumerate(delta["text"]["annotations"])
        ]
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {"content": [{"index": index, **delta}]},
    }
