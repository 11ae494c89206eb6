"""OpenAI-compatible vector stores: ``/v1/vector_stores``, their files, file batches, search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from ..paging import Deleted, Page
from ..retrieval import VectorStores
from ..retrieval.models import (
    ChunkingStrategy,
    ContentPage,
    ExpiresAfter,
    FileBatch,
    SearchPage,
    SearchRequest,
    VectorStore,
    VectorStoreFile,
)
from ..retrieval.requests import FileCreate, StoreCreate, WithAttributes, WithMetadata
from .auth import Tenant
from .deps import EngineDep, PagingDep

router = APIRouter(prefix="/v1/vector_stores", tags=["openai vector stores"])
FileStatusFilter = Literal["in_progress", "completed", "failed", "cancelled"]


async def _stores(engine: EngineDep) -> VectorStores:
    return engine.vector_stores.service


StoresDep = Annotated[VectorStores, Depends(_stores)]


class StoreUpdate(WithMetadata):
    name: str | None = Field(default=None, max_length=256)
    expires_after: ExpiresAfter | None = None


class FileUpdate(WithAttributes):
    pass


class BatchFile(FileCreate):
    pass


class BatchCreate(WithAttributes):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[BatchFile] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None


# --- stores ---


@router.post("", response_model=VectorStore)
async def create_store(body: StoreCreate, engine: EngineDep, tenant: Tenant) -> VectorStore:
    return await engine.vector_stores.create(owner=tenant, **dict(body))


@router.get("", response_model=Page[VectorStore])
async def list_stores(paging: PagingDep, stores: StoresDep, tenant: Tenant) -> Page[VectorStore]:
    return stores.list_stores(tenant, **paging.window())


@router.get("/{vector_store_id}", response_model=VectorStore)
async def retrieve_store(vector_store_id: str, stores: StoresDep, tenant: Tenant) -> VectorStore:
    return stores.retrieve(vector_store_id, tenant)


@router.post("/{vector_store_id}", response_model=VectorStore)
async def update_store(
    vector_store_id: str, body: StoreUpdate, stores: StoresDep, tenant: Tenant
) -> VectorStore:
    return stores.update(
        vector_store_id,
        tenant,
        name=body.name,
        metadata=body.metadata,
        expires_after=body.expires_after,
        clear_expiry="expires_after" in body.model_fields_set and body.expires_after is None,
    )


@router.delete("/{vector_store_id}", response_model=Deleted)
async def delete_store(vector_store_id: str, stores: StoresDep, tenant: Tenant) -> Deleted:
    stores.delete(vector_store_id, tenant)
    return Deleted(id=vector_store_id, object="vector_store.deleted")


@router.post("/{vector_store_id}/search", response_model=SearchPage)
async def search(
    vector_store_id: str, body: SearchRequest, engine: EngineDep, tenant: Tenant
) -> SearchPage:
    return await engine.vector_stores.search(vector_store_id, owner=tenant, **dict(body))


# --- files ---


@router.post("/{vector_store_id}/files", response_model=VectorStoreFile)
async def add_file(
    vector_store_id: str, body: FileCreate, engine: EngineDep, tenant: Tenant
) -> VectorStoreFile:
    return await engine.vector_stores.files.create(vector_store_id, owner=tenant, **dict(body))


@router.get("/{vector_store_id}/files", response_model=Page[VectorStoreFile])
async def list_files(
    vector_store_id: str,
    paging: PagingDep,
    stores: StoresDep,
    tenant: Tenant,
    filter: Annotated[FileStatusFilter | None, Query()] = None,
) -> Page[VectorStoreFile]:
    return stores.list_files(vector_store_id, tenant, status=filter, **paging.window())


@router.get("/{vector_store_id}/files/{file_id}", response_model=VectorStoreFile)
async def retrieve_file(
    vector_store_id: str, file_id: str, stores: StoresDep, tenant: Tenant
) -> VectorStoreFile:
    return stores.retrieve_file(vector_store_id, file_id, tenant)


@router.post("/{vector_store_id}/files/{file_id}", response_model=VectorStoreFile)
async def update_file(
    vector_store_id: str, file_id: str, body: FileUpdate, stores: StoresDep, tenant: Tenant
) -> VectorStoreFile:
    return stores.update_file(vector_store_id, file_id, tenant, body.attributes)


@router.delete("/{vector_store_id}/files/{file_id}", response_model=Deleted)
async def delete_file(
    vector_store_id: str, file_id: str, stores: StoresDep, tenant: Tenant
) -> Deleted:
    stores.delete_file(vector_store_id, file_id, tenant)
    return Deleted(id=file_id, object="vector_store.file.deleted")


@router.get("/{vector_store_id}/files/{file_id}/content", response_model=ContentPage)
async def file_content(
    vector_store_id: str, file_id: str, stores: StoresDep, tenant: Tenant
) -> ContentPage:
    return stores.file_content(vector_store_id, file_id, tenant)


# --- file batches ---


@router.post("/{vector_store_id}/file_batches", response_model=FileBatch)
async def create_batch(
    vector_store_id: str, body: BatchCreate, stores: StoresDep, tenant: Tenant
) -> FileBatch:
    from .. import errors

    if (body.file_ids is None) == (body.files is None):
        raise errors.InvalidRequest("send either file_ids or files (one of them, not both)")
    if body.files is not None:
        files = [(f.file_id, f.attributes, f.chunking_strategy) for f in body.files]
    else:
        files = [(f, body.attributes, body.chunking_strategy) for f in body.file_ids or []]
    return stores.create_batch(vector_store_id, tenant, files)


@router.get("/{vector_store_id}/file_batches/{batch_id}", response_model=FileBatch)
async def retrieve_batch(
    vector_store_id: str, batch_id: str, stores: StoresDep, tenant: Tenant
) -> FileBatch:
    return stores.retrieve_batch(vector_store_id, batch_id, tenant)


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel", response_model=FileBatch)
async def cancel_batch(
    vector_store_id: str, batch_id: str, stores: StoresDep, tenant: Tenant
) -> FileBatch:
    return stores.cancel_batch(vector_store_id, batch_id, tenant)


@router.get(
    "/{vector_store_id}/file_batches/{batch_id}/files", response_model=Page[VectorStoreFile]
)
async def list_batch_files(
    vector_store_id: str,
    batch_id: str,
    paging: PagingDep,
    stores: StoresDep,
    tenant: Tenant,
    filter: Annotated[FileStatusFilter | None, Query()] = None,
) -> Page[VectorStoreFile]:
    return stores.list_batch_files(
        vector_store_id, batch_id, tenant, status=filter, **paging.window()
    )
