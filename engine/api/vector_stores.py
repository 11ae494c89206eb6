"""OpenAI-compatible vector stores: ``/v1/vector_stores``, their files, file batches, search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ..paging import Deleted, Page
from ..retrieval import models
from ..retrieval.requests import BatchCreate, FileCreate, FileUpdate, StoreCreate, StoreUpdate
from .auth import Tenant
from .deps import EngineDep, PagingDep

router = APIRouter(prefix="/v1/vector_stores", tags=["openai vector stores"])
FileStatusFilter = Literal["in_progress", "completed", "failed", "cancelled"]


# --- stores ---


@router.post("", response_model=models.VectorStore)
async def create_store(body: StoreCreate, engine: EngineDep, tenant: Tenant) -> models.VectorStore:
    return await engine.vector_stores.create(owner=tenant, **dict(body))


@router.get("", response_model=Page[models.VectorStore])
async def list_stores(
    paging: PagingDep, engine: EngineDep, tenant: Tenant
) -> Page[models.VectorStore]:
    return await engine.vector_stores.list(owner=tenant, **paging.window())


@router.get("/{vector_store_id}", response_model=models.VectorStore)
async def retrieve_store(
    vector_store_id: str, engine: EngineDep, tenant: Tenant
) -> models.VectorStore:
    return await engine.vector_stores.retrieve(vector_store_id, owner=tenant)


@router.post("/{vector_store_id}", response_model=models.VectorStore)
async def update_store(
    vector_store_id: str, body: StoreUpdate, engine: EngineDep, tenant: Tenant
) -> models.VectorStore:
    fields = body.model_dump(exclude_unset=True)
    return await engine.vector_stores.update(vector_store_id, owner=tenant, **fields)


@router.delete("/{vector_store_id}", response_model=Deleted)
async def delete_store(vector_store_id: str, engine: EngineDep, tenant: Tenant) -> Deleted:
    return await engine.vector_stores.delete(vector_store_id, owner=tenant)


@router.post("/{vector_store_id}/search", response_model=models.SearchPage)
async def search(
    vector_store_id: str, body: models.SearchRequest, engine: EngineDep, tenant: Tenant
) -> models.SearchPage:
    return await engine.vector_stores.search(vector_store_id, owner=tenant, **dict(body))


# --- files ---


@router.post("/{vector_store_id}/files", response_model=models.VectorStoreFile)
async def add_file(
    vector_store_id: str, body: FileCreate, engine: EngineDep, tenant: Tenant
) -> models.VectorStoreFile:
    return await engine.vector_stores.files.create(vector_store_id, owner=tenant, **dict(body))


@router.get("/{vector_store_id}/files", response_model=Page[models.VectorStoreFile])
async def list_files(
    vector_store_id: str,
    paging: PagingDep,
    engine: EngineDep,
    tenant: Tenant,
    filter: Annotated[FileStatusFilter | None, Query()] = None,
) -> Page[models.VectorStoreFile]:
    return await engine.vector_stores.files.list(
        vector_store_id, owner=tenant, filter=filter, **paging.window()
    )


@router.get("/{vector_store_id}/files/{file_id}", response_model=models.VectorStoreFile)
async def retrieve_file(
    vector_store_id: str, file_id: str, engine: EngineDep, tenant: Tenant
) -> models.VectorStoreFile:
    return await engine.vector_stores.files.retrieve(
        file_id, vector_store_id=vector_store_id, owner=tenant
    )


@router.post("/{vector_store_id}/files/{file_id}", response_model=models.VectorStoreFile)
async def update_file(
    vector_store_id: str, file_id: str, body: FileUpdate, engine: EngineDep, tenant: Tenant
) -> models.VectorStoreFile:
    return await engine.vector_stores.files.update(
        file_id, vector_store_id=vector_store_id, owner=tenant, **dict(body)
    )


@router.delete("/{vector_store_id}/files/{file_id}", response_model=Deleted)
async def delete_file(
    vector_store_id: str, file_id: str, engine: EngineDep, tenant: Tenant
) -> Deleted:
    return await engine.vector_stores.files.delete(
        file_id, vector_store_id=vector_store_id, owner=tenant
    )


@router.get("/{vector_store_id}/files/{file_id}/content", response_model=models.ContentPage)
async def file_content(
    vector_store_id: str, file_id: str, engine: EngineDep, tenant: Tenant
) -> models.ContentPage:
    return await engine.vector_stores.files.content(
        file_id, vector_store_id=vector_store_id, owner=tenant
    )


# --- file batches ---


@router.post("/{vector_store_id}/file_batches", response_model=models.FileBatch)
async def create_batch(
    vector_store_id: str, body: BatchCreate, engine: EngineDep, tenant: Tenant
) -> models.FileBatch:
    fields = body.model_dump(exclude_unset=True)
    return await engine.vector_stores.file_batches.create(vector_store_id, owner=tenant, **fields)


@router.get("/{vector_store_id}/file_batches/{batch_id}", response_model=models.FileBatch)
async def retrieve_batch(
    vector_store_id: str, batch_id: str, engine: EngineDep, tenant: Tenant
) -> models.FileBatch:
    return await engine.vector_stores.file_batches.retrieve(
        batch_id, vector_store_id=vector_store_id, owner=tenant
    )


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel", response_model=models.FileBatch)
async def cancel_batch(
    vector_store_id: str, batch_id: str, engine: EngineDep, tenant: Tenant
) -> models.FileBatch:
    return await engine.vector_stores.file_batches.cancel(
        batch_id, vector_store_id=vector_store_id, owner=tenant
    )


@router.get(
    "/{vector_store_id}/file_batches/{batch_id}/files", response_model=Page[models.VectorStoreFile]
)
async def list_batch_files(
    vector_store_id: str,
    batch_id: str,
    paging: PagingDep,
    engine: EngineDep,
    tenant: Tenant,
    filter: Annotated[FileStatusFilter | None, Query()] = None,
) -> Page[models.VectorStoreFile]:
    return await engine.vector_stores.file_batches.list_files(
        batch_id, vector_store_id=vector_store_id, owner=tenant, filter=filter, **paging.window()
    )
