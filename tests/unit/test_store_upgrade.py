"""A data folder written by an earlier engine still opens through the persistence layer, with
all its data: the database is made here by SQL, in the oldest shape of each table. No Docker."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import numpy as np

from engine.assistants.models import Thread
from engine.assistants.repository import Repository as AssistantObjects
from engine.files import FileStore
from engine.responses.models import Conversation
from engine.responses.repository import Repository as ResponseObjects
from engine.retrieval.index import ChunkIndex
from engine.sessions.records import SessionRecords
from engine.store import Store

OLD_SCHEMA = """
CREATE TABLE files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, mime_type TEXT NOT NULL, sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL, session_id TEXT, path TEXT
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, thread_id TEXT NOT NULL, status TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    idle_timeout INTEGER NOT NULL, sandbox_id TEXT
);
CREATE TABLE session_files (
    session_id TEXT NOT NULL, path TEXT NOT NULL, file_id TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, PRIMARY KEY (session_id, path)
);
CREATE TABLE assistant_objects (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, data TEXT NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE response_objects (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, data TEXT NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE response_items (
    parent TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (parent, id)
);
CREATE TABLE vector_stores (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, metadata TEXT,
    expires_after TEXT, expires_at INTEGER
);
CREATE TABLE vs_files (
    vector_store_id TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, filename TEXT NOT NULL,
    created_at INTEGER NOT NULL, status TEXT NOT NULL, last_error TEXT, attributes TEXT,
    chunking TEXT NOT NULL, usage_bytes INTEGER NOT NULL DEFAULT 0, batch_id TEXT, text BLOB,
    PRIMARY KEY (vector_store_id, id)
);
CREATE TABLE vs_batches (
    id TEXT PRIMARY KEY, vector_store_id TEXT NOT NULL, owner TEXT NOT NULL,
    created_at INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE vs_chunks (
    id INTEGER PRIMARY KEY, vector_store_id TEXT NOT NULL, file_id TEXT NOT NULL,
    seq INTEGER NOT NULL, text TEXT NOT NULL, embedder TEXT, vector BLOB
);
CREATE TABLE vs_sentences (chunk_id INTEGER NOT NULL, seq INTEGER NOT NULL, vector BLOB);
CREATE VIRTUAL TABLE vs_fts USING fts5(text, content='vs_chunks', content_rowid='id');
"""


def _old_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO files VALUES ('file-1', 'alice', 'a.csv', 'assistants', 3, 'text/csv', "
        "'00', 10, NULL, NULL)"
    )
    db.execute(
        "INSERT INTO sessions VALUES ('sess-1', 'alice', 't', 'closed', 10, 10, 99, 60, NULL)"
    )
    db.execute("INSERT INTO session_files VALUES ('sess-1', '/mnt/data/a.csv', 'file-1', 3, 7)")
    for n, thread_id in enumerate(["thread_a", "thread_b"]):
        data = json.dumps({"id": thread_id, "object": "thread", "created_at": 20 + n})
        db.execute(
            "INSERT INTO assistant_objects (id, kind, owner, created_at, data) "
            "VALUES (?, 'thread', 'alice', ?, ?)",
            (thread_id, 20 + n, data),
        )
    conversation = json.dumps({"id": "conv_1", "object": "conversation", "created_at": 30})
    db.execute(
        "INSERT INTO response_objects (id, kind, owner, created_at, data, private) "
        "VALUES ('conv_1', 'conversation', 'alice', 30, ?, '{}')",
        (conversation,),
    )
    item = {
        "type": "message",
        "id": "msg_1",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "otters hold hands"}],
    }
    db.execute(
        "INSERT INTO response_items VALUES ('conv_1', 'msg_1', 'alice', ?)", (json.dumps(item),)
    )
    db.execute(
        "INSERT INTO vector_stores (id, owner, name, created_at, last_active_at) "
        "VALUES ('vs_1', 'alice', 'notes', 40, 40)"
    )
    db.execute(
        "INSERT INTO vs_files (vector_store_id, id, owner, filename, created_at, status, chunking)"
        " VALUES ('vs_1', 'file-1', 'alice', 'a.csv', 40, 'completed', '{}')"
    )
    vector = np.ones(4, dtype=np.float32).tobytes()
    db.execute(
        "INSERT INTO vs_chunks VALUES (1, 'vs_1', 'file-1', 0, 'otters hold hands', 'e', ?)",
        (vector,),
    )
    db.execute("INSERT INTO vs_fts (rowid, text) VALUES (1, 'otters hold hands')")
    db.commit()
    db.close()


def test_a_database_of_the_old_schema_opens_with_all_its_data(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    _old_database(path)
    store = Store(path)
    index = ChunkIndex(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        files = FileStore(store, tmp_path / "files", max_bytes=1000)
        assert files.retrieve("file-1", "alice").filename == "a.csv"
        assert not files.retrieve("file-1").expires_with_session
        assert [f.id for f in files.list("alice").data] == ["file-1"]

        records = SessionRecords(store)
        assert records.owned("sess-1", "alice").status.value == "closed"
        assert [r["file_id"] for r in records.files("sess-1")] == ["file-1"]

        threads = AssistantObjects(store)
        assert threads.get(Thread, "thread", "thread_a", "alice").created_at == 20
        page = threads.page(Thread, "thread", "alice", order="asc")
        assert [t.id for t in page.data] == ["thread_a", "thread_b"]

        responses = ResponseObjects(store)
        assert responses.get(Conversation, "conversation", "conv_1", "alice", "x").created_at == 30
        assert [i.id for i in responses.items("conv_1", "alice")] == ["msg_1"]

        hits = index.lexical("vs_1", "otters", 5)
        assert [(h.chunk_id, h.file_id) for h in hits] == [(1, "file-1")]
        assert [
            h.chunk_id for h in index.semantic("vs_1", "e", np.ones(4, dtype=np.float32), 5)
        ] == [1]
        stores, _ = index.rows.page("vector_stores", {"owner": "alice"}, limit=5, order="desc")
        assert [s["name"] for s in stores] == ["notes"]
        assert index.one("SELECT 1 AS n FROM sqlite_master WHERE name = 'vs_sentences'") is None
    finally:
        index.close()
        store.close()
