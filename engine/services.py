"""The library's entry point: ``async with Engine() as engine``.

Transitional: ``Engine`` is the runtime for now; it becomes the typed container of every service
(sessions, files, vector stores, Assistants, Responses), built in one step outside HTTP.
"""

from __future__ import annotations

from .runtime import Runtime


class Engine(Runtime):
    """Async face: ``async with Engine() as engine: session = await engine.session("t1")``."""
