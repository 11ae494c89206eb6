"""OpenAI-compatible Files: ``/v1/files`` upload, retrieve, list, content and delete."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from .. import errors
from ..files import FileObject
from ..paging import MAX_LIMIT, Page
from .auth import Tenant
from .deps import EngineDep

router = APIRouter(prefix="/v1/files", tags=["openai files"])


class OpenAIFile(BaseModel):
    """The file object exactly as OpenAI returns it."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def of(cls, obj: FileObject) -> OpenAIFile:
        return cls(
            id=obj.id,
            bytes=obj.bytes,
            created_at=obj.created_at,
            filename=obj.filename,
            purpose=obj.purpose,
            status=obj.status,
        )


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}"}


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


@router.post("", response_model=OpenAIFile)
async def create_file(
    engine: EngineDep,
    tenant: Tenant,
    file: Annotated[UploadFile | None, File()] = None,
    purpose: Annotated[str | None, Form()] = None,
) -> OpenAIFile:
    """Multipart: ``file`` and ``purpose``. OpenAI's ``expires_after`` is accepted and ignored."""
    if file is None:
        raise errors.InvalidRequest("the multipart body needs a `file` part")
    if purpose is None:
        raise errors.InvalidRequest("the multipart body needs a `purpose` field")
    obj = await engine.files.create(file.file, file.filename or "file", purpose, owner=tenant)
    return OpenAIFile.of(obj)


@router.get("", response_model=Page[OpenAIFile])
async def list_files(
    engine: EngineDep,
    tenant: Tenant,
    purpose: str | None = None,
    # OpenAI allows up to 10,000 per page; larger asks get full pages of MAX_LIMIT and has_more.
    limit: Annotated[int, Query(ge=1, le=10_000)] = MAX_LIMIT,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Page[OpenAIFile]:
    page = engine.files.list(
        tenant,
        purpose=purpose,
        limit=min(limit, MAX_LIMIT),
        order=order,
        after=after,
        before=before,
    )
    return Page[OpenAIFile].of([OpenAIFile.of(f) for f in page.data], page.has_more)


@router.get("/{file_id}", response_model=OpenAIFile)
async def retrieve_file(file_id: str, engine: EngineDep, tenant: Tenant) -> OpenAIFile:
    return OpenAIFile.of(engine.files.retrieve(file_id, tenant))


@router.get("/{file_id}/content")
async def file_content(file_id: str, engine: EngineDep, tenant: Tenant) -> StreamingResponse:
    obj = engine.files.retrieve(file_id, tenant)
    headers = {"Content-Length": str(obj.bytes), **attachment(obj.filename)}
    return StreamingResponse(
        engine.files.iter_content(file_id, tenant), media_type=obj.mime_type, headers=headers
    )


@router.delete("/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, engine: EngineDep, tenant: Tenant) -> FileDeleted:
    engine.files.delete(file_id, tenant)
    return FileDeleted(id=file_id)
