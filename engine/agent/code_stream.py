"""The code of a code-interpreter call, decoded from its JSON arguments as the model streams
them, and the tool call being streamed that it belongs to.

Both faces that stream code as it is written use it: Responses
(``code_interpreter_call_code.delta``) and Assistants runs (``thread.run.step.delta`` with the
call's ``input``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_CODE_KEY = re.compile(r'"code"\s*:\s*"')
T = TypeVar("T")


class CodeDecoder:
    """The code of a streamed ``{"code": "..."}`` argument, decoded as its fragments arrive.

    ``feed`` returns the code that the new fragment completes: escapes are decoded only once
    whole, so a delta never ends inside ``\\n`` or a ``\\u`` sequence.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._pos: int | None = None
        self.done = False

    def feed(self, fragment: str) -> str:
        self._buffer += fragment
        if self.done:
            return ""
        if self._pos is None:
            match = _CODE_KEY.search(self._buffer)
            if match is None:
                return ""
            self._pos = match.end()
        out: list[str] = []
        buffer, pos = self._buffer, self._pos
        while pos < len(buffer):
            char = buffer[pos]
            if char == '"':
                self.done = True
                break
            if char != "\\":
                out.append(char)
                pos += 1
                continue
            size = _escape_size(buffer, pos)
            if size is None:  # the rest of the escape is still to come
                break
            escape = buffer[pos : pos + size]
            try:
                out.append(json.loads(f'"{escape}"'))
            except ValueError:  # a malformed escape from the model: kept as written
                out.append(escape)
            pos += size
        self._pos = pos
        return "".join(out)


@dataclass
class LiveCall(Generic[T]):
    """A tool call of the model turn being streamed, and where the face shows it (``place``: a
    response's output item, or the call's index among a run step's tool calls)."""

    call_id: str = ""
    name: str = ""
    pending: str = ""
    """Arguments that came before the call's name."""
    place: T | None = None
    decoder: CodeDecoder = field(default_factory=CodeDecoder)


def _escape_size(buffer: str, pos: int) -> int | None:
    if pos + 1 >= len(buffer):
        return None
    if buffer[pos + 1] != "u":
        return 2
    if pos + 6 > len(buffer):
        return None
    digits = buffer[pos + 2 : pos + 6]
    high = all(c in "0123456789abcdefABCDEF" for c in digits) and 0xD800 <= int(digits, 16) < 0xDC00
    if high:  # a surrogate pair: 12 characters
        return 12 if pos + 12 <= len(buffer) else None
    return 6
