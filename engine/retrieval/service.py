"""Vector stores: create, list, update and delete stores; add files (one by one or in batches);
search (``search.py`` runs it). Ingestion runs in the background (see ``ingest.py``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal

from .. import errors
from ..delegation import through
from ..errors import LastError
from ..files import FileStore
from ..paging import Page, page_query
from .embedders import Embedder
from .extract import file_kind
from .index import ChunkIndex, Mode
from .ingest import Ingestion
from .models import (
    Attributes,
    ChunkingStrategy,
    ContentPage,
    ExpiresAfter,
    FileBatch,
    FileErrorCode,
    SearchPage,
    SearchRequest,
    TextContent,
    VectorStore,
    VectorStoreFile,
    check_attributes,
    check_metadata,
    loads_or,
)
from .rows import file_counts, to_file, to_store
from .search import Fusion, search_page

DAY = 86400
ACTIVITY_RESOLUTION = 60
"""Seconds: last_active_at (and so expires_at) moves on at most once a minute."""


class StoreNotFound(errors.NotFound):
    code = "vector_store_not_found"


class StoreExpired(errors.InvalidRequest):
    code = "vector_store_expired"


@dataclass(eq=False)
class VectorStores:
    """Vector stores, their files and batches, and search over them."""

    ingestion: Ingestion
    _: KW_ONLY
    max_file_bytes: int
    # The stores index, read and embed what their ingestion does: one of each, given once.
    index = through[ChunkIndex]("ingestion.index")
    files = through[FileStore]("ingestion.files")
    embedder = through[Embedder | None]("ingestion.embedder")

    # --- stores ---

    def create(
        self,
        owner: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        expires_after: ExpiresAfter | None = None,
        file_ids: Sequence[str] = (),
        chunking_strategy: ChunkingStrategy | None = None,
    ) -> VectorStore:
        check_metadata(metadata)
        for file_id in file_ids:
            if not isinstance(file_id, str):
                raise errors.InvalidRequest("a file id must be a string")
            self.files.retrieve(file_id, owner)  # unknown ids refuse; bad types fail alone
        now = int(time.time())
        store_id = f"vs_{secrets.token_hex(12)}"
        self.index.rows.add_store(
            {
                "id": store_id,
                "owner": owner,
                "name": name or "",
                "description": description,
                "created_at": now,
                "last_active_at": now,
                "metadata": json.dumps(metadata or {}),
                "expires_after": expires_after.model_dump_json() if expires_after else None,
                "expires_at": now + expires_after.days * DAY if expires_after else None,
            }
        )
        for file_id in dict.fromkeys(file_ids):
            self._add(store_id, file_id, owner, None, chunking_strategy, None)
        return self.retrieve(store_id, owner)

    def _row(self, store_id: object, owner: str | None) -> dict[str, Any]:
        if not isinstance(store_id, str):
            raise errors.InvalidRequest("a vector store id must be a string")
        row = self.index.rows.store(store_id)
        if row is None or (owner is not None and row["owner"] != owner):
            raise StoreNotFound(f"no vector store with id {store_id!r}")
        return row

    def retrieve(self, store_id: str, owner: str | None = None) -> VectorStore:
        return to_store(self.index, self._row(store_id, owner))

    def list_stores(self, owner: str, **window: Any) -> Page[VectorStore]:
        rows, more = page_query(self.index.rows, "vector_stores", {"owner": owner}, **window)
        return Page[VectorStore].of([to_store(self.index, r) for r in rows], more)

    def update(
        self,
        store_id: str,
        owner: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        expires_after: ExpiresAfter | None = None,
        clear_expiry: bool = False,
    ) -> VectorStore:
        row = self._row(store_id, owner)
        check_metadata(metadata)
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if metadata is not None:
            fields["metadata"] = json.dumps(metadata)
        if expires_after is not None:
            fields["expires_after"] = expires_after.model_dump_json()
            fields["expires_at"] = row["last_active_at"] + expires_after.days * DAY
        elif clear_expiry:
            fields["expires_after"] = fields["expires_at"] = None
        if fields:
            self.index.rows.update_store(store_id, **fields)
        return self.retrieve(store_id, owner)

    def delete(self, store_id: str, owner: str) -> None:
        self._row(store_id, owner)
        self.index.delete_store(store_id)

    def usable(self, store_id: str, owner: str | None) -> dict[str, Any]:
        """A store that may be searched (not expired); searching it counts as activity."""
        row = self._row(store_id, owner)
        now = int(time.time())
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise StoreExpired(f"vector store {store_id} has expired; create a new one")
        if now - row["last_active_at"] >= ACTIVITY_RESOLUTION:  # not a write per search
            after = loads_or(row["expires_after"])
            expires_at = now + after["days"] * DAY if after else None
            self.index.rows.update_store(store_id, last_active_at=now, expires_at=expires_at)
        return row

    # --- files ---

    def _check_file(self, file_id: object, owner: str) -> tuple[str, int]:
        if not isinstance(file_id, str):
            raise errors.InvalidRequest("a file id must be a string")
        obj = self.files.retrieve(file_id, owner)
        file_kind(obj.filename)
        if obj.bytes > self.max_file_bytes:
            raise errors.PayloadTooLarge(
                f"file {file_id} has {obj.bytes} bytes; file_search takes files up to "
                f"{self.max_file_bytes} bytes (SANDBOX_FILE_SEARCH_MAX_FILE_MB)"
            )
        return obj.filename, obj.bytes

    def add_file(
        self,
        store_id: str,
        file_id: str,
        owner: str,
        *,
        attributes: Attributes | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
    ) -> VectorStoreFile:
        self.usable(store_id, owner)
        check_attributes(attributes)
        self._check_file(file_id, owner)
        self._add(store_id, file_id, owner, attributes, chunking_strategy, None)
        return self.retrieve_file(store_id, file_id, owner)

    def _add(
        self,
        store_id: str,
        file_id: str,
        owner: str,
        attributes: Attributes | None,
        chunking: ChunkingStrategy | None,
        batch_id: str | None,
    ) -> None:
        """A file row, in progress (or failed at once when its type is unsupported), queued."""
        obj = self.files.keep(file_id, owner)  # a session's output must not leave the store
        status, error = "in_progress", None
        try:
            self._check_file(file_id, owner)
        except errors.EngineError as exc:
            kind: Literal["unsupported_file", "invalid_file"] = (
                "unsupported_file" if exc.code == "unsupported_file" else "invalid_file"
            )
            status, error = (
                "failed",
                LastError[FileErrorCode](code=kind, message=str(exc)).model_dump_json(),
            )
        self.index.delete_file(store_id, file_id)  # adding a file again re-ingests it
        self.index.rows.add_file(
            {
                "vector_store_id": store_id,
                "id": file_id,
                "owner": owner,
                "filename": obj.filename,
                "created_at": int(time.time()),
                "status": status,
                "last_error": error,
                "attributes": json.dumps(attributes) if attributes is not None else None,
                "chunking": (chunking or ChunkingStrategy()).resolved().model_dump_json(),
                "batch_id": batch_id,
            }
        )
        if status == "in_progress":
            self.ingestion.submit(store_id, file_id)

    def _file_row(self, store_id: str, file_id: object) -> dict[str, Any]:
        row = self.index.rows.file(store_id, file_id if isinstance(file_id, str) else "")
        if row is None:
            raise errors.FileNotFound(f"no file {file_id!r} in vector store {store_id}")
        return row

    def retrieve_file(self, store_id: str, file_id: str, owner: str | None) -> VectorStoreFile:
        self._row(store_id, owner)
        return to_file(self._file_row(store_id, file_id))

    def list_files(
        self,
        store_id: str,
        owner: str,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        **window: Any,
    ) -> Page[VectorStoreFile]:
        self._row(store_id, owner)
        filters: dict[str, Any] = {"vector_store_id": store_id}
        if status is not None:
            filters["status"] = status
        if batch_id is not None:
            filters["batch_id"] = batch_id
        rows, more = page_query(self.index.rows, "vs_files", filters, **window)
        return Page[VectorStoreFile].of([to_file(r) for r in rows], more)

    def update_file(
        self, store_id: str, file_id: str, owner: str, attributes: Attributes | None
    ) -> VectorStoreFile:
        self._row(store_id, owner)
        self._file_row(store_id, file_id)
        check_attributes(attributes)
        self.index.rows.set_attributes(
            store_id, file_id, json.dumps(attributes) if attributes is not None else None
        )
        self.index.touch(store_id)
        return self.retrieve_file(store_id, file_id, owner)

    def delete_file(self, store_id: str, file_id: str, owner: str) -> None:
        self._row(store_id, owner)
        self._file_row(store_id, file_id)
        self.index.delete_file(store_id, file_id)

    def forget_file(self, file_id: str, owner: str) -> list[str]:
        """The file object was deleted: it leaves every vector store, as with OpenAI."""
        return self.index.delete_file_everywhere(file_id, owner)

    def forget_deleted_files(self) -> int:
        """Drop files deleted while no vector store service listened. Returns how many."""
        rows = self.index.rows.file_owners()
        owners = self.files.owners(file_id for file_id, _ in rows)
        return sum(
            len(self.forget_file(file_id, owner))
            for file_id, owner in rows
            if owners.get(file_id) != owner
        )

    def file_content(self, store_id: str, file_id: str, owner: str) -> ContentPage:
        self._row(store_id, owner)
        row = self._file_row(store_id, file_id)
        text = self.index.file_text(store_id, file_id)
        if row["status"] != "completed" or text is None:
            raise errors.InvalidRequest(
                f"file {file_id} is {row['status']}: its content is there once it is completed"
            )
        return ContentPage(data=[TextContent(text=text)])

    # --- batches ---

    def create_batch(
        self,
        store_id: str,
        owner: str,
        files: list[tuple[str, Attributes | None, ChunkingStrategy | None]],
    ) -> FileBatch:
        self.usable(store_id, owner)
        if not files or len(files) > 2000:
            raise errors.InvalidRequest("a batch holds 1 to 2000 files")
        for file_id, attributes, _ in files:
            check_attributes(attributes)
            if not isinstance(file_id, str):
                raise errors.InvalidRequest("a file id must be a string")
            self.files.retrieve(
                file_id, owner
            )  # unknown ids refuse the batch; bad types fail alone
        batch_id = f"vsfb_{secrets.token_hex(12)}"
        self.index.rows.add_batch(batch_id, store_id, owner, int(time.time()))
        for file_id, attributes, chunking in {f[0]: f for f in files}.values():
            self._add(store_id, file_id, owner, attributes, chunking, batch_id)
        return self.retrieve_batch(store_id, batch_id, owner)

    def retrieve_batch(self, store_id: str, batch_id: str, owner: str) -> FileBatch:
        self._row(store_id, owner)
        row = self.index.rows.batch(store_id, batch_id)
        if row is None:
            raise errors.NotFound(f"no file batch {batch_id!r} in vector store {store_id}")
        counts = file_counts(self.index, "batch_id", batch_id)
        status = row["status"]
        if status == "in_progress" and not counts.in_progress:
            status = "completed"
        return FileBatch(
            id=batch_id,
            created_at=row["created_at"],
            vector_store_id=store_id,
            status=status,
            file_counts=counts,
        )

    def cancel_batch(self, store_id: str, batch_id: str, owner: str) -> FileBatch:
        batch = self.retrieve_batch(store_id, batch_id, owner)
        if batch.status == "in_progress":
            self.index.rows.cancel_batch(batch_id)
        return self.retrieve_batch(store_id, batch_id, owner)

    def list_batch_files(
        self, store_id: str, batch_id: str, owner: str, **kwargs: Any
    ) -> Page[VectorStoreFile]:
        self.retrieve_batch(store_id, batch_id, owner)
        return self.list_files(store_id, owner, batch_id=batch_id, **kwargs)

    # --- search ---

    async def search(
        self,
        store_ids: list[str],
        owner: str | None,
        request: SearchRequest,
        *,
        mode: Mode = "hybrid",
        fusion: Fusion = "weighted",
        rerank: bool = True,
    ) -> SearchPage:
        for store_id in store_ids:
            self.usable(store_id, owner)
        return await search_page(
            self.index, self.embedder, store_ids, request, mode=mode, fusion=fusion, rerank=rerank
        )
