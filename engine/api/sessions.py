"""The native API: sessions, executions (JSON or server-sent events), and session files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from .. import errors
from ..files import guess_mime_type
from ..paging import Page
from ..results import ExecutionResult
from ..sessions import Session, SessionFile, SessionInfo
from .auth import Tenant
from .deps import EngineDep, parse_memory, session_of, stream_file

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


class ExpiresAfter(BaseModel):
    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: int = Field(ge=1, le=24 * 60)


class CreateSession(BaseModel):
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    file_ids: list[str] = Field(default_factory=list, max_length=100)
    memory_limit: str | int | None = None
    expires_after: ExpiresAfter | None = None


class Execute(BaseModel):
    code: str
    timeout: float | None = None


class AddFile(BaseModel):
    file_id: str
    name: str | None = None


class Extend(BaseModel):
    seconds: int = Field(ge=1)


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionFile]


@router.post("", response_model=SessionInfo)
async def create_session(body: CreateSession, engine: EngineDep, tenant: Tenant) -> SessionInfo:
    session = await engine.session(
        body.thread_id,
        owner=tenant,
        file_ids=body.file_ids,
        memory_limit_mb=parse_memory(body.memory_limit),
        idle_timeout=body.expires_after.minutes * 60 if body.expires_after else None,
    )
    return session.info


@router.get("", response_model=Page[SessionInfo])
async def list_sessions(
    engine: EngineDep,
    tenant: Tenant,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Page[SessionInfo]:
    return engine.sessions.list(tenant, limit=limit, order=order, after=after, before=before)


@router.get("/{session_id}", response_model=SessionInfo)
async def get_session(session_id: str, engine: EngineDep, tenant: Tenant) -> SessionInfo:
    return engine.sessions.info(session_id, tenant)


@router.delete("/{session_id}")
async def delete_session(session_id: str, engine: EngineDep, tenant: Tenant) -> dict[str, Any]:
    await engine.sessions.close(session_id, tenant)
    return {"id": session_id, "object": "session.deleted", "deleted": True}


@router.post("/{session_id}/execute", response_model=ExecutionResult)
async def execute(
    session_id: str, body: Execute, request: Request, engine: EngineDep, tenant: Tenant
) -> Any:
    session = session_of(engine, tenant, session_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _sse(session, body),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    return await session.execute(body.code, body.timeout)


async def _sse(session: Session, body: Execute) -> AsyncIterator[str]:
    stream = session.stream(body.code, body.timeout)
    try:
        async for event in stream:
            if event.type == "done":
                yield _event("done", event.result.model_dump(mode="json"))
            else:
                yield _event(event.type, event.model_dump(mode="json", exclude={"type"}))
    except errors.EngineError as exc:
        yield _event("error", {"name": type(exc).__name__, "value": str(exc), "traceback": []})
    finally:
        # A client that went away cancels us; the interrupt must still be sent.
        with anyio.CancelScope(shield=True):
            await stream.aclose()


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.post("/{session_id}/interrupt", response_model=SessionInfo)
async def interrupt(session_id: str, engine: EngineDep, tenant: Tenant) -> SessionInfo:
    session = session_of(engine, tenant, session_id)
    await session.interrupt()
    return session.info


@router.post("/{session_id}/restart", response_model=SessionInfo)
async def restart(session_id: str, engine: EngineDep, tenant: Tenant) -> SessionInfo:
    session = session_of(engine, tenant, session_id)
    await session.restart()
    return session.info


@router.post("/{session_id}/keepalive", response_model=SessionInfo)
async def keepalive(
    session_id: str, engine: EngineDep, tenant: Tenant, body: Extend | None = None
) -> SessionInfo:
    session = session_of(engine, tenant, session_id)
    return session.extend(body.seconds) if body else session.keepalive()


@router.get("/{session_id}/files", response_model=FileList)
async def list_files(session_id: str, engine: EngineDep, tenant: Tenant) -> FileList:
    return FileList(data=await session_of(engine, tenant, session_id).list_files())


@router.post("/{session_id}/files", response_model=SessionFile)
async def add_file(
    session_id: str, request: Request, engine: EngineDep, tenant: Tenant
) -> SessionFile:
    """Multipart (``file``, optional ``name``), or JSON ``{"file_id", "name"?}``."""
    session = session_of(engine, tenant, session_id)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise errors.InvalidRequest("the multipart body needs a `file` part")
        name = form.get("name")
        return await session.upload(
            name if isinstance(name, str) else upload.filename or "", upload.file
        )
    try:
        body = AddFile.model_validate_json(await request.body())
    except ValueError as exc:
        raise errors.InvalidRequest(
            f'expected JSON {{"file_id"}} or a multipart upload: {exc}'
        ) from None
    return await session.add_file(body.file_id, body.name)


@router.get("/{session_id}/files/content")
async def file_content(
    session_id: str, path: str, engine: EngineDep, tenant: Tenant
) -> StreamingResponse:
    session = session_of(engine, tenant, session_id)
    f = await session.open_file(path)
    name = path.rsplit("/", 1)[-1]
    return stream_file(f, guess_mime_type(name), name)
