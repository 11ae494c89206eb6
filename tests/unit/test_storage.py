"""The fast tier's storage: the SQLite store and file objects, in a temporary folder. No Docker."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine import errors
from engine.blobs import open_blobs
from engine.files import FileStore, guess_mime_type
from engine.store import Store


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    store = Store(tmp_path / "db" / "engine.sqlite", database_url)
    yield store
    store.close()


@pytest.fixture
def files(store: Store, tmp_path: Path, files_url: str) -> FileStore:
    blobs = open_blobs(files_url, "files", tmp_path / "files" / "blobs")
    return FileStore(store, tmp_path / "files", max_bytes=1000, blobs=blobs)


def _row(file_id: str, owner: str, created_at: int = 1) -> dict[str, object]:
    return {
        "id": file_id,
        "owner": owner,
        "filename": f"{file_id}.txt",
        "purpose": "assistants",
        "bytes": 3,
        "mime_type": "text/plain",
        "sha256": "0" * 64,
        "created_at": created_at,
    }


# --- the store ---


def test_insert_one_all_and_update(store: Store) -> None:
    store.insert("files", _row("f1", "alice"))
    store.insert("files", _row("f2", "bob", created_at=2))
    row = store.one("SELECT * FROM files WHERE id = ?", ("f1",))
    assert row is not None and row["owner"] == "alice" and row["session_id"] is None
    assert store.one("SELECT * FROM files WHERE id = ?", ("nope",)) is None
    assert [r["id"] for r in store.all("SELECT id FROM files ORDER BY created_at")] == ["f1", "f2"]

    assert store.update("files", "id", "f1", filename="renamed.txt", bytes=4) == 1
    assert store.update("files", "id", "absent", filename="x") == 0
    row = store.one("SELECT filename, bytes FROM files WHERE id = 'f1'")
    assert row == {"filename": "renamed.txt", "bytes": 4}

    with pytest.raises(sqlite3.IntegrityError):
        store.insert("files", _row("f1", "mallory"))
    store.insert("files", _row("f1", "alice", created_at=9), replace=True)
    assert store.one("SELECT created_at FROM files WHERE id = 'f1'") == {"created_at": 9}


def test_another_owners_row_looks_exactly_like_a_missing_one(store: Store) -> None:
    store.insert("files", _row("f1", "alice"))
    missing = errors.FileNotFound("no file with id 'f1'")
    assert store.owned("files", "f1", "alice", missing)["id"] == "f1"
    assert store.owned("files", "f1", None, missing)["owner"] == "alice"
    with pytest.raises(errors.FileNotFound) as other_owner:
        store.owned("files", "f1", "bob", missing)
    with pytest.raises(errors.FileNotFound) as absent:
        store.owned("files", "f9", "bob", missing)
    assert other_owner.value is absent.value is missing
    assert isinstance(missing, errors.NotFound)
    with pytest.raises(errors.InvalidRequest, match="an id must be a string"):
        store.owned("files", 1, "alice", missing)


def test_the_schema_is_created_idempotently(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    store.insert(
        "files",
        {
            "id": "t",
            "owner": "o",
            "filename": "n",
            "purpose": "p",
            "bytes": 1,
            "mime_type": "m",
            "sha256": "s",
            "created_at": 1,
        },
    )
    store.close()
    reopened = Store(tmp_path / "db" / "engine.sqlite", database_url)
    assert [r["id"] for r in reopened.all("SELECT id FROM files")] == ["t"]
    reopened.close()


# --- file objects ---


async def test_create_retrieve_content_and_delete(files: FileStore) -> None:
    created = await files.create(b"a,b\n1,2\n", "sales.csv", owner="alice")
    assert created.id.startswith("file-") and created.bytes == 8
    assert created.mime_type == "text/csv" and created.purpose == "assistants"
    assert files.retrieve(created.id, "alice") == created
    assert await files.content(created.id, "alice") == b"a,b\n1,2\n"
    assert "owner" not in created.model_dump()

    files.delete(created.id, "alice")
    with pytest.raises(errors.FileNotFound):
        files.retrieve(created.id)
    assert not files.blobs.exists("alice", created.id)


async def test_every_kind_of_source(files: FileStore, tmp_path: Path) -> None:
    on_disk = tmp_path / "notes.md"
    on_disk.write_bytes(b"# hi\n")
    with on_disk.open("rb") as f:
        from_file = await files.create(f)
    assert from_file.filename == "notes.md" and from_file.mime_type == "text/markdown"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    from_stream = await files.create(chunks(), "stream.bin")
    from_list = await files.create([b"x", b"y"], "list.txt")
    from_buffer = await files.create(io.BytesIO(b"buffered"), "buffer.dat")
    assert await files.content(from_stream.id) == b"one two"
    assert await files.content(from_list.id) == b"xy"
    assert from_buffer.filename == "buffer.dat" and from_buffer.bytes == 8
    assert from_stream.mime_type == "application/octet-stream"
    with pytest.raises(errors.InvalidRequest):
        await files.create(12345, "number.txt")  # type: ignore[arg-type]


async def test_owners_are_isolated(files: FileStore) -> None:
    mine = await files.create(b"mine", "a.txt", owner="alice")
    theirs = await files.create(b"theirs", "b.txt", owner="bob")
    assert [f.id for f in files.list("alice").data] == [mine.id]
    assert {f.id for f in files.list().data} == {mine.id, theirs.id}
    with pytest.raises(errors.FileNotFound):
        files.retrieve(theirs.id, "alice")
    with pytest.raises(errors.FileNotFound):
        await files.content(theirs.id, "alice")
    with pytest.raises(errors.FileNotFound):
        files.delete(theirs.id, "alice")
    assert await files.content(theirs.id, "bob") == b"theirs"


async def test_listing_pages_and_filters(files: FileStore) -> None:
    made = [await files.create(b"x", f"{i}.txt", owner="o") for i in range(5)]
    await files.create(b"x", "out.png", purpose="assistants_output", owner="o")
    page = files.list("o", purpose="assistants", limit=2, order="asc")
    assert page.has_more and page.first_id == page.data[0].id
    seen = [f.id for f in page.data]
    while page.has_more:
        page = files.list("o", purpose="assistants", limit=2, order="asc", after=page.last_id)
        seen += [f.id for f in page.data]
    assert sorted(seen) == sorted(f.id for f in made) and len(seen) == 5
    with pytest.raises(errors.InvalidRequest):
        files.list("o", limit=0)


async def test_the_size_cap_leaves_no_trace(files: FileStore) -> None:
    with pytest.raises(errors.PayloadTooLarge, match="1000 byte limit"):
        await files.create([b"x" * 600, b"y" * 600], "big.bin")
    exact = await files.create(b"z" * 1000, "exact.bin")
    assert exact.bytes == 1000
    assert [f.id for f in files.list().data] == [exact.id]
    assert list((files.root / "tmp").iterdir()) == []
    assert [b.name for b in files.blobs.listed()] == [exact.id]


@pytest.mark.parametrize(
    ("filename", "purpose"), [("../escape.txt", "assistants"), ("ok.txt", "nonsense")]
)
async def test_bad_names_and_purposes_write_nothing(
    files: FileStore, filename: str, purpose: str
) -> None:
    with pytest.raises(errors.InvalidRequest):
        await files.create(b"data", filename, purpose)
    assert files.list().data == []
    assert list(files.blobs.listed()) == []


async def test_sweep_removes_what_a_crash_left(files: FileStore) -> None:
    kept = await files.create(b"keep", "keep.txt")
    (files.root / "tmp" / "file-halfwritten").write_bytes(b"partial")
    orphan = files.root / "orphan"
    orphan.write_bytes(b"no row")
    files.blobs.put_file("alice", "file-orphan", orphan)
    if files.blobs.shared:  # a young orphan may be another engine's upload, its row not yet in
        assert files.sweep() == 1
        assert sorted(b.name for b in files.blobs.listed()) == sorted([kept.id, "file-orphan"])
    else:
        assert files.sweep() == 2
        assert [b.name for b in files.blobs.listed()] == [kept.id]
    assert await files.content(kept.id) == b"keep"


def test_mime_types_follow_the_seeds_table() -> None:
    assert guess_mime_type("a.py") == "text/x-python"
    assert guess_mime_type("A.DOCX").endswith("wordprocessingml.document")
    assert guess_mime_type("chart.png") == "image/png"
    assert guess_mime_type("no-extension") == "application/octet-stream"
