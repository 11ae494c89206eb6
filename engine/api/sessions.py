"""The native API: sessions, executions (JSON or server-sent events), and session files."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.sse import ServerSentEvent
from pydantic import BaseModel, Field, field_validator

from .. import errors
from ..files import FileObject, guess_mime_type
from ..paging import Deleted, Page
from ..results import ErrorInfo, ExecutionResult, ExecutionStatus
from ..sessions import SessionFile, SessionInfo
from ..sessions.surface import SessionSurface
from .auth import Tenant
from .deps import (
    ExpiresAfter,
    FileBodyDep,
    HostDep,
    PagingDep,
    SessionDep,
    SettingsDep,
    file_body_doc,
    parse_memory,
    stream_file,
)
from .streaming import SSE_RESPONSE, ClientGone, Events, cancel_on_disconnect, event_stream

CLIENT_CLOSED_REQUEST = 499
"""What the access log shows for an execution whose client left (nginx's code for it)."""

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


MAX_IDLE_MINUTES = 24 * 60


class CreateSession(BaseModel):
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    file_ids: list[str] = Field(default_factory=list, max_length=100)
    memory_limit: str | int | None = None
    expires_after: ExpiresAfter | None = None
    network_policy: dict[str, Any] | None = None
    """``{"type": "disabled"}`` (the default) or an allowlist: engine.egress.EgressPolicy."""

    @field_validator("expires_after")
    @classmethod
    def _at_most_a_day(cls, value: ExpiresAfter | None) -> ExpiresAfter | None:
        if value is not None and value.minutes > MAX_IDLE_MINUTES:
            raise ValueError(f"expires_after.minutes must be at most {MAX_IDLE_MINUTES}")
        return value


class Execute(BaseModel):
    code: str
    timeout: float | None = None


class AddFile(BaseModel):
    file_id: str
    name: str | None = None


class Extend(BaseModel):
    seconds: int | None = Field(default=None, ge=1)
    """Push the deadline out by this much; without it (or without a body), only activity."""


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionFile]


@router.post("", response_model=SessionInfo)
async def create_session(
    body: CreateSession, engine: HostDep, settings: SettingsDep, tenant: Tenant
) -> SessionInfo:
    session = await engine.session(
        body.thread_id,
        owner=tenant,
        file_ids=body.file_ids,
        memory_limit_mb=parse_memory(body.memory_limit, settings.max_memory_limit_mb),
        idle_timeout=body.expires_after.minutes * 60 if body.expires_after else None,
        network_policy=body.network_policy,
    )
    return session.info


@router.get("", response_model=Page[SessionInfo])
async def list_sessions(paging: PagingDep, engine: HostDep, tenant: Tenant) -> Page[SessionInfo]:
    return engine.sessions.list(tenant, **paging.window())


@router.get("/{session_id}", response_model=SessionInfo)
async def get_session(session_id: str, engine: HostDep, tenant: Tenant) -> SessionInfo:
    return engine.sessions.info(session_id, tenant)


@router.delete("/{session_id}")
async def delete_session(session_id: str, engine: HostDep, tenant: Tenant) -> Deleted:
    await engine.sessions.close(session_id, tenant)
    return Deleted(id=session_id, object="session.deleted")


@router.post("/{session_id}/pause", response_model=SessionInfo)
async def pause_session(session: SessionDep) -> SessionInfo:
    """Save its variables and files and remove its sandbox; any use resumes it."""
    return await session.pause()


@router.post("/{session_id}/resume", response_model=SessionInfo)
async def resume_session(session: SessionDep) -> SessionInfo:
    """Start it again, with its variables and files back."""
    return await session.resume()


@router.post("/{session_id}/execute", response_model=ExecutionResult, responses=SSE_RESPONSE)
async def execute(body: Execute, session: SessionDep, request: Request) -> Any:
    """JSON when it is done, or with ``Accept: text/event-stream`` server-sent events while it
    runs: ``stdout``, ``stderr``, ``display``, ``error``, ... then ``done`` with the result."""
    if "text/event-stream" in request.headers.get("accept", ""):
        return event_stream(_events(session, body))
    try:
        return await cancel_on_disconnect(request, session.execute(body.code, body.timeout))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _events(session: SessionSurface, body: Execute) -> Events:
    """The output events, then always ``done``: with the result, or with the engine's error
    (after an ``error`` event for it, as for the code's own errors)."""
    stream = session.stream(body.code, body.timeout)
    try:
        async for event in stream:
            if event.type == "done":
                yield ServerSentEvent(event="done", data=event.result.model_dump(mode="json"))
            else:
                data = event.model_dump(mode="json", exclude={"type"})
                yield ServerSentEvent(event=event.type, data=data)
    except errors.EngineError as exc:
        error = ErrorInfo(name=type(exc).__name__, value=str(exc))
        yield ServerSentEvent(event="error", data=error.model_dump(mode="json"))
        status = (
            ExecutionStatus.CANCELLED
            if isinstance(exc, errors.SessionClosed)
            else ExecutionStatus.ERROR
        )
        result = ExecutionResult(status=status, error=error)
        yield ServerSentEvent(event="done", data=result.model_dump(mode="json"))
    finally:
        # A client that went away cancels us; the interrupt must still be sent.
        with anyio.CancelScope(shield=True):
            await stream.aclose()


@router.post("/{session_id}/interrupt", response_model=SessionInfo)
async def interrupt(session: SessionDep) -> SessionInfo:
    await session.interrupt()
    return session.info


@router.post("/{session_id}/restart", response_model=SessionInfo)
async def restart(session: SessionDep) -> SessionInfo:
    await session.restart()
    return session.info


@router.post("/{session_id}/keepalive", response_model=SessionInfo)
async def keepalive(session: SessionDep, body: Extend | None = None) -> SessionInfo:
    if body is None or body.seconds is None:
        return session.keepalive()
    return session.extend(body.seconds)


@router.get("/{session_id}/files", response_model=FileList)
async def list_files(session: SessionDep) -> FileList:
    return FileList(data=await session.list_files())


@router.post(
    "/{session_id}/files",
    response_model=SessionFile,
    openapi_extra=file_body_doc(
        {"name": "Its name in /mnt/data (default: the filename)."}, AddFile
    ),
)
async def add_file(session: SessionDep, body: FileBodyDep) -> SessionFile:
    """Multipart (``file``, optional ``name``), or JSON ``{"file_id", "name"?}``."""
    if body.upload is not None:
        return await session.upload(*body.file())
    ref = body.json(AddFile)
    return await session.add_file(ref.file_id, ref.name)


@router.get("/{session_id}/files/content")
async def file_content(path: str, session: SessionDep) -> StreamingResponse:
    f = await session.open_file(path)
    name = path.rsplit("/", 1)[-1]
    return stream_file(f, guess_mime_type(name), name)


@router.delete("/{session_id}/files/content", status_code=204)
async def remove_file(path: str, session: SessionDep) -> Response:
    """Delete /mnt/data/<path> (file objects made from it stay)."""
    await session.remove_file(path)
    return Response(status_code=204)


@router.post("/{session_id}/files/{file_id}/keep", response_model=FileObject)
async def keep_output(file_id: str, session: SessionDep) -> FileObject:
    """Promote an output of this session: it is no longer deleted when the session ends."""
    return session.keep_output(file_id)
