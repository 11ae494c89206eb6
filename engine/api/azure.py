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
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from .. import errors
from ..files import guess_mime_type
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT
from ..services import Engine
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


# --- executions ---


@router.post("/code/execute")
async def execute_preview(
    body: PreviewExecution,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
) -> dict[str, Any]:
    """2024-02-02-preview: ``{"properties": {"code", ...}}``; runs to completion."""
    result = await _execute(engine, tenant, identifier, body.properties)
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
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    response: Response,
    api_version: ApiVersion = None,
    operation_id: Annotated[str | None, Header(alias="operation-id", max_length=128)] = None,
) -> dict[str, Any]:
    """Later versions: a flat body. Asynchronous requests also finish before the answer, which
    then carries the final state, so there is nothing to poll."""
    result = await _execute(engine, tenant, identifier, body)
    execution_id = operation_id or str(uuid.uuid4())
    response.headers["operation-id"] = execution_id
    return execution_resource(execution_id, identifier, body, result)


async def _execute(
    engine: Engine, tenant: str, identifier: str, body: CodeExecution
) -> ExecutionResult:
    code = body.source()
    session = await engine.session(identifier, owner=tenant)
    return await session.execute(code, body.timeoutInSeconds)


# --- files ---


_UPLOAD = file_body_doc()


@router.post("/files/upload", openapi_extra=_UPLOAD)
async def upload_preview(
    body: FileBodyDep,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
) -> dict[str, Any]:
    """2024-02-02-preview: multipart ``file``; its filename (or /mnt/data/<filename>) names it."""
    uploaded = await _upload(body, engine, tenant, identifier)
    return {"$id": "1", "value": [preview_file(uploaded, 2)]}


@router.post("/files", openapi_extra=_UPLOAD)
async def upload(
    body: FileBodyDep,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> dict[str, Any]:
    if directory_of(path):
        raise errors.InvalidRequest(
            f"uploads go to {DATA_MOUNT} itself; path={path!r} names a subfolder"
        )
    return flat_file(await _upload(body, engine, tenant, identifier))


async def _upload(body: FileBody, engine: Engine, tenant: str, identifier: str) -> SessionFile:
    name, data = body.file()  # before a session is started for a bad body
    session = await engine.session(identifier, owner=tenant)
    return await session.upload(name, data)


@router.get("/files")
async def list_files(
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
    recursive: bool = False,
) -> dict[str, Any]:
    session = _live(engine, tenant, identifier)
    files = await session.list_files() if session is not None else []
    if not flat_shapes(api_version):
        return {"$id": "1", "value": [preview_file(f, 2 + 2 * n) for n, f in enumerate(files)]}
    return {"value": listing(files, directory_of(path), recursive), "nextLink": None}


@router.get("/files/content/{filename:path}")
async def file_content_preview(
    filename: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
) -> StreamingResponse:
    """2024-02-02-preview: the raw bytes of /mnt/data/<filename>."""
    return await _download(engine, tenant, identifier, filename)


@router.get("/files/{name}/content")
async def file_content(
    name: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> StreamingResponse:
    return await _download(engine, tenant, identifier, join_path(path, name))


@router.get("/files/{name}")
async def file_metadata(
    name: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> dict[str, Any]:
    wanted = join_path(path, name)
    files = await _require_live(engine, tenant, identifier).list_files()
    found = next((f for f in files if relative_path(f) == wanted), None)
    if found is None:
        raise errors.NotFound(f"no file {wanted!r} in {DATA_MOUNT}")
    if not flat_shapes(api_version):
        return {"$id": "1", "value": [preview_file(found, 2)]}
    return flat_file(found)


@router.delete("/files/{name}", status_code=204)
async def delete_file(
    name: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> Response:
    await _require_live(engine, tenant, identifier).remove_file(join_path(path, name))
    return Response(status_code=204)


async def _download(
    engine: Engine, tenant: str, identifier: str, relative: str
) -> StreamingResponse:
    f = await _require_live(engine, tenant, identifier).open_file(relative)
    name = posixpath.basename(relative)
    return stream_file(f, guess_mime_type(name), name)


# --- the session ---


@router.get("/session")
async def get_session(
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
) -> dict[str, Any]:
    session = _require_live(engine, tenant, identifier)
    info = session.info
    return {
        "identifier": identifier,
        "createdAt": iso_time(info.created_at),
        "lastAccessedAt": iso_time(info.last_active_at),
        "expireAt": iso_time(info.expires_at),
        "etag": session.id,
    }


@router.delete("/session", status_code=204)
async def delete_session(
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
) -> Response:
    """Idempotent: deleting a session that is not running succeeds too."""
    session = _live(engine, tenant, identifier)
    if session is not None:
        await engine.sessions.close(session.id, tenant)
    return Response(status_code=204)


# --- translation helpers ---


def _live(engine: Engine, tenant: str, identifier: str) -> Session | None:
    return engine.sessions.by_thread(identifier, tenant)


def _require_live(engine: Engine, tenant: str, identifier: str) -> Session:
    session = _live(engine, tenant, identifier)
    if session is None:
        raise errors.SessionNotFound(f"no running session with identifier {identifier!r}")
    return session
