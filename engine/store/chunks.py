"""Retrieval's tables: vector stores, their files and batches, chunks (text in FTS5 for BM25, or
a tsvector on PostgreSQL, vectors as float32 blobs), and the reranker's sentence vectors
(float16 blobs).

Retrieval keeps its own connection to the database, opened by the store's one policy
(``database.connect``; on SQLite, WAL lets it write beside the engine's), so that a file's
chunks, their words and its status commit in one transaction. Rows go in and out as dicts and
bytes; the numbers in the vectors are retrieval's business (``retrieval/index.py``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any, Literal

from .database import Database, Transaction
from .records import Tables, insert, update
from .sqlite import Row
from .tsvector import TsVectorIndex

FileCounter = Literal["vector_store_id", "batch_id"]

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
FILE_COLUMNS = (
    "vector_store_id, id, owner, filename, created_at, status, last_error, attributes, "
    "chunking, usage_bytes, batch_id"
)


class Fts5Index:
    """The chunks' words in SQLite's FTS5 table ``vs_fts`` (porter stemming, BM25)."""

    def create(self, db: Database) -> None:
        """Create the FTS table, or rebuild one of an older schema (text only) from the chunks."""
        exists = db.one("SELECT 1 FROM sqlite_master WHERE name = 'vs_fts'")
        if exists and "vector_store_id" in db.columns("vs_fts"):
            return
        with db.transaction() as tx:
            tx.execute("DROP TABLE IF EXISTS vs_fts")
            tx.execute(FTS_SCHEMA)
            tx.execute("INSERT INTO vs_fts (vs_fts) VALUES ('rebuild')")

    def add(self, db: Transaction, chunk_id: int, text: str, store_id: str) -> None:
        db.execute(
            "INSERT INTO vs_fts (rowid, text, vector_store_id) VALUES (?, ?, ?)",
            (chunk_id, text, store_id),
        )

    def remove(self, db: Transaction, store_id: str, file_id: str) -> None:
        db.execute(
            "INSERT INTO vs_fts (vs_fts, rowid, text, vector_store_id) "
            "SELECT 'delete', id, text, vector_store_id FROM vs_chunks "
            "WHERE vector_store_id = ? AND file_id = ?",
            (store_id, file_id),
        )

    def search(
        self,
        db: Database,
        store_id: str,
        terms: Sequence[str],
        limit: int,
        allowed: set[str] | None,
    ) -> list[tuple[int, str, str, float]]:
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
        rows = db.all(sql + " ORDER BY rank LIMIT ?", [*params, limit])
        return [(r["id"], r["file_id"], r["text"], -float(r["rank"])) for r in rows]


class ChunkRows(Tables):
    """Every statement about retrieval's tables, on either database; the lexical index is
    FTS5 on SQLite, a ``tsvector`` on PostgreSQL (``tsvector.py``)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        db.script(SCHEMA)
        self._words: Fts5Index | TsVectorIndex = (
            Fts5Index() if db.dialect == "sqlite" else TsVectorIndex()
        )
        self._words.create(db)

    # --- vector stores ---

    def add_store(self, row: Row) -> None:
        insert(self.db, "vector_stores", row)

    def store(self, store_id: str) -> Row | None:
        return self.db.one("SELECT * FROM vector_stores WHERE id = ?", (store_id,))

    def update_store(self, store_id: str, **fields: Any) -> None:
        update(self.db, "vector_stores", "id", store_id, **fields)

    def usage_bytes(self, store_id: str) -> int:
        row = self.db.one(
            "SELECT COALESCE(SUM(usage_bytes), 0) AS n FROM vs_files WHERE vector_store_id = ?",
            (store_id,),
        )
        return int(row["n"]) if row else 0

    def file_counts(self, column: FileCounter, value: str) -> dict[str, int]:
        """How many files of a store (or a batch) are in each status."""
        rows = self.db.all(
            f"SELECT status, COUNT(*) AS n FROM vs_files WHERE {column} = ? GROUP BY status",
            (value,),
        )
        return {r["status"]: r["n"] for r in rows}

    def delete_store(self, store_id: str) -> None:
        with self.db.transaction() as db:
            for row in db.all(
                "SELECT DISTINCT file_id FROM vs_chunks WHERE vector_store_id = ?", (store_id,)
            ):
                self._delete_chunks(db, store_id, row["file_id"])
            db.execute("DELETE FROM vs_files WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vs_batches WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vector_stores WHERE id = ?", (store_id,))

    # --- a store's files ---

    def add_file(self, row: Row) -> None:
        insert(self.db, "vs_files", row)

    def file(self, store_id: str, file_id: str) -> Row | None:
        """A file's row, without its text (``file_text``)."""
        return self.db.one(
            f"SELECT rowid, {FILE_COLUMNS} FROM vs_files WHERE vector_store_id = ? AND id = ?",
            (store_id, file_id),
        )

    def set_attributes(self, store_id: str, file_id: str, attributes: str | None) -> None:
        self.db.execute(
            "UPDATE vs_files SET attributes = ? WHERE vector_store_id = ? AND id = ?",
            (attributes, store_id, file_id),
        )

    def completed_attributes(self, store_id: str) -> dict[str, str | None]:
        """The attributes (JSON) of each completed file of a store, by file id."""
        rows = self.db.all(
            "SELECT id, attributes FROM vs_files WHERE vector_store_id = ? "
            "AND status = 'completed'",
            (store_id,),
        )
        return {r["id"]: r["attributes"] for r in rows}

    def file_owners(self) -> list[tuple[str, str]]:
        """(file id, owner) of every file in any store, once each."""
        rows = self.db.all("SELECT DISTINCT id, owner FROM vs_files")
        return [(r["id"], r["owner"]) for r in rows]

    def in_progress(self) -> list[tuple[str, str]]:
        """(store id, file id) of the files still to ingest."""
        rows = self.db.all("SELECT vector_store_id, id FROM vs_files WHERE status = 'in_progress'")
        return [(r["vector_store_id"], r["id"]) for r in rows]

    def fail(self, store_id: str, file_id: str, error: str) -> None:
        """A file in progress failed, with ``error`` (JSON) as its last error."""
        self.db.execute(
            "UPDATE vs_files SET status = 'failed', last_error = ? "
            "WHERE vector_store_id = ? AND id = ? AND status = 'in_progress'",
            (error, store_id, file_id),
        )

    def file_text(self, store_id: str, file_id: str) -> str | None:
        row = self.db.one(
            "SELECT text FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
        )
        return None if row is None or row["text"] is None else zlib.decompress(row["text"]).decode()

    def delete_file(self, store_id: str, file_id: str) -> None:
        with self.db.transaction() as db:
            self._delete_chunks(db, store_id, file_id)
            db.execute(
                "DELETE FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
            )

    def delete_file_everywhere(self, file_id: str, owner: str) -> list[str]:
        """Remove a file from every store of ``owner`` that holds it: its chunks, text and
        row. Returns those stores' ids."""
        with self.db.transaction() as db:
            stores = [
                r["vector_store_id"]
                for r in db.all(
                    "SELECT vector_store_id FROM vs_files WHERE id = ? AND owner = ?",
                    (file_id, owner),
                )
            ]
            for store_id in stores:
                self._delete_chunks(db, store_id, file_id)
                db.execute(
                    "DELETE FROM vs_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id)
                )
        return stores

    # --- batches ---

    def add_batch(self, batch_id: str, store_id: str, owner: str, created_at: int) -> None:
        self.db.execute(
            "INSERT INTO vs_batches (id, vector_store_id, owner, created_at, status) "
            "VALUES (?, ?, ?, ?, 'in_progress')",
            (batch_id, store_id, owner, created_at),
        )

    def batch(self, store_id: str, batch_id: str) -> Row | None:
        return self.db.one(
            "SELECT * FROM vs_batches WHERE id = ? AND vector_store_id = ?", (batch_id, store_id)
        )

    def cancel_batch(self, batch_id: str) -> None:
        """The batch and its files still in progress are cancelled."""
        self.db.execute(
            "UPDATE vs_files SET status = 'cancelled' "
            "WHERE batch_id = ? AND status = 'in_progress'",
            (batch_id,),
        )
        self.db.execute("UPDATE vs_batches SET status = 'cancelled' WHERE id = ?", (batch_id,))

    # --- chunks ---

    def replace_chunks(
        self,
        store_id: str,
        file_id: str,
        chunks: Sequence[tuple[str, bytes | None]],
        embedder: str | None,
        *,
        text: str,
        usage_bytes: int,
        sentences: dict[bytes, bytes] | None = None,
    ) -> bool:
        """Put a file's chunks (text, vector blob) in place and mark it completed, in one
        transaction. False when the file left the store (or was cancelled) meanwhile: nothing
        is written then. ``sentences`` maps sentence digests to vector blobs."""
        with self.db.transaction() as db:
            row = db.one(
                "SELECT status FROM vs_files WHERE vector_store_id = ? AND id = ?",
                (store_id, file_id),
            )
            if row is None or row["status"] != "in_progress":
                return False
            self._delete_chunks(db, store_id, file_id)
            for seq, (chunk, blob) in enumerate(chunks):
                chunk_id = db.insert(
                    "INSERT INTO vs_chunks (vector_store_id, file_id, seq, text, embedder, vector)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (store_id, file_id, seq, chunk, embedder if blob else None, blob),
                )
                self._words.add(db, chunk_id, chunk, store_id)
            if sentences and embedder is not None:
                _put_sentences(db, store_id, file_id, embedder, sentences)
            db.execute(
                "UPDATE vs_files SET status = 'completed', usage_bytes = ?, text = ?, "
                "last_error = NULL WHERE vector_store_id = ? AND id = ?",
                (usage_bytes, zlib.compress(text.encode()), store_id, file_id),
            )
        return True

    def chunk_texts(self, chunk_ids: list[int]) -> dict[int, str]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.db.all(f"SELECT id, text FROM vs_chunks WHERE id IN ({marks})", chunk_ids)
        return {r["id"]: r["text"] for r in rows}

    def vectors(self, store_id: str, embedder: str) -> list[Row]:
        """(id, file_id, vector) of a store's chunks embedded by ``embedder``, oldest first."""
        return self.db.all(
            "SELECT id, file_id, vector FROM vs_chunks WHERE vector_store_id = ? AND embedder = ? "
            "ORDER BY id",
            (store_id, embedder),
        )

    def chunks_signature(self, store_id: str) -> tuple[int, int]:
        """How many chunks the store holds and the newest one's id: on PostgreSQL, whose ids
        are never reused, any change to a store's chunks changes it."""
        row = self.db.one(
            "SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS newest FROM vs_chunks "
            "WHERE vector_store_id = ?",
            (store_id,),
        )
        return (int(row["n"]), int(row["newest"])) if row else (0, 0)

    def lexical(
        self, store_id: str, terms: Sequence[str], limit: int, allowed: set[str] | None = None
    ) -> list[tuple[int, str, str, float]]:
        """(chunk id, file id, text, BM25 score: higher is better) of the store's chunks that
        hold any of ``terms``, best first; only the ``allowed`` files' when given."""
        return self._words.search(self.db, store_id, terms, limit, allowed)

    # --- sentence vectors (the reranker's) ---

    def sentence_vectors(
        self, store_id: str, file_id: str, embedder: str, digests: Sequence[bytes]
    ) -> dict[bytes, bytes]:
        """The stored vector blobs of these sentences (by digest) of this file in this store,
        by this embedder (those not stored are left out)."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        rows = self.db.all(
            "SELECT v.digest, v.vector FROM vs_sentence_sets s "
            "JOIN vs_sentence_vectors v ON v.set_id = s.id WHERE s.vector_store_id = ? "
            f"AND s.file_id = ? AND s.embedder = ? AND v.digest IN ({marks})",
            [store_id, file_id, embedder, *digests],
        )
        return {r["digest"]: r["vector"] for r in rows}

    def keep_sentence_vectors(
        self, store_id: str, embedder: str, chunks: Sequence[tuple[int, str, dict[bytes, bytes]]]
    ) -> None:
        """Add sentence vector blobs, (chunk id, its text, blobs by sentence digest) each: only
        while that chunk is still in this store with that text, so that a file deleted
        meanwhile leaves none behind."""
        with self.db.transaction() as db:
            for chunk_id, text, blobs in chunks:
                row = db.one(
                    "SELECT file_id FROM vs_chunks WHERE id = ? AND vector_store_id = ? "
                    "AND text = ?",
                    (chunk_id, store_id, text),
                )
                if row is None or not blobs:
                    continue
                _put_sentences(db, store_id, row["file_id"], embedder, blobs)

    def _delete_chunks(self, db: Transaction, store_id: str, file_id: str) -> None:
        db.execute(
            "DELETE FROM vs_sentence_vectors WHERE set_id IN (SELECT id FROM vs_sentence_sets "
            "WHERE vector_store_id = ? AND file_id = ?)",
            (store_id, file_id),
        )
        db.execute(
            "DELETE FROM vs_sentence_sets WHERE vector_store_id = ? AND file_id = ?",
            (store_id, file_id),
        )
        self._words.remove(db, store_id, file_id)
        db.execute(
            "DELETE FROM vs_chunks WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id)
        )


def _put_sentences(
    db: Transaction, store_id: str, file_id: str, embedder: str, blobs: dict[bytes, bytes]
) -> None:
    """Add sentence vector blobs (by digest) to this file's set in this store."""
    set_id = _sentence_set(db, store_id, file_id, embedder)
    db.many(
        "INSERT OR REPLACE INTO vs_sentence_vectors (set_id, digest, vector) VALUES (?, ?, ?)",
        [(set_id, d, b) for d, b in blobs.items()],
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
