"""OpenAI-compatible Files: ``/v1/files`` upload, retrieve, list, content and delete."""

from __future__ import annotations

import contextlib
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from .. import errors
from ..files import FileHead, FileObject
from ..paging import Deleted, Page
from ..services import Engine
from .auth import Tenant
from .deps import EngineDep, FileBodyDep, FilePagingDep, attachment, file_body_doc

router = APIRouter(prefix="/v1/files", tags=["openai files"])


class OpenAIFile(FileHead):
    """The file object exactly as OpenAI returns it."""

    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def of(cls, obj: FileObject, engine: Engine | None = None) -> OpenAIFile:
        """``expires_at``: for an output that ends with its session, when that session would
        end now (activity pushes it out); None for a file kept until it is deleted."""
        expires_at = None
        if obj.expires_with_session and obj.session_id is not None and engine is not None:
            with contextlib.suppress(errors.NotFound):
                expires_at = engine.sessions.info(obj.session_id).expires_at
        head = obj.model_dump(include=set(FileHead.model_fields) | {"status"})
        return cls(**head, expires_at=expires_at)


_UPLOAD = file_body_doc({"*purpose": "assistants, assistants_output, batch, fine-tune, ..."})


@router.post("", response_model=OpenAIFile, openapi_extra=_UPLOAD)
async def create_file(body: FileBodyDep, engine: EngineDep, tenant: Tenant) -> OpenAIFile:
    """Multipart: ``file`` and ``purpose``. OpenAI's ``expires_after`` is accepted and ignored."""
    name, data = body.file()
    obj = await engine.files.create(data, name, body.field("purpose"), owner=tenant)
    return OpenAIFile.of(obj)


@router.get("", response_model=Page[OpenAIFile])
async def list_files(
    paging: FilePagingDep, engine: EngineDep, tenant: Tenant, purpose: str | None = None
) -> Page[OpenAIFile]:
    page = engine.files.list(tenant, purpose=purpose, **paging.window())
    return Page[OpenAIFile].of([OpenAIFile.of(f, engine) for f in page.data], page.has_more)


@router.get("/{file_id}", response_model=OpenAIFile)
async def retrieve_file(file_id: str, engine: EngineDep, tenant: Tenant) -> OpenAIFile:
    return OpenAIFile.of(engine.files.retrieve(file_id, tenant), engine)


@router.get("/{file_id}/content")
async def file_content(file_id: str, engine: EngineDep, tenant: Tenant) -> StreamingResponse:
    obj = engine.files.retrieve(file_id, tenant)
    headers = {"Content-Length": str(obj.bytes), **attachment(obj.filename)}
    return StreamingResponse(
        engine.files.iter_content(file_id, tenant), media_type=obj.mime_type, headers=headers
    )


@router.delete("/{file_id}", response_model=Deleted)
async def delete_file(file_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    engine.files.delete(file_id, tenant)
    return Deleted(id=file_id, object="file")
