"""Rows of the retrieval tables as API objects, and cursor paging over them (the rules of
``engine/paging.py``, with the cursor looked up among the listed rows only: a file id names
different rows in different stores)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from .. import errors
from ..paging import check_paging
from .index import ChunkIndex
from .models import FileCounts, StoredChunking, VectorStore, VectorStoreFile, loads_or


def page_rows(
    index: ChunkIndex,
    table: str,
    filters: dict[str, Any],
    *,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    check_paging(limit, order)
    where = [f"{k} = :{k}" for k in filters]
    params: dict[str, Any] = dict(filters)
    same = " AND ".join(where) or "1"
    for name, cursor, op in (
        ("after", after, ">" if order == "asc" else "<"),
        ("before", before, "<" if order == "asc" else ">"),
    ):
        if cursor is None:
            continue
        row = index.one(
            f"SELECT rowid FROM {table} WHERE {same} AND id = :c", {**params, "c": cursor}
        )
        if row is None:
            raise errors.InvalidRequest(
                f"{name} cursor {cursor!r} does not name an object of this list"
            )
        where.append(f"rowid {op} :{name}")
        params[name] = row["rowid"]
    direction = "ASC" if order == "asc" else "DESC"
    walk = (
        direction
        if before is None or after is not None
        else ("DESC" if direction == "ASC" else "ASC")
    )
    rows = index.all(
        f"SELECT rowid, * FROM {table} WHERE {' AND '.join(where) or '1'} "
        f"ORDER BY rowid {walk} LIMIT {limit + 1}",
        params,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if walk != direction:
        rows.reverse()
    return rows, more


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
    usage = index.one(
        "SELECT COALESCE(SUM(usage_bytes), 0) AS n FROM vs_files WHERE vector_store_id = ?",
        (row["id"],),
    )
    expired = row["expires_at"] is not None and row["expires_at"] <= time.time()
    status: Literal["expired", "in_progress", "completed"] = (
        "expired" if expired else "in_progress" if counts.in_progress else "completed"
    )
    return VectorStore(
        id=row["id"],
        created_at=row["created_at"],
        name=row["name"],
        description=row["description"],
        usage_bytes=usage["n"] if usage else 0,
        file_counts=counts,
        status=status,
        expires_after=loads_or(row["expires_after"]),
        expires_at=row["expires_at"],
        last_active_at=row["last_active_at"],
        metadata=loads_or(row["metadata"], {}),
    )


def file_counts(index: ChunkIndex, column: str, value: str) -> FileCounts:
    rows = index.all(
        f"SELECT status, COUNT(*) AS n FROM vs_files WHERE {column} = ? GROUP BY status",
        (value,),
    )
    counts = FileCounts(**{r["status"]: r["n"] for r in rows})
    counts.total = sum(r["n"] for r in rows)
    return counts
