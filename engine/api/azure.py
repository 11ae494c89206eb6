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

import ast
import base64
import math
import posixpath
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field

from .. import errors
from ..core import Engine
from ..files import guess_mime_type
from ..names import check_relative_path
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT
from ..sessions import Session, SessionFile
from .auth import Tenant
from .deps import EngineDep, FileBody, FileBodyDep, file_body_doc, stream_file

router = APIRouter(tags=["azure sessions"])

FLAT_SHAPES_SINCE = "2024-10-02"
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif"}
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,300})(?:\.\d+)?(?:[eE][-+]?\d{1,4})?")
_NUMPY_SCALAR = re.compile(r"np\.(?:u?int|float)\d*\((.{1,400})\)|np\.(True|False)_")
MAX_LITERAL = 65_536

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


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class CodeExecution(BaseModel):
    """The execution request; Azure spells the enum values in any case."""

    codeInputType: Annotated[
        Literal["inline", "inlinebase64", "inlinetext"], BeforeValidator(_lower)
    ] = "inline"
    executionType: Annotated[Literal["synchronous", "asynchronous"], BeforeValidator(_lower)] = (
        "synchronous"
    )
    code: str
    timeoutInSeconds: float | None = Field(default=None, gt=0)
    outputStreamsMaxLength: int | None = Field(default=None, ge=0)
    """Accepted and ignored: the engine's own output caps apply."""

    def source(self) -> str:
        if self.codeInputType != "inlinebase64":
            return self.code
        try:
            return base64.b64decode(self.code, validate=True).decode()
        except ValueError:
            raise errors.InvalidRequest(
                "code is not base64-encoded UTF-8, as codeInputType InlineBase64 says"
            ) from None


class PreviewExecution(BaseModel):
    properties: CodeExecution


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
            "stderr": _stderr(result),
            "result": _value(result),
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
    return _execution(execution_id, identifier, body, result)


def _execution(
    execution_id: str, identifier: str, body: CodeExecution, result: ExecutionResult
) -> dict[str, Any]:
    """The flat shape's execution resource, in its final state."""
    resource: dict[str, Any] = {
        "id": execution_id,
        "identifier": identifier,
        "executionType": body.executionType.capitalize(),
        "status": "Succeeded" if result.ok else "Failed",
        "result": {
            "stdout": result.stdout,
            "stderr": _stderr(result),
            "executionResult": _value(result),
            "executionTimeInMilliseconds": round(result.duration_ms),
        },
    }
    if result.error is not None:
        resource["error"] = {
            "error": {
                "code": result.error.name,
                "message": f"{result.error.name}: {result.error.value}",
            }
        }
    return resource


async def _execute(
    engine: Engine, tenant: str, identifier: str, body: CodeExecution
) -> ExecutionResult:
    code = body.source()
    session = await engine.session(identifier, owner=tenant)
    return await session.execute(code, body.timeoutInSeconds)


def _stderr(result: ExecutionResult) -> str:
    """The preview shape has no error field: the traceback is appended to stderr."""
    if result.error is None:
        return result.stderr
    text = "\n".join(result.error.traceback)
    summary = f"{result.error.name}: {result.error.value}"
    if summary not in text:
        text = f"{text}\n{summary}" if text else summary
    return f"{result.stderr}{text}\n"


def _value(result: ExecutionResult) -> Any:
    """An image as ``{"type": "image", "format", "base64_data"}``, else the last expression's
    value as JSON when it is a plain number, bool or str, else its text; "" when there is none."""
    bundles = [*([result.result] if result.result else []), *result.display]
    for bundle in bundles:
        for mime, fmt in IMAGE_FORMATS.items():
            if isinstance(bundle.get(mime), str):
                return {"type": "image", "format": fmt, "base64_data": bundle[mime]}
    text = result.text
    return "" if text is None else _json_value(text)


def _json_value(text: str) -> Any:
    if numpy := _NUMPY_SCALAR.fullmatch(text):  # numpy 2 reprs: np.int64(6), np.True_
        text = numpy.group(1) or numpy.group(2)
    if text in ("True", "False"):
        return text == "True"
    if _NUMBER.fullmatch(text):
        number = float(text) if any(c in text for c in ".eE") else int(text)
        return number if math.isfinite(number) else text
    if text[:1] in ("'", '"') and len(text) <= MAX_LITERAL:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, str):
            return value
    return text


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
    return {"$id": "1", "value": [_preview_file(uploaded, 2)]}


