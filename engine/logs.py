"""Structured logs: one JSON object per line, request ids included; and throttled warnings
for events that can come in floods."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class EveryInterval:
    """Logs the first event at once, then at most one line per interval with the count: for
    events that something hostile can repeat without end (a kernel's junk, failed accepts)."""

    def __init__(self, log: logging.Logger, message: str, interval: float = 10.0) -> None:
        self.log = log
        self.message = message
        self.interval = interval
        self.count = 0
        self.total = 0
        self._last = -interval

    def note(self, detail: str = "") -> None:
        self.count += 1
        self.total += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            suffix = f" ({detail})" if detail else ""
            self.log.warning(
                "%s: %d since the last such line (at most one per %.0f s)%s",
                self.message,
                self.count,
                self.interval,
                suffix,
            )
            self.count = 0
            self._last = now
