"""One execution's output: iopub messages become live events and the result's fields, capped."""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..config import MB
from ..results import (
    CappedText,
    DisplayEvent,
    ErrorEvent,
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    OutputEvent,
    ResultEvent,
    StreamEvent,
)

EventCallback = Callable[[OutputEvent], Awaitable[None] | None]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LIVE_ERRORS = 10
"""Error events sent live per execution; the result keeps the last error."""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class KernelLimits:
    start_timeout: float = 60.0
    interrupt_grace: float = 1.0
    output_limit_chars: int = 1_000_000
    max_display_outputs: int = 100
    max_display_bytes: int = 32 * MB
    memory_limit_mb: int = 1024
    max_message_bytes: int = 64 * MB
    """The largest message the engine accepts from the kernel (all frames together)."""
    receive_budget_bytes: int = 256 * MB
    """What all kernels' large messages may hold at once while they are received and decoded."""


class Collector:
    """Turns one execution's iopub messages into events and the result's fields."""

    def __init__(self, limits: KernelLimits, on_event: EventCallback | None) -> None:
        self.stdout = CappedText(limits.output_limit_chars)
        self.stderr = CappedText(limits.output_limit_chars)
        self.display: list[dict[str, Any]] = []
        self.dropped_displays = 0
        self.dropped_result = 0
        self.dropped_error = 0
        self.max_displays = limits.max_display_outputs
        self.display_budget = limits.max_display_bytes
        self.text_limit = limits.output_limit_chars
        self.result: dict[str, Any] | None = None
        self.error: ErrorInfo | None = None
        self.execution_count: int | None = None
        self._on_event = on_event
        self.ran = False
        """Whether the kernel said it started the code (execute_input)."""
        self.heard = False
        """Whether the kernel said anything about this execution (a busy status, at least)."""
        # Live events stop where the result's caps do: a flood must not queue up for a client.
        self._live = {"stdout": self.text_limit, "stderr": self.text_limit}
        self._live_errors = LIVE_ERRORS

    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = _bundle(msg["content"])
        event: OutputEvent | None = None
        if kind == "stream":
            text = str(content.get("text", ""))
            name: Literal["stdout", "stderr"] = (
                "stderr" if content.get("name") == "stderr" else "stdout"
            )
            (self.stderr if name == "stderr" else self.stdout).write(text)
            live = text[: self._live[name]]
            self._live[name] -= len(live)
            if live and self._on_event is not None:
                event = StreamEvent(type=name, text=live)
        elif kind in ("display_data", "update_display_data"):
            data = _bundle(content.get("data"))
            if len(self.display) >= self.max_displays or not self._fits(data):
                self.dropped_displays += 1
                return
            self.display.append(data)
            event = DisplayEvent(data=data, metadata=_bundle(content.get("metadata")))
        elif kind == "execute_result":
            data = _bundle(content.get("data"))
            if not self._fits(data):
                text = self._capped(str(data.get("text/plain", "")))
                self.dropped_result = _bundle_size(data) - len(text)
                data = {"text/plain": text}
            self.result = data
            self.execution_count = _count(content, self.execution_count)
            event = ResultEvent(data=self.result or {}, execution_count=self.execution_count)
        elif kind == "execute_input":
            self.ran = True
            self.execution_count = _count(content, None)
        elif kind == "error":
            self.error = self._error(content)
            if self._live_errors > 0:
                self._live_errors -= 1
                event = ErrorEvent(error=self.error)
        if event is not None and self._on_event is not None:
            ret = self._on_event(event)
            if inspect.isawaitable(ret):
                await ret

    def _fits(self, data: dict[str, Any]) -> bool:
        """Charge a bundle to the execution's display budget, if it fits."""
        size = _bundle_size(data)
        if size > self.display_budget:
            return False
        self.display_budget -= size
        return True

    def _capped(self, text: str) -> str:
        capped = CappedText(self.text_limit)
        capped.write(text)
        return capped.getvalue()

    def _error(self, content: dict[str, Any]) -> ErrorInfo:
        """An error whose value or traceback could be as big as the sandbox's memory: capped."""
        value = str(content.get("evalue", ""))
        lines = content.get("traceback", [])
        # One string per line: a traceback that is one big string must not become its characters.
        traceback = [str(line) for line in lines] if isinstance(lines, list) else [str(lines)]
        size = len(value) + sum(map(len, traceback))
        if len(value) > self.text_limit:
            value = self._capped(value)
        if sum(map(len, traceback)) > self.text_limit:
            traceback = [self._capped("\n".join(traceback))]
        self.dropped_error = max(0, size - len(value) - sum(map(len, traceback)))
        return ErrorInfo(
            name=str(content.get("ename", ""))[:200],
            value=value,
            traceback=[strip_ansi(line) for line in traceback],
        )

    def finish(
        self, status: ExecutionStatus, started: float, *, state_lost: bool = False
    ) -> ExecutionResult:
        dropped = {
            name: n
            for name, n in (
                ("stdout", self.stdout.dropped),
                ("stderr", self.stderr.dropped),
                ("display", self.dropped_displays),
                ("result", self.dropped_result),
                ("error", self.dropped_error),
            )
            if n
        }
        return ExecutionResult(
            status=status,
            stdout=self.stdout.getvalue(),
            stderr=self.stderr.getvalue(),
            result=self.result,
            display=self.display,
            error=self.error,
            execution_count=self.execution_count,
            duration_ms=(time.perf_counter() - started) * 1000,
            state_lost=state_lost,
            dropped=dropped,
        )


def _bundle(value: object) -> dict[str, Any]:
    """The kernel is untrusted: a MIME bundle that is not a mapping counts as empty."""
    return value if isinstance(value, dict) else {}


def _count(content: dict[str, Any], default: int | None) -> int | None:
    value = content.get("execution_count", default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bundle_size(data: dict[str, Any]) -> int:
    """Characters in a MIME bundle (base64 for images, JSON for structured types)."""
    return sum(
        len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in data.values()
    )
