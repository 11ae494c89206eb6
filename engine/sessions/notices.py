"""What the next execution result of a session says happened in between: the engine restarted
under it, or it went on in a new sandbox and lost its state."""

from __future__ import annotations

from ..results import ExecutionResult
from .models import SessionInfo


class Notices:
    """A session's pending notice (shown in its info until a result carries it) and whether
    its state was lost since the last result."""

    def __init__(self, info: SessionInfo) -> None:
        self._info = info
        self._state_lost = False

    def add(self, text: str, *, state_lost: bool = False) -> None:
        notice = self._info.notice
        self._info.notice = text if not notice else f"{notice}. {text[0].upper()}{text[1:]}"
        self._state_lost = self._state_lost or state_lost

    def deliver(self, result: ExecutionResult) -> None:
        """Put what is pending on ``result``, once."""
        if self._info.notice is not None:
            result.notice, self._info.notice = self._info.notice, None
        if self._state_lost:
            result.state_lost, self._state_lost = True, False
