"""Dependencies shared by the routers: the engine, and a tenant's session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Annotated

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from ..core import Engine
from ..sessions import Session
from .auth import Tenant

CHUNK = 1024 * 1024


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request.
async def engine(request: Request) -> Engine:
    value: Engine = request.app.state.engine
    return value


EngineDep = Annotated[Engine, Depends(engine)]


def session_of(engine: EngineDep, tenant: Tenant, session_id: str) -> Session:
    return engine.get_session(session_id, tenant)


def parse_memory(value: str | int | None) -> int | None:
    """ "1g", "512m", "4G" or a number of MB."""
    from .. import errors

    if value is None or isinstance(value, int):
        return value
    text = value.strip().lower().removesuffix("b")
    units = {"g": 1024, "m": 1}
    if text and text[-1] in units and text[:-1].isdigit():
        return int(text[:-1]) * units[text[-1]]
    if text.isdigit():
        return int(text)
    raise errors.InvalidRequest(f"memory_limit must look like '1g' or '512m', not {value!r}")


async def _chunks(f: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


def stream_file(f: IO[bytes], media_type: str, filename: str | None = None) -> StreamingResponse:
    headers = {}
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(filename)}"
    return StreamingResponse(_chunks(f), media_type=media_type, headers=headers)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
