"""The Connect protocol's JSON codec, as much of it as envd's clients speak: unary calls
(``application/json`` in and out, errors as ``{"code", "message"}`` with an HTTP status) and
server streams (``application/connect+json``: every message in an envelope of one flags byte
and a four-byte big-endian length; the last envelope, flagged 0x02, carries the end of the
stream and its error, if any). No compression: the SDKs ask for none.

The ``connectrpc`` package serves this too, but it wants message classes generated from the
protobuf files; the JSON the SDKs send is all that is needed here."""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .. import errors

log = logging.getLogger("engine.api")

STREAM_TYPE = "application/connect+json"
END_STREAM = 0x02
COMPRESSED = 0x01
MAX_MESSAGE = 1024 * 1024
HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}


class ConnectError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def from_engine(exc: Exception) -> ConnectError:
    """The Connect code for an engine error."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, errors.SandboxFileError):
        return ConnectError(exc.reason, str(exc))
    code = "internal"
    for kind, name in (
        (errors.NotFound, "not_found"),
        (errors.InvalidRequest, "invalid_argument"),
        (errors.AccessDenied, "unauthenticated"),
        (errors.Conflict, "failed_precondition"),
        (errors.LimitExceeded, "resource_exhausted"),
        (errors.SessionClosed, "not_found"),
        (errors.SandboxError, "unavailable"),
    ):
        if isinstance(exc, kind):
            code = name
            break
    if code == "internal":
        log.exception("connect call failed", exc_info=exc)
        return ConnectError(code, "internal error")
    return ConnectError(code, str(exc))


def error_response(exc: ConnectError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=HTTP_STATUS.get(exc.code, 500))


def decode_message(raw: bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw or b"{}")
    except ValueError:
        raise ConnectError("invalid_argument", "the request is not valid JSON") from None
    if not isinstance(message, dict):
        raise ConnectError("invalid_argument", "the request must be a JSON object")
    return message


async def unary_request(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise ConnectError("unimplemented", f"only the JSON codec is served, not {content_type!r}")
    return decode_message(await request.body())


def unary_response(message: Mapping[str, Any]) -> JSONResponse:
    return JSONResponse(dict(message))


def envelope(message: Mapping[str, Any], flags: int = 0) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">BI", flags, len(data)) + data


def unwrap(body: bytes) -> dict[str, Any]:
    """The one message of a server-streaming call's request."""
    if len(body) < 5:
        raise ConnectError("invalid_argument", "the request has no message envelope")
    flags, size = struct.unpack(">BI", body[:5])
    if flags & COMPRESSED:
        raise ConnectError("unimplemented", "compressed messages are not served")
    if size > MAX_MESSAGE or len(body) != 5 + size:
        raise ConnectError("invalid_argument", "the message envelope's length is wrong")
    return decode_message(body[5:])


async def stream_request(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != STREAM_TYPE:
        raise ConnectError("unimplemented", f"a stream takes {STREAM_TYPE}, not {content_type!r}")
    return unwrap(await request.body())


def stream_response(messages: AsyncIterator[Mapping[str, Any]]) -> StreamingResponse:
    """The messages, then the end of the stream: with the error the iterator raised, if any."""

    async def frames() -> AsyncIterator[bytes]:
        end: dict[str, Any] = {}
        try:
            async for message in messages:
                yield envelope(message)
        except Exception as exc:
            end = {"error": from_engine(exc).body()}
        yield envelope(end, END_STREAM)

    return StreamingResponse(frames(), media_type=STREAM_TYPE)


def stream_error(exc: ConnectError) -> Response:
    """A stream that fails before its first message: an end-of-stream with the error."""
    return Response(envelope({"error": exc.body()}, END_STREAM), media_type=STREAM_TYPE)
