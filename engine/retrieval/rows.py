"""Rows of the retrieval tables as API objects."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from ..store.base import FileCounter
from .index import ChunkIndex
from .models import FileCounts, StoredChunking, VectorStore, VectorStoreFile, loads_or


def to_file(row: dict[str, Any]) -> VectorStoreFile:
    return VectorStoreFile(
        id=row["id"],
        created_at=row["created_at"],
        usage_bytes=row["usage_bytes"],
        vector_store_id=row["vector_store_id"],
        status=row["status"],
        last_error=loads_or(row["last_error"]),
        attributes=loads_or(row["attributes"]),
        chunking_strategy=StoredChunking(static=json.loads(row["chunking"])),
    )


def to_store(index: ChunkIndex, row: dict[str, Any]) -> VectorStore:
    counts = file_counts(index, "vector_store_id", row["id"])
    expired = row["expires_at"] is not None and row["expires_at"] <= time.time()
    status: Literal["expired", "in_progress", "completed"] = (
        "expired" if expired else "in_progress" if counts.in_progress else "completed"
    )
    return VectorStore(
        id=row["id"],
        created_at=row["created_at"],
        name=row["name"],
        description=row["description"],
        usage_bytes=index.rows.usage_bytes(row["id"]),
        file_counts=counts,
        status=status,
        expires_after=loads_or(row["expires_after"]),
        expires_at=row["expires_at"],
        last_active_at=row["last_active_at"],
        metadata=loads_or(row["metadata"], {}),
    )


def file_counts(index: ChunkIndex, column: FileCounter, value: str) -> FileCounts:
    by_status = index.rows.file_counts(column, value)
    counts = FileCounts(**by_status)
    counts.total = sum(by_status.values())
    return counts
