"""One error shape everywhere, OpenAI's: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from .. import errors
from ..errors import APIError

log = logging.getLogger("engine.api")

STATUS: list[tuple[type[errors.EngineError], int, str]] = [
    (errors.InvalidRequest, 400, "invalid_request_error"),
    (errors.NotFound, 404, "not_found_error"),
    (errors.SessionBusy, 409, "conflict_error"),
    (errors.SessionClosed, 409, "conflict_error"),
    (errors.QuotaExceeded, 403, "insufficient_quota"),
    (errors.PayloadTooLarge, 413, "invalid_request_error"),
    (errors.LimitExceeded, 429, "rate_limit_error"),
    (errors.StorageFull, 507, "server_error"),
    (errors.BackendUnavailable, 503, "server_error"),
    (errors.ImageNotFound, 503, "server_error"),
    (errors.SandboxUnavailable, 503, "server_error"),
    (errors.SandboxError, 502, "server_error"),
]


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def send_json(
    send: Send, status: int, body: object, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON reply written straight to ASGI, for the middleware and /mcp (outside FastAPI)."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.EngineError)
    async def engine_error(request: Request, exc: errors.EngineError) -> JSONResponse:
        for cls, status, type_ in STATUS:
            if isinstance(exc, cls):
                body = error_body(str(exc), type_, exc.code, getattr(exc, "param", None))
                return JSONResponse(body, status_code=status)
        return JSONResponse(error_body(str(exc), "server_error", exc.code), status_code=500)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            error_body(exc.message, exc.type, exc.code), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        if first.get("type") == "json_invalid":
            return JSONResponse(
                error_body(
                    "the request body is not valid JSON", "invalid_request_error", "invalid_json"
                ),
                status_code=400,
            )
        if not_json := _not_sent_as_json(request, first):
            return JSONResponse(
                error_body(not_json, "invalid_request_error", "unsupported_media_type"),
                status_code=415,
            )
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in problems[:5]
        )
        return JSONResponse(
            error_body(
                message or "invalid request",
                "invalid_request_error",
                "invalid_value",
                ".".join(loc) or None,
            ),
            status_code=422,
        )

    @app.exception_handler(ValidationError)
    async def invalid_value(request: Request, exc: ValidationError) -> JSONResponse:
        # A value the library validates deeper down (e.g. a message attachment) is still bad input.
        problems = exc.errors()
        where = ".".join(str(p) for p in problems[0]["loc"]) if problems else ""
        message = problems[0]["msg"] if problems else "invalid value"
        return JSONResponse(
            error_body(
                f"{where}: {message}", "invalid_request_error", "invalid_value", where or None
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), type_, None), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal error", "server_error", "internal_error"), status_code=500
        )


def _not_sent_as_json(request: Request, problem: Mapping[str, Any]) -> str | None:
    """A JSON body that came without ``Content-Type: application/json`` is not read as JSON
    (FastAPI's strict content type, which keeps browsers' cross-site posts out), so the model
    sees bytes; say that, rather than "Input should be a valid dictionary"."""
    if tuple(problem.get("loc", ())) != ("body",):
        return None
    if problem.get("type") not in ("model_attributes_type", "dict_type", "model_type"):
        return None
    ctype = request.headers.get("content-type")
    if ctype and "json" in ctype.split(";")[0].lower():
        return None
    sent = f"Content-Type {ctype!r}" if ctype else "no Content-Type"
    return f"the body must be JSON sent with Content-Type: application/json (this one has {sent})"
