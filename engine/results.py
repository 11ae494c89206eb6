"""What an execution produces: live output events and the final ExecutionResult."""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

MimeBundle = dict[str, Any]


class ExecutionStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    """The session was closed, or the caller went away, while it ran: the output so far."""


class ErrorInfo(BaseModel):
    name: str
    value: str
    traceback: list[str] = Field(default_factory=list)


class StreamEvent(BaseModel):
    type: Literal["stdout", "stderr"]
    text: str


class DisplayEvent(BaseModel):
    type: Literal["display"] = "display"
    data: MimeBundle
    metadata: dict[str, Any] = Field(default_factory=dict)


class ResultEvent(BaseModel):
    type: Literal["result"] = "result"
    data: MimeBundle
    execution_count: int | None = None


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    error: ErrorInfo


OutputEvent = Annotated[
    StreamEvent | DisplayEvent | ResultEvent | ErrorEvent, Field(discriminator="type")
]


class OutputFile(BaseModel):
    """A file object the execution produced: an image from display data, or a file it wrote."""

    type: Literal["image", "file"]
    file_id: str
    filename: str
    mime_type: str
    bytes: int
    path: str | None = None
    """For files: where the code wrote it, e.g. ``/mnt/data/chart.png``."""

    @property
    def sandbox_path(self) -> str | None:
        """The link form models write in answers: ``sandbox:/mnt/data/chart.png``."""
        return None if self.path is None else f"sandbox:{self.path}"


class ExecutionResult(BaseModel):
    status: ExecutionStatus
    stdout: str = ""
    stderr: str = ""
    result: MimeBundle | None = None
    """The execute_result bundle: the value of the cell's last expression."""
    display: list[MimeBundle] = Field(default_factory=list)
    error: ErrorInfo | None = None
    execution_count: int | None = None
    duration_ms: float = 0.0
    outputs: list[OutputFile] = Field(default_factory=list)
    """Images and files this execution produced, each already a file object."""
    state_lost: bool = False
    """True when the kernel was restarted: variables and imports are gone."""
    dropped: dict[str, int] = Field(default_factory=dict)
    """What the caps left out: characters per stream, display outputs, output files."""
    notice: str | None = None
    """What happened to the session since its previous execution: the engine restarted while
    one ran (it was interrupted, never re-run), or the session moved to a fresh sandbox."""

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.OK

    @property
    def text(self) -> str | None:
        """The plain-text value of the last expression, if any."""
        return None if self.result is None else self.result.get("text/plain")


class DoneEvent(BaseModel):
    """The last item of a streamed execution."""

    type: Literal["done"] = "done"
    result: ExecutionResult


class CappedText:
    """Keeps the head and the tail of a stream once it outgrows ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        if self._head_len < self._half:
            take = text[: self._half - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            text = text[len(take) :]
        if not text:
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > self._half:
            excess = self._tail_len - self._half
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                self._tail_len -= len(first)
                self.dropped += len(first)
            else:
                self._tail[0] = first[excess:]
                self._tail_len -= excess
                self.dropped += excess

    def getvalue(self) -> str:
        head = "".join(self._head)
        tail = "".join(self._tail)
        if self.dropped:
            return f"{head}\n[... {self.dropped} characters dropped ...]\n{tail}"
        return head + tail
