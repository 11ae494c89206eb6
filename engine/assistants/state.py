"""What runs and threads keep that the API never shows (the repository's ``private`` column)."""

from __future__ import annotations

from pydantic import Field

from ..agent.loop import LoopState
from .models import Obj


class RunState(LoopState):
    """A run's loop state, plus what its prompt and its answer need across pauses."""

    additional_instructions: str | None = None
    images: list[str] = Field(default_factory=list)
    """Image file ids the run's code made, shown at the top of its answer."""


class ThreadState(Obj):
    """Which input files were placed in which session of the thread."""

    session: str | None = None
    placed: list[str] = Field(default_factory=list)