@router.post("/files", openapi_extra=_UPLOAD)
async def upload(
    body: FileBodyDep,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> dict[str, Any]:
    if _directory(path):
        raise errors.InvalidRequest(
            f"uploads go to {DATA_MOUNT} itself; path={path!r} names a subfolder"
        )
    return _flat_file(await _upload(body, engine, tenant, identifier))


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
    if not _flat(api_version):
        return {"$id": "1", "value": [_preview_file(f, 2 + 2 * n) for n, f in enumerate(files)]}
    return {"value": _listing(files, _directory(path), recursive), "nextLink": None}


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
    return await _download(engine, tenant, identifier, _join(path, name))


@router.get("/files/{name}")
async def file_metadata(
    name: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> dict[str, Any]:
    wanted = _join(path, name)
    files = await _require_live(engine, tenant, identifier).list_files()
    found = next((f for f in files if _relative(f) == wanted), None)
    if found is None:
        raise errors.NotFound(f"no file {wanted!r} in {DATA_MOUNT}")
    if not _flat(api_version):
        return {"$id": "1", "value": [_preview_file(found, 2)]}
    return _flat_file(found)


@router.delete("/files/{name}", status_code=204)
async def delete_file(
    name: str,
    identifier: Identifier,
    engine: EngineDep,
    tenant: Tenant,
    api_version: ApiVersion = None,
    path: Directory = None,
) -> Response:
    await _require_live(engine, tenant, identifier).remove_file(_join(path, name))
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
        "createdAt": _time(info.created_at),
        "lastAccessedAt": _time(info.last_active_at),
        "expireAt": _time(info.expires_at),
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


def _flat(api_version: str | None) -> bool:
    return api_version is not None and api_version[:10] >= FLAT_SHAPES_SINCE


def _directory(path: str | None) -> str:
    """The ``path`` query parameter as a folder relative to /mnt/data ("" for /mnt/data)."""
    text = (path or "").strip().rstrip("/")
    if text in ("", DATA_MOUNT):
        return ""
    if text.startswith(f"{DATA_MOUNT}/"):
        text = text[len(DATA_MOUNT) + 1 :]
    elif text.startswith("/"):
        raise errors.InvalidRequest(f"path must be {DATA_MOUNT} or below it, not {path!r}")
    return "/".join(check_relative_path(text))


def _join(path: str | None, name: str) -> str:
    folder = _directory(path)
    return f"{folder}/{name}" if folder else name


def _relative(f: SessionFile) -> str:
    return f.path.removeprefix(f"{DATA_MOUNT}/")


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _preview_file(f: SessionFile, ref: int) -> dict[str, Any]:
    """``size`` is what LangChain and AutoGen read; newer Semantic Kernel reads ``sizeInBytes``
    and ``fullPath``."""
    return {
        "$id": str(ref),
        "properties": {
            "$id": str(ref + 1),
            "filename": _relative(f),
            "size": f.bytes,
            "lastModifiedTime": _time(f.modified_at),
            "sizeInBytes": f.bytes,
            "fullPath": f.path,
        },
    }


def _flat_file(f: SessionFile) -> dict[str, Any]:
    return {
        "name": f.filename,
        "type": "File",
        "contentType": guess_mime_type(f.filename),
        "sizeInBytes": f.bytes,
        "lastModifiedAt": _time(f.modified_at),
        "directory": posixpath.dirname(f.path),
    }


def _listing(files: list[SessionFile], folder: str, recursive: bool) -> list[dict[str, Any]]:
    """Files in ``folder`` (all below it if ``recursive``), then its subfolders."""
    prefix = f"{folder}/" if folder else ""
    entries: list[dict[str, Any]] = []
    subfolders: dict[str, int] = {}
    for f in files:
        relative = _relative(f)
        if not relative.startswith(prefix):
            continue
        child, _, rest = relative[len(prefix) :].partition("/")
        if rest and not recursive:
            subfolders[child] = max(subfolders.get(child, 0), f.modified_at)
        else:
            entries.append(_flat_file(f))
    parent = posixpath.join(DATA_MOUNT, folder) if folder else DATA_MOUNT
    entries += [
        {"name": name, "type": "Directory", "lastModifiedAt": _time(modified), "directory": parent}
        for name, modified in sorted(subfolders.items())
    ]
    return entries
