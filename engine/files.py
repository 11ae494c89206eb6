"""File objects, shaped like OpenAI's: bytes in a blob store (the data folder, or S3),
metadata in the store."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import mimetypes
import os
import secrets
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal

from pydantic import BaseModel, Field

from . import errors, metrics
from .blobs import BlobStore, LocalBlobs, sweep_before
from .config import MB
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


class FileHead(BaseModel):
    """What the engine's file object and OpenAI's (``/v1/files``) both begin with."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str


class FileObject(FileHead):
    mime_type: str
    status: Literal["processed"] = "processed"
    session_id: str | None = None
    """For outputs: the session whose code wrote the file."""
    path: str | None = None
    """For outputs: where it was in the sandbox, e.g. ``/mnt/data/chart.png``."""
    expires_with_session: bool = False
    """For outputs: deleted when ``session_id`` ends, unless kept (cited, or ``keep``)."""
    owner: str = Field(default="", exclude=True)


@dataclass(frozen=True)
class FileQuota:
    """What one tenant's file objects may take, and the free space kept on the disk."""

    files: int
    bytes: int
    reserve: int
    """Bytes kept free for the store; at most a tenth of the disk."""


class FileStore:
    """Create, retrieve, list, read and delete file objects.

    Bytes are written to a temp file (checked against the size cap and the quota as they come),
    flushed to disk and moved into the blob store before the row is committed; ``sweep``
    removes what a crash left between the two.
    """

    def __init__(
        self,
        store: Store,
        root: Path,
        max_bytes: int,
        quota: FileQuota | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        """``blobs``: where the bytes go; by default the folder ``root/blobs``."""
        self._store = store
        self.root = root
        self.max_bytes = max_bytes
        self.quota = quota
        self._lock = threading.Lock()
        self._writing: dict[str, dict[str, int]] = {}
        """Per owner: the uploads being written, and their bytes so far."""
        self._added: dict[str, int] = {}
        """Per owner: bytes committed by this process, so a check mid-write sees them."""
        self.blobs: BlobStore = blobs or LocalBlobs(root / "blobs")
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._delete_hooks: list[DeleteHook] = []

    def on_delete(self, hook: DeleteHook) -> Callable[[], None]:
        """Run ``hook`` after every delete (a higher layer drops what it derived from the
        file, e.g. its vector store chunks). Returns a function that unregisters it."""
        self._delete_hooks.append(hook)
        return lambda: self._delete_hooks.remove(hook) if hook in self._delete_hooks else None

    def sweep(self) -> int:
        """Remove temp files and blobs with no row. Returns how many were removed."""
        started = time.time()
        removed = 0
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        known = self._store.file_rows.ids()
        cutoff = sweep_before(self.blobs, started)
        for blob in self.blobs.listed():
            if blob.name not in known and blob.mtime <= cutoff:
                self.blobs.remove(blob)
                removed += 1
        return removed

    def open_blob(self, file_id: str, owner: str | None = None) -> BinaryIO:
        """The file's bytes as a stream to read (blocking: call it off the event loop).
        ``FileNotFound`` if ``owner`` (any, when None) has no such file object."""
        obj = self.retrieve(file_id, owner)
        try:
            return self.blobs.open(obj.owner, obj.id)
        except FileNotFoundError as exc:
            raise errors.FileNotFound(f"the content of file {file_id!r} is missing") from exc

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
        keep: bool = False,
        replaces: str | None = None,
    ) -> FileObject:
        """A new file object. One with a ``session_id`` ends with that session unless
        ``keep``; ``replaces`` names a file object it stands in for, not counted in the quota."""
        if filename is None:
            filename = os.path.basename(str(getattr(data, "name", "") or "")) or "file"
        filename = check_filename(filename)
        if purpose not in PURPOSES:
            raise errors.InvalidRequest(
                f"purpose must be one of {sorted(PURPOSES)}, not {purpose!r}"
            )
        file_id = f"file-{secrets.token_hex(12)}"
        tmp = self._tmp / file_id
        check = self._admit(owner, file_id, replaces)
        try:
            size, digest = await self._write(data, tmp, check)
            await asyncio.to_thread(self.blobs.put_file, owner, file_id, tmp)
        except OSError as exc:
            self._settle(owner, file_id, 0)
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise errors.StorageFull(f"the engine's data folder is full: {exc}") from exc
            raise
        except BaseException:
            self._settle(owner, file_id, 0)
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
            expires_with_session=session_id is not None and not keep,
            owner=owner,
        )
        row = obj.model_dump(exclude={"object", "status", "expires_with_session"})
        try:
            self._store.file_rows.add(
                {
                    **row,
                    "owner": owner,
                    "sha256": digest,
                    "expires_with_session": 1 if obj.expires_with_session else None,
                },
            )
        except BaseException:
            self._settle(owner, file_id, 0)
            self.blobs.delete(owner, file_id)
            raise
        self._settle(owner, file_id, size)
        metrics.FILES_CREATED.labels(purpose).inc()
        return obj

    # --- quotas ---

    def usage(self, owner: str, *, excluding: str | None = None) -> tuple[int, int]:
        """How many file objects ``owner`` holds, and their bytes."""
        return self._store.file_rows.usage(owner, excluding)

    def _admit(self, owner: str, file_id: str, replaces: str | None) -> Callable[[int, int], None]:
        """Refuse a new file object over the owner's count quota; else register it as being
        written and return the check its writer runs on every chunk (bytes quota, reserve)."""
        quota = self.quota
        with self._lock:
            count, stored = self.usage(owner, excluding=replaces)
            writing = self._writing.setdefault(owner, {})
            if quota is not None and count + len(writing) >= quota.files:
                raise errors.QuotaExceeded(
                    f"{count + len(writing)} file objects (uploads and outputs) already",
                    quota.files,
                    "",
                    "SANDBOX_MAX_FILES_PER_OWNER",
                )
            writing[file_id] = 0
            added_then = self._added.get(owner, 0)

        def check(size: int, chunk: int) -> None:
            if quota is None:
                return
            with self._lock:
                being_written = self._writing.setdefault(owner, {})
                being_written[file_id] = size
                since = self._added.get(owner, 0) - added_then
                total = stored + since + sum(being_written.values())
            if total > quota.bytes:
                raise errors.QuotaExceeded(
                    f"this file would bring the tenant's file objects to {total} bytes",
                    quota.bytes // MB,
                    " MB",
                    "SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER",
                )
            self._check_reserve(chunk)

        return check

    def _settle(self, owner: str, file_id: str, committed: int) -> None:
        with self._lock:
            writing = self._writing.get(owner, {})
            writing.pop(file_id, None)
            if not writing:
                self._writing.pop(owner, None)
            self._added[owner] = self._added.get(owner, 0) + committed

    def _check_reserve(self, chunk: int) -> None:
        if self.quota is None or not self.quota.reserve:
            return
        disk = os.statvfs(self._tmp)
        free = disk.f_bavail * disk.f_frsize
        reserve = min(self.quota.reserve, disk.f_blocks * disk.f_frsize // 10)
        if free - chunk < reserve:
            raise errors.StorageFull(
                f"the engine's data folder is nearly full: {free} bytes free, and "
                f"{reserve} bytes are kept for the store (setting SANDBOX_DISK_RESERVE_MB)"
            )

    async def _write(
        self, data: Source, tmp: Path, check: Callable[[int, int], None]
    ) -> tuple[int, str]:
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
                check(size, len(chunk))
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
        return _to_file(self._store.file_rows.owned(file_id, owner, missing))

    def owners(self, file_ids: Iterable[str]) -> dict[str, str]:
        """The owner of each of ``file_ids`` that exists (one query per 500 ids)."""
        return self._store.file_rows.owners(list(dict.fromkeys(file_ids)))

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
        obj = self.retrieve(file_id, owner)
        return self._chunks(obj.owner, file_id)

    async def _chunks(self, owner: str, file_id: str) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(self.blobs.open, owner, file_id)
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
        self._store.file_rows.delete(file_id)
        self.blobs.delete(obj.owner, file_id)
        for hook in list(self._delete_hooks):
            hook(file_id, obj.owner)

    # --- outputs and their session's lifetime ---

    def keep(self, file_id: str, owner: str | None = None) -> FileObject:
        """Promote an output: it no longer ends with its session (deleted only by the user)."""
        obj = self.retrieve(file_id, owner)
        if obj.expires_with_session:
            self._store.file_rows.keep(file_id)
        return obj.model_copy(update={"expires_with_session": False})

    def keep_all(self, file_ids: Iterable[str], owner: str | None = None) -> None:
        """Promote every one of ``file_ids`` that is still there (what a message cites)."""
        for file_id in dict.fromkeys(file_ids):
            with contextlib.suppress(errors.NotFound):
                self.keep(file_id, owner)

    def ends_with(self, file_id: str, session_id: str) -> bool:
        """Whether ``file_id`` is an output of ``session_id`` that nobody kept."""
        return self._store.file_rows.ends_with(file_id, session_id)

    def drop_output(self, file_id: str, session_id: str) -> bool:
        """Delete ``file_id`` if it is an output of ``session_id`` that ends with it."""
        if not self.ends_with(file_id, session_id):
            return False
        with contextlib.suppress(errors.NotFound):
            self.delete(file_id)
        return True

    def drop_session_outputs(self, session_id: str) -> int:
        """Delete the outputs of an ended session that nobody kept. Returns how many."""
        outputs = self._store.file_rows.session_outputs(session_id)
        for file_id in outputs:
            with contextlib.suppress(errors.NotFound):
                self.delete(file_id)
        return len(outputs)


def _to_file(row: dict[str, Any]) -> FileObject:
    fields = {k: v for k, v in row.items() if k != "sha256"}
    fields["expires_with_session"] = bool(row.get("expires_with_session"))
    return FileObject.model_validate(fields)
