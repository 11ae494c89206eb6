"""Background ingestion: extract, chunk, embed and index each queued file.

Workers take up to ``batch`` files at a time, so that the embedder sees full batches even when
files are small. Documents that need the parser go instead to a queue of their owner's, worked
one at a time by a task of that tenant: a slow or hanging parse holds up only its own tenant,
never the workers or another tenant's files. A file fails alone: its ``last_error`` says why,
and the others go on. Work is idempotent (a file's chunks are replaced in one transaction), so
after a restart every file still ``in_progress`` is simply queued again: none stays in
progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import KW_ONLY, dataclass, field

from .. import errors
from ..errors import LastError
from ..files import FileStore
from .chunking import chunk_text, sentences
from .embedders import Embedder
from .extract import (
    PARSED_TYPES,
    TEXT_TYPES,
    DocumentParser,
    InvalidFile,
    UnsupportedFile,
    decode_text,
    file_kind,
)
from .index import ChunkIndex, sentence_digest
from .models import FileErrorCode, StaticChunking

log = logging.getLogger("engine.retrieval")


@dataclass
class _Prepared:
    store_id: str
    file_id: str
    text: str
    chunks: list[str]


@dataclass(eq=False)
class Ingestion:
    index: ChunkIndex
    files: FileStore
    parser: DocumentParser | None
    embedder: Embedder | None
    _: KW_ONLY
    workers: int = 2
    batch: int = 16
    max_chars: int = 5_000_000
    _queue: asyncio.Queue[tuple[str, str]] = field(init=False, default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _documents: dict[str, deque[tuple[str, str]]] = field(init=False, default_factory=dict)
    _tenant_tasks: dict[str, asyncio.Task[None]] = field(init=False, default_factory=dict)
    _document_slots: asyncio.Semaphore = field(init=False)
    """Taken before a document is read, so that waiting tenants hold none of its bytes."""

    def __post_init__(self) -> None:
        self._document_slots = asyncio.Semaphore(self.workers)

    def start(self, resume: bool = True) -> int:
        """Start the workers; with ``resume``, queue every file a previous process left in
        progress (a guest engine leaves them to the data folder's primary)."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"ingest-{n}") for n in range(self.workers)
        ]
        if not resume:
            return 0
        left = self.index.rows.in_progress()
        for store_and_file in left:
            self._queue.put_nowait(store_and_file)
        return len(left)

    def submit(self, store_id: str, file_id: str) -> None:
        self._queue.put_nowait((store_id, file_id))

    async def idle(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        tasks = [*self._tasks, *self._tenant_tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self.batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            inline = []
            for job in jobs:
                owner = self._document_owner(*job)
                if owner is None:
                    inline.append(job)
                else:
                    self._hand_off(owner, job)
            try:
                await self._guarded(inline)
            finally:
                for _ in inline:
                    self._queue.task_done()

    async def _guarded(self, jobs: list[tuple[str, str]]) -> None:
        try:
            await self._ingest(jobs)
        except Exception:  # a bug must not end the worker; each file gets its reason
            log.exception("ingestion failed")
            for store_id, file_id in jobs:
                self._fail(store_id, file_id, "server_error", "ingestion failed unexpectedly")

    def _document_owner(self, store_id: str, file_id: str) -> str | None:
        """The owner of a file that goes to the parser; None for the workers' own files."""
        if self.parser is None:
            return None
        row = self.index.rows.file(store_id, file_id)
        try:
            parsed = row is not None and file_kind(row["filename"]) in PARSED_TYPES
        except UnsupportedFile:
            parsed = False
        return str(row["owner"]) if row is not None and parsed else None

    def _hand_off(self, owner: str, job: tuple[str, str]) -> None:
        self._documents.setdefault(owner, deque()).append(job)
        if owner not in self._tenant_tasks:
            self._tenant_tasks[owner] = asyncio.create_task(
                self._tenant_documents(owner), name="ingest-documents"
            )

    async def _tenant_documents(self, owner: str) -> None:
        try:
            while queue := self._documents.get(owner):
                job = queue.popleft()
                try:
                    async with self._document_slots:
                        await self._guarded([job])
                finally:
                    self._queue.task_done()
        finally:
            self._documents.pop(owner, None)
            self._tenant_tasks.pop(owner, None)

    async def _ingest(self, jobs: list[tuple[str, str]]) -> None:
        prepared: list[_Prepared] = []
        for store_id, file_id in jobs:
            try:
                item = await self._prepare(store_id, file_id)
            except (InvalidFile, errors.EngineError) as exc:
                code = "unsupported_file" if exc.code == "unsupported_file" else "invalid_file"
                self._fail(store_id, file_id, code, str(exc))
                continue
            if item is not None:
                prepared.append(item)
        vectors = None
        texts = [c for p in prepared for c in p.chunks]
        # Each file's distinct sentences too (overlapping chunks share them), embedded in the
        # same call: the reranker reads them.
        pieces = [list(dict.fromkeys(s for c in p.chunks for s in sentences(c))) for p in prepared]
        if self.embedder is not None and texts:
            try:
                vectors = await self.embedder.embed(texts + [s for ps in pieces for s in ps])
            except errors.EngineError as exc:
                for p in prepared:
                    self._fail(p.store_id, p.file_id, "server_error", str(exc))
                return
        offset, start = 0, len(texts)
        for p, ps in zip(prepared, pieces, strict=True):
            end = offset + len(p.chunks)
            part = None if vectors is None else vectors[offset:end]
            per_file = None
            if vectors is not None:
                per_file = {
                    sentence_digest(s): v
                    for s, v in zip(ps, vectors[start : start + len(ps)], strict=True)
                }
                start += len(ps)
            offset = end
            usage = len(p.text.encode()) + (0 if part is None else part.nbytes)
            usage += sum(v.size * 2 for v in (per_file or {}).values())  # stored as float16
            await asyncio.to_thread(
                self.index.replace_chunks,
                p.store_id,
                p.file_id,
                p.chunks,
                part,
                self.embedder.name if self.embedder else None,
                text=p.text,
                usage_bytes=usage,
                sentence_vectors=per_file,
            )

    async def _prepare(self, store_id: str, file_id: str) -> _Prepared | None:
        row = self.index.rows.file(store_id, file_id)
        if row is None or row["status"] != "in_progress":
            return None  # removed or cancelled meanwhile
        kind = file_kind(row["filename"])
        try:
            data = await self.files.content(file_id)
        except errors.FileNotFound:
            raise InvalidFile(f"file {file_id} was deleted before it was read") from None
        if kind in TEXT_TYPES:
            text = decode_text(data, row["filename"])[: self.max_chars]
        elif self.parser is None:
            raise InvalidFile(f"{row['filename']!r}: no sandbox is available to parse {kind} files")
        else:
            text = await self.parser.parse(kind, data, row["filename"], owner=row["owner"])
        if not text.strip():
            raise InvalidFile(f"{row['filename']!r} holds no text")
        size = StaticChunking.model_validate(json.loads(row["chunking"]))
        chunks = await asyncio.to_thread(
            chunk_text, text, size.max_chunk_size_tokens, size.chunk_overlap_tokens
        )
        return _Prepared(store_id, file_id, text, chunks)

    def _fail(self, store_id: str, file_id: str, code: str, message: str) -> None:
        error = LastError[FileErrorCode](code=code, message=message[:1000])  # type: ignore[arg-type]
        self.index.rows.fail(store_id, file_id, error.model_dump_json())
