"""Azure Container Apps dynamic sessions (code interpreter), both API shapes, `?identifier=`.

2024-02-02-preview: ``POST /code/execute``, ``POST /files/upload``, ``GET /files``,
``GET /files/content/{filename}``: bodies wrapped in ``properties`` with ``$id`` counters.
2024-10-02-preview and later: ``POST /executions``, ``POST /files``, ``GET /files``,
``GET|DELETE /files/{name}``, ``GET /files/{name}/content``, ``GET|DELETE /session``: flat bodies.
``GET /files`` answers in the shape of the ``api-version`` it is given (the preview one without).

The identifier is the thread id of one of the caller's sessions. Executions and uploads create the
session when there is none, as Azure does; reads never start a container for nothing.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from .. import errors
from ..files import guess_mime_type
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT
from ..sessions import Session, SessionFile
from .auth import Tenant
from .azure_shapes import (
    CodeExecution,
    PreviewExecution,
    directory_of,
    execution_resource,
    execution_value,
    flat_file,
    flat_shapes,
    iso_time,
    join_path,
    listing,
    preview_file,
    relative_path,
    stderr_with_traceback,
)
from .deps import EngineDep, FileBody, FileBodyDep, file_body_doc, stream_file

router = APIRouter(tags=["azure sessions"])


Identifier = Annotated[
    str, Query(min_length=1, max_length=256, description="The session identifier: your thread id.")
]
ApiVersion = Annotated[
    str | None, Query(alias="api-version", pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")
]
Directory = Annotated[
    str | None,
    Query(alias="path", max_length=1024, description="A folder: /mnt/data (default) or below it."),
]


@dataclass(eq=False)
class Caller:
    """Who calls, about which session: every route's ``?identifier=`` and ``api-version``."""

    identifier: Identifier
    engine: EngineDep
    tenant: Tenant
    api_version: ApiVersion = None

    async def session(self) -> Session:
        """The caller's session, started if there is none (executions and uploads)."""
        return await self.engine.session(self.identifier, owner=self.tenant)

    def live(self) -> Session | None:
        return self.engine.sessions.by_thread(self.identifier, self.tenant)

    def require_live(self) -> Session:
        session = self.live()
        if session is None:
            raise errors.SessionNotFound(f"no running session with identifier {self.identifier!r}")
        return session

    async def execute(self, body: CodeExecution) -> ExecutionResult:
        code = body.source()
        return await (await self.session()).execute(code, body.timeoutInSeconds)

    async def upload(self, body: FileBody) -> SessionFile:
        name, data = body.file()  # before a session is started for a bad body
        return await (await self.session()).upload(name, data)

    async def download(self, relative: str) -> StreamingResponse:
        f = await self.require_live().open_file(relative)
        name = posixpath.basename(relative)
        return stream_file(f, guess_mime_type(name), name)


CallerDep = Annotated[Caller, Depends()]


# --- executions ---


@router.post("/code/execute")
async def execute_preview(body: PreviewExecution, caller: CallerDep) -> dict[str, Any]:
    """2024-02-02-preview: ``{"properties": {"code", ...}}``; runs to completion."""
    result = await caller.execute(body.properties)
    return {
        "$id": "1",
        "properties": {
            "$id": "2",
            "status": "Success" if result.ok else "Failure",
            "stdout": result.stdout,
            "stderr": stderr_with_traceback(result),
            "result": execution_value(result),
            "executionTimeInMilliseconds": round(result.duration_ms),
        },
    }


@router.post("/executions")
async def execute(
    body: CodeExecution,
    caller: CallerDep,
    response: Response,
    operation_id: Annotated[str | None, Header(alias="operation-id", max_length=128)] = None,
) -> dict[str, Any]:
    """Later versions: a flat body. Asynchronous requests also finish before the answer, which
    then carries the final state, so there is nothing to poll."""
    result = await caller.execute(body)
    execution_id = operation_id or str(uuid.uuid4())
    response.headers["operation-id"] = execution_id
    return execution_resource(execution_id, caller.identifier, body, result)


# --- files ---


_UPLOAD = file_body_doc()


@router.post("/files/upload", openapi_extra=_UPLOAD)
async def upload_preview(body: FileBodyDep, caller: CallerDep) -> dict[str, Any]:
    """2024-02-02-preview: multipart ``file``; its filename (or /mnt/data/<filename>) names it."""
    return {"$id": "1", "value": [preview_file(await caller.upload(body), 2)]}


@router.post("/files", openapi_extra=_UPLOAD)
async def upload(body: FileBodyDep, caller: CallerDep, path: Directory = None) -> dict[str, Any]:
    if directory_of(path):
        raise errors.InvalidRequest(
            f"uploads go to {DATA_MOUNT} itself; path={path!r} names a subfolder"
        )
    return flat_file(await caller.upload(body))


@router.get("/files")
async def list_files(
    caller: CallerDep, path: Directory = None, recursive: bool = False
) -> dict[str, Any]:
    session = caller.live()
    files = await session.list_files() if session is not None else []
    if not flat_shapes(caller.api_version):
        return {"$id": "1", "value": [preview_file(f, 2 + 2 * n) for n, f in enumerate(files)]}
    return {"value": listing(files, directory_of(path), recursive), "nextLink": None}


@router.get("/files/content/{filename:path}")
async def file_content_preview(filename: str, caller: CallerDep) -> StreamingResponse:
    """2024-02-02-preview: the raw bytes of /mnt/data/<filename>."""
    return await caller.download(filename)


@router.get("/files/{name}/content")
async def file_content(name: str, caller: CallerDep, path: Directory = None) -> StreamingResponse:
    return await caller.download(join_path(path, name))


@router.get("/files/{name}")
async def file_metadata(name: str, caller: CallerDep, path: Directory = None) -> dict[str, Any]:
    wanted = join_path(path, name)
    files = await caller.require_live().list_files()
    found = next((f for f in files if relative_path(f) == wanted), None)
    if found is None:
        raise errors.NotFound(f"no file {wanted!r} in {DATA_MOUNT}")
    if not flat_shapes(caller.api_version):
        return {"$id": "1", "value": [preview_file(found, 2)]}
    return flat_file(found)


@router.delete("/files/{name}", status_code=204)
async def delete_file(name: str, caller: CallerDep, path: Directory = None) -> Response:
    await caller.require_live().remove_file(join_path(path, name))
    return Response(status_code=204)


# --- the session ---


@router.get("/session")
async def get_session(caller: CallerDep) -> dict[str, Any]:
    session = caller.require_live()
    info = session.info
    return {
        "identifier": caller.identifier,
        "createdAt": iso_time(info.created_at),
        "lastAccessedAt": iso_time(info.last_active_at),
        "expireAt": iso_time(info.expires_at),
        "etag": session.id,
    }


@router.delete("/session", status_code=204)
async def delete_session(caller: CallerDep) -> Response:
    """Idempotent: deleting a session that is not running succeeds too."""
    session = caller.live()
    if session is not None:
        await caller.engine.sessions.close(session.id, caller.tenant)
    return Response(status_code=204)
