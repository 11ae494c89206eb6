"""File objects, shaped like OpenAI's: bytes on local disk, metadata in the store."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import mimetypes
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field

from . import errors, metrics
from .names import check_filename
from .paging import Page, page_query
from .store import Store

PURPOSES = frozenset(
    {
        "assistants",
        "assistants_output",
        "user_data",
        "batch",
        "batch_output",
        "fine-tune",
        "vision",
        "evals",
    }
)
CHUNK = 1024 * 1024
# The seeds' table of supported types, where Python's mimetypes differs or knows nothing.
_EXTRA_TYPES = {
    ".c": "text/x-c",
    ".cpp": "text/x-c++",
    ".csv": "text/csv",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".java": "text/x-java",
    ".json": "application/json",
    ".md": "text/markdown",
    ".php": "text/x-php",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".py": "text/x-python",
    ".rb": "text/x-ruby",
    ".tex": "text/x-tex",
    ".ts": "application/typescript",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".js": "text/javascript",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
}

Source = bytes | IO[bytes] | AsyncIterable[bytes] | Iterable[bytes]
DeleteHook = Callable[[str, str], object]
"""Called with (file id, owner) after a file object is deleted."""


def guess_mime_type(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    guessed = _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0]
    return guessed or "application/octet-stream"


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    mime_type: str
    status: Literal["processed"] = "processed"
    session_id: str | None = None
    """For outputs: the session whose code wrote the file."""
    path: str | None = None
    """For outputs: where it was in the sandbox, e.g. ``/mnt/data/chart.png``."""
    owner: str = Field(default="", exclude=True)


class FileStore:
    """Create, retrieve, list, read and delete file objects.

    Bytes are written to a temp file, flushed to disk and renamed into place before the row is
    committed; ``sweep`` removes what a crash left between the two.
    """

    def __init__(self, store: Store, root: Path, max_bytes: int) -> None:
        self._store = store
        self.root = root
        self.max_bytes = max_bytes
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._delete_hooks: list[DeleteHook] = []

    def on_delete(self, hook: DeleteHook) -> Callable[[], None]:
        """Run ``hook`` after every delete (a higher layer drops what it derived from the
        file, e.g. its vector store chunks). Returns a function that unregisters it."""
        self._delete_hooks.append(hook)
        return lambda: self._delete_hooks.remove(hook) if hook in self._delete_hooks else None

    def sweep(self) -> int:
        """Remove temp files and blobs with no row. Returns how many were removed."""
        removed = 0
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        known = {r["id"] for r in self._store.all("SELECT id FROM files")}
        for blob in self._blobs.iterdir():
            if blob.name not in known:
                blob.unlink(missing_ok=True)
                removed += 1
        return removed

    def blob_path(self, file_id: str) -> Path:
        return self._blobs / file_id

    async def create(
        self,
        data: Source,
        filename: str | None = None,
        purpose: str = "assistants",
        *,
        owner: str = "",
        session_id: str | None = None,
        path: str | None = None,
        mime_type: str | None = None,
    ) -> FileObject:
        if filename is None:
            filename = os.path.basename(str(getattr(data, "name", "") or "")) or "file"
        filename = check_filename(filename)
        if purpose not in PURPOSES:
            raise errors.InvalidRequest(
                f"purpose must be one of {sorted(PURPOSES)}, not {purpose!r}"
            )
        file_id = f"file-{secrets.token_hex(12)}"
        tmp = self._tmp / file_id
        try:
            size, digest = await self._write(data, tmp)
            os.replace(tmp, self._blobs / file_id)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise errors.StorageFull(f"the engine's data folder is full: {exc}") from exc
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        obj = FileObject(
            id=file_id,
            bytes=size,
            created_at=int(time.time()),
            filename=filename,
            purpose=purpose,
            mime_type=mime_type or guess_mime_type(filename),
            session_id=session_id,
            path=path,
            owner=owner,
        )
        try:
            self._store.insert(
                "files",
                {**obj.model_dump(exclude={"object", "status"}), "owner": owner, "sha256": digest},
            )
        except BaseException:
            (self._blobs / file_id).unlink(missing_ok=True)
            raise
        metrics.FILES_CREATED.labels(purpose).inc()
        return obj

    async def _write(self, data: Source, tmp: Path) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        out = await asyncio.to_thread(open, tmp, "xb")
        with out:

            def put(chunk: bytes) -> None:
                nonlocal size
                size += len(chunk)
                if size > self.max_bytes:
                    raise errors.PayloadTooLarge(
                        f"the file is larger than the {self.max_bytes} byte limit"
                    )
                digest.update(chunk)
                out.write(chunk)

            if isinstance(data, bytes | bytearray | memoryview):
                data = io.BytesIO(bytes(data))
            if isinstance(data, AsyncIterable):
                async for chunk in data:
                    put(bytes(chunk))
            elif hasattr(data, "read"):
                reader: IO[bytes] = data  # type: ignore[assignment]

                def copy() -> None:
                    while chunk := reader.read(CHUNK):
                        if not isinstance(chunk, bytes | bytearray):
                            raise errors.InvalidRequest("file content must be bytes")
                        put(bytes(chunk))

                await asyncio.to_thread(copy)
            elif isinstance(data, Iterable):
                for chunk in data:
                    put(bytes(chunk))
            else:
                raise errors.InvalidRequest(
                    f"file content must be bytes or a binary file, not {type(data).__name__}"
                )
            out.flush()
            os.fsync(out.fileno())
        return size, digest.hexdigest()

    def retrieve(self, file_id: str, owner: str | None = None) -> FileObject:
        missing = errors.FileNotFound(f"no file with id {file_id!r}")
        return _to_file(self._store.owned("files", file_id, owner, missing))

    def list(
        self,
        owner: str | None = None,
        *,
        purpose: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[FileObject]:
        filters: dict[str, Any] = {}
        if owner is not None:
            filters["owner"] = owner
        if purpose is not None:
            filters["purpose"] = purpose
        rows, has_more = page_query(
            self._store, "files", filters, limit=limit, order=order, after=after, before=before
        )
        return Page[FileObject].of([_to_file(r) for r in rows], has_more)

    def iter_content(self, file_id: str, owner: str | None = None) -> AsyncIterator[bytes]:
        """The file's bytes, streamed in chunks. Unknown ids raise here, not mid-stream."""
        self.retrieve(file_id, owner)
        return self._chunks(self._blobs / file_id)

    @staticmethod
    async def _chunks(path: Path) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk
        finally:
            f.close()

    async def content(self, file_id: str, owner: str | None = None) -> bytes:
        """The file's bytes, whole."""
        return b"".join([chunk async for chunk in self.iter_content(file_id, owner)])

    def delete(self, file_id: str, owner: str | None = None) -> None:
        obj = self.retrieve(file_id, owner)
        self._store.execute("DELETE FROM files WHERE id = ?", (file_id,))
        (self._blobs / file_id).unlink(missing_ok=True)
        for hook in list(self._delete_hooks):
            hook(file_id, obj.owner)


def _to_file(row: dict[str, Any]) -> FileObject:
    return FileObject.model_validate({k: v for k, v in row.items() if k != "sha256"})
