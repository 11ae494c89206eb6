"""Request limits enforced before any route runs: body size and JSON nesting depth."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import BodyTooLarge
from .errors import error_body, send_json


class BodyLimits:
    """Caps request bodies (multipart uploads at ``max_upload``, anything else at ``max_body``)
    and refuses JSON nested deeper than ``max_depth``, all without reaching the app."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int, max_depth: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.max_upload if ctype.startswith("multipart/") else self.max_body
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _reject(
                send, 413, f"the request body is larger than {limit} bytes", "payload_too_large"
            )
            return
        if ctype.startswith("multipart/"):
            await self.app(scope, _counting(receive, limit), send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _reject(
                    send, 413, f"the request body is larger than {limit} bytes", "payload_too_large"
                )
                return
        if "json" in ctype or (not ctype and bytes(body[:1]) in (b"{", b"[")):
            depth = json_depth(bytes(body))
            if depth > self.max_depth:
                await _reject(
                    send, 400, f"JSON nested deeper than {self.max_depth} levels", "json_too_deep"
                )
                return
            if not _valid_utf8(bytes(body)):
                await _reject(send, 400, "the request body is not valid UTF-8", "invalid_json")
                return
            if _lone_surrogate(bytes(body)):
                await _reject(
                    send, 400, "the request body escapes a lone UTF-16 surrogate", "invalid_json"
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


_KEEP = b'[]{}"\\'
_DROP = bytes(b for b in range(256) if b not in _KEEP)


def json_depth(data: bytes) -> int:
    """Deepest nesting of [ and { outside strings; a scan, not a parse, so it cannot recurse."""
    data = data.translate(None, _DROP)
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _lone_surrogate(data: bytes) -> bool:
    """JSON may escape a lone surrogate (``"\\ud800"``) that no UTF-8 text can hold; Python
    keeps it in a str that fails far from here (SQLite, the kernel protocol)."""
    if b"\\u" not in data:
        return False
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False  # not JSON at all: the route says so
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise BodyTooLarge(limit)
        return message

    return wrapped


async def _reject(send: Send, status: int, message: str, code: str) -> None:
    await send_json(send, status, error_body(message, "invalid_request_error", code))
