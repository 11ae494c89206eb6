"""The chunk index in the engine's SQLite database: text in FTS5 (BM25), vectors as float32
blobs searched as one numpy matrix per store, fused by reciprocal rank fusion.

The retrieval layer keeps its own connection to the database file, opened by the store's one
policy (WAL lets it write beside the engine's), so that a file's chunks, their FTS rows and its
status commit in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..store import Connection, Row
from ..store.records import page
from ..store.sqlite import Params, Transaction
from .minilm import Matrix

SCHEMA = """
CREATE TABLE IF NOT EXISTS vector_stores (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, metadata TEXT,
    expires_after TEXT, expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS vector_stores_owner ON vector_stores (owner, created_at);
CREATE TABLE IF NOT EXISTS vs_files (
    vector_store_id TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, filename TEXT NOT NULL,
    created_at INTEGER NOT NULL, status TEXT NOT NULL, last_error TEXT, attributes TEXT,
    chunking TEXT NOT NULL, usage_bytes INTEGER NOT NULL DEFAULT 0, batch_id TEXT, text BLOB,
    PRIMARY KEY (vector_store_id, id)
);
CREATE INDEX IF NOT EXISTS vs_files_status ON vs_files (status);
CREATE INDEX IF NOT EXISTS vs_files_batch ON vs_files (batch_id);
CREATE TABLE IF NOT EXISTS vs_batches (
    id TEXT PRIMARY KEY, vector_store_id TEXT NOT NULL, owner TEXT NOT NULL,
    created_at INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vs_chunks (
    id INTEGER PRIMARY KEY, vector_store_id TEXT NOT NULL, file_id TEXT NOT NULL,
    seq INTEGER NOT NULL, text TEXT NOT NULL, embedder TEXT, vector BLOB
);
CREATE INDEX IF NOT EXISTS vs_chunks_file ON vs_chunks (vector_store_id, file_id);
CREATE TABLE IF NOT EXISTS vs_sentence_sets (
    id INTEGER PRIMARY KEY, vector_store_id TEXT NOT NULL, file_id TEXT NOT NULL,
    embedder TEXT NOT NULL, UNIQUE (vector_store_id, file_id)
);
CREATE TABLE IF NOT EXISTS vs_sentence_vectors (
    set_id INTEGER NOT NULL, digest BLOB NOT NULL, vector BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS vs_sentence_vectors_key ON vs_sentence_vectors (set_id, digest);
DROP TABLE IF EXISTS vs_sentences;
"""
# A file's distinct sentences, once each (overlapping chunks share them): a set per file and
# store names the embedder, so that a vector row is only its set's number, the sentence's
# digest and the float16 vector, five rows to a 4 KiB page. The older table (float32, per
# chunk) is dropped; a store that had it gets its vectors again lazily, on search.
# The store's id is a column of its own, so that a query matches within one store only.
FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS vs_fts USING fts5(
    text, vector_store_id, content='vs_chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""
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
    version: int
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
    def __init__(self, path: Path) -> None:
        self._db = Connection(path)
        self._db.script(SCHEMA)
        self._fts_with_store()
        self._versions: dict[str, int] = {}
        self._vectors: dict[tuple[str, str], _Vectors] = {}

    def close(self) -> None:
        self._db.close()

    def _fts_with_store(self) -> None:
        """Create the FTS table, or rebuild one of an older schema (text only) from the chunks."""
        exists = self._db.one("SELECT 1 FROM sqlite_master WHERE name = 'vs_fts'")
        if exists and "vector_store_id" in self._db.columns("vs_fts"):
            return
        with self.transaction() as db:
            db.execute("DROP TABLE IF EXISTS vs_fts")
            db.execute(FTS_SCHEMA)
            db.execute("INSERT INTO vs_fts (vs_fts) VALUES ('rebuild')")

    # --- plain rows ---

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return self._db.all(sql, params)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        return self._db.one(sql, params)

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._db.transaction() as db:
            yield db

    def page(
        self,
        table: str,
        filters: dict[str, Any],
        *,
        limit: int,
        order: str,
        after: str | None = None,
        before: str | None = None,
        cursor_scope: Collection[str] | None = None,
    ) -> tuple[list[Row], bool]:
        return page(
            self._db,
            table,
            filters,
            limit=limit,
            order=order,
            after=after,
            before=before,
            cursor_scope=cursor_scope,
        )

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
        with self.transaction() as db:
            row = db.one(
                "SELECT status FROM vs_files WHERE vector_store_id = ? AND id = ?",
                (store_id, file_id),
            )
            if row is None or row["status"] != "in_progress":
                return False
            _delete_chunks(db, store_id, file_id)
            for seq, chunk in enumerate(chunks):
                blob = None if vectors is None else vectors[seq].astype(np.float32).tobytes()
                chunk_id = db.insert(
                    "INSERT INTO vs_chunks (vector_store_id, file_id, seq, text, embedder, vector)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (store_id, file_id, seq, chunk, embedder if blob else None, blob),
                )
                db.execute(
                    "INSERT INTO vs_fts (rowid, text, vector_store_id) VALUES (?, ?, ?)",
                    (chunk_id, chunk, store_id),
                )
            if sentence_vectors and embedder is not None:
                _put_sentences(db, store_id, file_id, embedder, sentence_vectors)
            db.execute(
                "UPDATE vs_files SET status = 'completed', usage_bytes = ?, text = ?, "
                "last_error = NULL WHERE vector_store_id = ? AND id = ?",
                (usage_bytes, zlib.compress(text.encode()), store_id, file_id),
            )
        self.touch(store_id)
        return True

    def delete_file(self, store_id: str, file_id: str) -> None:
        with self.transaction() as db:
            _delete_chunks(db, store_id, file_id)
            db.execute(
                "DELETE FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
            )
        self.touch(store_id)

    def delete_file_everywhere(self, file_id: str, owner: str) -> list[str]:
        """Remove a file from every store of ``owner`` that holds it: its chunks, text and
        row (so the stores' counts and usage drop too). Returns those stores' ids."""
        with self.transaction() as db:
            stores = [
                r["vector_store_id"]
                for r in db.all(
                    "SELECT vector_store_id FROM vs_files WHERE id = ? AND owner = ?",
                    (file_id, owner),
                )
            ]
            for store_id in stores:
                _delete_chunks(db, store_id, file_id)
                db.execute(
                    "DELETE FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
                )
        for store_id in stores:
            self.touch(store_id)
        return stores

    def delete_store(self, store_id: str) -> None:
        with self.transaction() as db:
            for row in db.all(
                "SELECT DISTINCT file_id FROM vs_chunks WHERE vector_store_id = ?", (store_id,)
            ):
                _delete_chunks(db, store_id, row["file_id"])
            db.execute("DELETE FROM vs_files WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vs_batches WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vector_stores WHERE id = ?", (store_id,))
        self.touch(store_id)
        self._vectors = {k: v for k, v in self._vectors.items() if k[0] != store_id}

    def file_text(self, store_id: str, file_id: str) -> str | None:
        row = self.one(
            "SELECT text FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
        )
        return None if row is None or row["text"] is None else zlib.decompress(row["text"]).decode()

    def touch(self, store_id: str) -> None:
        self._versions[store_id] = self._versions.get(store_id, 0) + 1

    # --- sentence vectors (the reranker's) ---

    def sentence_vectors(
        self, store_id: str, file_id: str, embedder: str, digests: Sequence[bytes]
    ) -> dict[bytes, Matrix]:
        """The stored vectors of these sentences (by digest) of this file in this store, by
        this embedder, as float32 (those not stored are left out)."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        rows = self.all(
            "SELECT v.digest, v.vector FROM vs_sentence_sets s "
            "JOIN vs_sentence_vectors v ON v.set_id = s.id WHERE s.vector_store_id = ? "
            f"AND s.file_id = ? AND s.embedder = ? AND v.digest IN ({marks})",
            [store_id, file_id, embedder, *digests],
        )
        return {
            r["digest"]: np.frombuffer(r["vector"], dtype=np.float16).astype(np.float32)
            for r in rows
        }

    def keep_sentence_vectors(
        self, store_id: str, embedder: str, chunks: list[tuple[int, str, dict[bytes, Matrix]]]
    ) -> None:
        """Store sentence vectors computed at search time for chunks ingested without them,
        (chunk id, its text, vectors by sentence digest) each: only while that chunk is still
        in this store with that text, so that a file deleted meanwhile leaves none behind."""
        with self.transaction() as db:
            for chunk_id, text, vectors in chunks:
                row = db.one(
                    "SELECT file_id FROM vs_chunks WHERE id = ? AND vector_store_id = ? "
                    "AND text = ?",
                    (chunk_id, store_id, text),
                )
                if row is None or not vectors:
                    continue
                _put_sentences(db, store_id, row["file_id"], embedder, vectors)

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
        words = " OR ".join('"' + t.replace('"', "") + '"' for t in dict.fromkeys(terms))
        match = f'vector_store_id : "{store_id.replace(chr(34), "")}" AND text : ({words})'
        sql = (
            "SELECT c.id, c.file_id, c.text, bm25(vs_fts) AS rank FROM vs_fts "
            "JOIN vs_chunks c ON c.id = vs_fts.rowid "
            "WHERE vs_fts MATCH ? AND c.vector_store_id = ?"
        )
        params: list[Any] = [match, store_id]
        if allowed is not None:  # in the query, so that LIMIT counts only the files let through
            sql += " AND c.file_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(allowed)))
        rows = self.all(sql + " ORDER BY rank LIMIT ?", [*params, limit])
        return [Hit(r["id"], r["file_id"], r["text"], -float(r["rank"])) for r in rows]

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
        texts = self._texts(ids)
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

    def _texts(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.all(f"SELECT id, text FROM vs_chunks WHERE id IN ({marks})", ids)
        return {r["id"]: r["text"] for r in rows}

    def _matrix(self, store_id: str, embedder: str) -> _Vectors:
        version = self._versions.get(store_id, 0)
        cached = self._vectors.get((store_id, embedder))
        if cached is not None and cached.version == version:
            return cached
        rows = self.all(
            "SELECT id, file_id, vector FROM vs_chunks WHERE vector_store_id = ? AND embedder = ? "
            "ORDER BY id",
            (store_id, embedder),
        )
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


def _blob(vector: Matrix) -> bytes:
    """A sentence vector as float16: half the bytes, and cosines move by about 1e-3."""
    return np.ascontiguousarray(vector, dtype=np.float16).tobytes()


def sentence_digest(sentence: str) -> bytes:
    """The key of a sentence's stored vector within its file (64 bits: among a file's
    sentences, a collision is as likely as 1 in 10^13 for 10,000 of them)."""
    return hashlib.blake2b(sentence.encode(), digest_size=8).digest()


def _put_sentences(
    db: Transaction,
    store_id: str,
    file_id: str,
    embedder: str,
    vectors: dict[bytes, Matrix],
) -> None:
    """Add sentence vectors (by digest) to this file's set in this store."""
    set_id = _sentence_set(db, store_id, file_id, embedder)
    db.many(
        "INSERT OR REPLACE INTO vs_sentence_vectors (set_id, digest, vector) VALUES (?, ?, ?)",
        [(set_id, d, _blob(v)) for d, v in vectors.items()],
    )


def _sentence_set(db: Transaction, store_id: str, file_id: str, embedder: str) -> int:
    """The number of this file's sentence set in this store, for this embedder: a set made by
    another embedder is emptied and taken over."""
    row = db.one(
        "SELECT id, embedder FROM vs_sentence_sets WHERE vector_store_id = ? AND file_id = ?",
        (store_id, file_id),
    )
    if row is None:
        return db.insert(
            "INSERT INTO vs_sentence_sets (vector_store_id, file_id, embedder) VALUES (?, ?, ?)",
            (store_id, file_id, embedder),
        )
    if row["embedder"] != embedder:
        db.execute("DELETE FROM vs_sentence_vectors WHERE set_id = ?", (row["id"],))
        db.execute("UPDATE vs_sentence_sets SET embedder = ? WHERE id = ?", (embedder, row["id"]))
    return int(row["id"])


def _delete_chunks(db: Transaction, store_id: str, file_id: str) -> None:
    db.execute(
        "DELETE FROM vs_sentence_vectors WHERE set_id IN (SELECT id FROM vs_sentence_sets "
        "WHERE vector_store_id = ? AND file_id = ?)",
        (store_id, file_id),
    )
    db.execute(
        "DELETE FROM vs_sentence_sets WHERE vector_store_id = ? AND file_id = ?",
        (store_id, file_id),
    )
    db.execute(
        "INSERT INTO vs_fts (vs_fts, rowid, text, vector_store_id) "
        "SELECT 'delete', id, text, vector_store_id FROM vs_chunks "
        "WHERE vector_store_id = ? AND file_id = ?",
        (store_id, file_id),
    )
    db.execute(
        "DELETE FROM vs_chunks WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
    )
