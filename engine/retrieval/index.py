"""The chunk index in the engine's database: text in FTS5 (BM25; a tsvector on PostgreSQL),
vectors as float32 blobs searched as one numpy matrix per store, fused by reciprocal rank fusion.

The rows, and every statement about them, are the store's (``engine/store/chunks.py``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..store import Row
from ..store.base import ChunkTable
from ..store.chunks import ChunkRows
from ..store.database import connect
from ..store.sqlite import Params
from .minilm import Matrix

RRF_K = 60
Mode = Literal["lexical", "semantic", "hybrid"]
TERMS = re.compile(r"\w+", re.UNICODE)
# Words that carry no topic: an OR query over them would match nearly every chunk.
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "about",
        "into",
        "than",
        "then",
        "they",
        "them",
        "us",
    }
)


@dataclass
class Hit:
    chunk_id: int
    file_id: str
    text: str
    score: float


@dataclass
class _Vectors:
    version: tuple[int, int, int]
    ids: np.ndarray[Any, np.dtype[np.int64]]
    files: list[str]
    matrix: Matrix

    _rows: dict[int, int] | None = None

    @property
    def file_array(self) -> np.ndarray[Any, np.dtype[np.str_]]:
        return np.asarray(self.files)

    def rows(self) -> dict[int, int]:
        """Chunk id -> its row of the matrix, built on first use."""
        if self._rows is None:
            self._rows = {int(c): n for n, c in enumerate(self.ids)}
        return self._rows


class ChunkIndex:
    """Retrieval's tables (``store.chunks.ChunkRows``) and the searches over them: BM25 by the
    store, cosines here, over one numpy matrix per store and embedder, rebuilt when the store
    changed."""

    def __init__(self, path: Path, url: str = "") -> None:
        """The SQLite file ``path``, or the PostgreSQL database ``url`` names."""
        self._tables = ChunkRows(connect(path, url))
        self.rows: ChunkTable = self._tables
        self._versions: dict[str, int] = {}
        self._vectors: dict[tuple[str, str], _Vectors] = {}

    def close(self) -> None:
        self.rows.close()

    # --- raw statements, for tests and tools ---

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return self._tables.all(sql, params)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        return self._tables.one(sql, params)

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._tables.execute(sql, params)

    # --- chunks ---

    def replace_chunks(
        self,
        store_id: str,
        file_id: str,
        chunks: list[str],
        vectors: Matrix | None,
        embedder: str | None,
        *,
        text: str,
        usage_bytes: int,
        sentence_vectors: dict[bytes, Matrix] | None = None,
    ) -> bool:
        """Put a file's chunks in place and mark it completed, in one transaction. False when
        the file left the store (or was cancelled) meanwhile: nothing is written then.
        ``sentence_vectors`` maps the digest of each distinct sentence of the file's chunks to
        its vector (for the reranker)."""
        blobs = [
            None if vectors is None else vectors[seq].astype(np.float32).tobytes()
            for seq in range(len(chunks))
        ]
        done = self.rows.replace_chunks(
            store_id,
            file_id,
            list(zip(chunks, blobs, strict=True)),
            embedder,
            text=text,
            usage_bytes=usage_bytes,
            sentences=_blobs(sentence_vectors) if sentence_vectors else None,
        )
        if done:
            self.touch(store_id)
        return done

    def delete_file(self, store_id: str, file_id: str) -> None:
        self.rows.delete_file(store_id, file_id)
        self.touch(store_id)

    def delete_file_everywhere(self, file_id: str, owner: str) -> list[str]:
        """Remove a file from every store of ``owner`` that holds it: its chunks, text and
        row (so the stores' counts and usage drop too). Returns those stores' ids."""
        stores = self.rows.delete_file_everywhere(file_id, owner)
        for store_id in stores:
            self.touch(store_id)
        return stores

    def delete_store(self, store_id: str) -> None:
        self.rows.delete_store(store_id)
        self.touch(store_id)
        self._vectors = {k: v for k, v in self._vectors.items() if k[0] != store_id}

    def file_text(self, store_id: str, file_id: str) -> str | None:
        return self.rows.file_text(store_id, file_id)

    def touch(self, store_id: str) -> None:
        self._versions[store_id] = self._versions.get(store_id, 0) + 1

    # --- sentence vectors (the reranker's) ---

    def sentence_vectors(
        self, store_id: str, file_id: str, embedder: str, digests: Sequence[bytes]
    ) -> dict[bytes, Matrix]:
        """The stored vectors of these sentences (by digest) of this file in this store, by
        this embedder, as float32 (those not stored are left out)."""
        blobs = self.rows.sentence_vectors(store_id, file_id, embedder, digests)
        return {d: np.frombuffer(b, dtype=np.float16).astype(np.float32) for d, b in blobs.items()}

    def keep_sentence_vectors(
        self, store_id: str, embedder: str, chunks: list[tuple[int, str, dict[bytes, Matrix]]]
    ) -> None:
        """Store sentence vectors computed at search time for chunks ingested without them,
        (chunk id, its text, vectors by sentence digest) each: only while that chunk is still
        in this store with that text, so that a file deleted meanwhile leaves none behind."""
        self.rows.keep_sentence_vectors(
            store_id, embedder, [(c, text, _blobs(v)) for c, text, v in chunks]
        )

    # --- search ---

    def lexical(
        self, store_id: str, query: str, limit: int, allowed: set[str] | None = None
    ) -> list[Hit]:
        terms = [t for t in TERMS.findall(query.lower()) if t not in STOP_WORDS]
        if not terms:
            terms = TERMS.findall(query.lower())
        if not terms:
            return []
        if allowed is not None and not allowed:
            return []
        return [Hit(*row) for row in self.rows.lexical(store_id, terms, limit, allowed)]

    def semantic(
        self,
        store_id: str,
        embedder: str,
        query: Matrix,
        limit: int,
        allowed: set[str] | None = None,
    ) -> list[Hit]:
        vectors = self._matrix(store_id, embedder)
        if not len(vectors.ids):
            return []
        scores = vectors.matrix @ query.astype(np.float32)
        if allowed is not None:
            scores = np.where(np.isin(vectors.file_array, list(allowed)), scores, -np.inf)
        top = min(limit, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best])]
        ids = [int(vectors.ids[i]) for i in best]
        texts = self.rows.chunk_texts(ids)
        return [
            Hit(ids[n], vectors.files[i], texts.get(ids[n], ""), float(scores[i]))
            for n, i in enumerate(best)
            if np.isfinite(scores[i])
        ]

    def cosines(
        self, store_id: str, embedder: str, query: Matrix, chunk_ids: list[int]
    ) -> dict[int, float]:
        """The query's cosine with each of these chunks (those that have a vector)."""
        vectors = self._matrix(store_id, embedder)
        rows = vectors.rows()
        found = [(c, rows[c]) for c in chunk_ids if c in rows]
        if not found:
            return {}
        scores = vectors.matrix[[r for _, r in found]] @ query.astype(np.float32)
        return {c: float(v) for (c, _), v in zip(found, scores, strict=True)}

    def _matrix(self, store_id: str, embedder: str) -> _Vectors:
        # Another engine on the same database (a cluster's replica) changes stores too.
        version = (self._versions.get(store_id, 0), *self.rows.chunks_signature(store_id))
        cached = self._vectors.get((store_id, embedder))
        if cached is not None and cached.version == version:
            return cached
        rows = self.rows.vectors(store_id, embedder)
        ids = np.asarray([r["id"] for r in rows], dtype=np.int64)
        if rows:
            flat = np.frombuffer(b"".join(r["vector"] for r in rows), dtype=np.float32)
            matrix = flat.reshape(len(rows), -1)
        else:
            matrix = np.zeros((0, 1), dtype=np.float32)
        built = _Vectors(version, ids, [r["file_id"] for r in rows], matrix)
        self._vectors[(store_id, embedder)] = built
        return built


def fuse(rankings: list[list[Hit]], limit: int) -> list[Hit]:
    """Reciprocal rank fusion, scaled so that first place in every ranking scores 1.0."""
    if not rankings:
        return []
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(hit.chunk_id, hit)
    best = len(rankings) / (RRF_K + 1)
    ordered = sorted(scores, key=lambda c: -scores[c])[:limit]
    return [Hit(c, first[c].file_id, first[c].text, scores[c] / best) for c in ordered]


def _blobs(vectors: dict[bytes, Matrix]) -> dict[bytes, bytes]:
    """Sentence vectors as float16: half the bytes, and cosines move by about 1e-3."""
    return {d: np.ascontiguousarray(v, dtype=np.float16).tobytes() for d, v in vectors.items()}


def sentence_digest(sentence: str) -> bytes:
    """The key of a sentence's stored vector within its file (64 bits: among a file's
    sentences, a collision is as likely as 1 in 10^13 for 10,000 of them)."""
    return hashlib.blake2b(sentence.encode(), digest_size=8).digest()
