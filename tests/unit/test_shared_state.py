"""The shared state of a cluster: the engine's tables on PostgreSQL and its blobs on S3
(SeaweedFS here), reached by several engines at once, each on a data folder of its own. No
Docker: these engines are never started, so only their stores and file objects run."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine import Engine, Settings, errors
from engine.blobs import S3Blobs, open_blobs
from engine.files import FileStore
from engine.lease import PRIMARY, folder_id
from engine.sessions import SessionInfo, SessionStatus
from engine.sessions.records import SessionRecords
from engine.sessions.snapshots import SnapshotMeta, SnapshotStore
from engine.store import Store

from ..support import cluster_services

pytestmark = pytest.mark.cluster

MB = 1024 * 1024


@pytest.fixture
def s3_url(s3_bucket: tuple[cluster_services.S3, str], monkeypatch: pytest.MonkeyPatch) -> str:
    s3, bucket = s3_bucket
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{bucket}/shared-{hashlib.sha256(str(monkeypatch).encode()).hexdigest()[:8]}"


@pytest.fixture
def pg_url(postgres_database: str) -> Iterator[str]:
    with cluster_services.throwaway_schema(postgres_database) as url:
        yield url


def _engine(data_dir: Path, pg_url: str, s3_url: str) -> Engine:
    return Engine(Settings(data_dir=data_dir, database_url=pg_url, files_url=s3_url, pool_size=0))


async def test_a_file_uploaded_through_one_engine_is_read_through_another(
    tmp_path: Path, pg_url: str, s3_url: str
) -> None:
    """Any replica serves any session's files: two engines, two data folders, one PostgreSQL
    and one bucket."""
    first = _engine(tmp_path / "a", pg_url, s3_url)
    second = _engine(tmp_path / "b", pg_url, s3_url)
    try:
        data = b"x,y\n" + b"1,2\n" * 1000
        created = await first.files.create(data, "points.csv", owner="alice")
        assert second.files.retrieve(created.id, "alice") == created
        assert await second.files.content(created.id, "alice") == data
        assert [f.id for f in second.files.list("alice").data] == [created.id]
        with pytest.raises(errors.FileNotFound):
            second.files.retrieve(created.id, "bob")
        assert not list((tmp_path / "b" / "files" / "blobs").glob("*"))  # not on B's disk

        conversation = await first.conversations.create(owner="alice", metadata={"k": "v"})
        got = await second.conversations.retrieve(conversation.id, owner="alice")
        assert got.metadata == {"k": "v"}

        second.files.delete(created.id, "alice")
        with pytest.raises(errors.FileNotFound):
            await first.files.content(created.id, "alice")
        assert not first.files.blobs.exists("alice", created.id)
    finally:
        for engine in (first, second):
            engine.store.close()
            engine.file_search.index.close()


async def test_a_tenant_cannot_name_another_tenants_blob(tmp_path: Path, s3_url: str) -> None:
    blobs = open_blobs(s3_url, "files", tmp_path / "unused")
    assert isinstance(blobs, S3Blobs)
    store = Store(tmp_path / "engine.db")
    files = FileStore(store, tmp_path / "files", 1 * MB, blobs=blobs)
    try:
        mine = await files.create(b"alice's", "a.txt", owner="alice")
        alice_key, bob_key = blobs.key("alice", mine.id), blobs.key("bob", mine.id)
        # The key's tenant part is a digest of the owner the row names, never a request's text.
        assert alice_key.split("/")[-3] != bob_key.split("/")[-3]
        assert blobs.exists("alice", mine.id) and not blobs.exists("bob", mine.id)
        with pytest.raises(FileNotFoundError):
            blobs.open("bob", mine.id)
        with pytest.raises(errors.FileNotFound):
            files.open_blob(mine.id, "bob")
        for name in ("../" + mine.id, f"x/../../{mine.id}", "a/b", "", ".", "..", "k" * 200):
            with pytest.raises(errors.InvalidRequest):
                blobs.key("bob", name)
        # Snapshots: the same rule, under their own kind.
        snapshots = SnapshotStore(open_blobs(s3_url, "snapshots", tmp_path / "unused"))
        meta = await snapshots.save("sess_abc", "alice", io.BytesIO(b"pickled"), MB)
        with pytest.raises(errors.SnapshotCorrupt, match="missing"):
            await snapshots.open("sess_abc", "bob", meta)
        with await snapshots.open("sess_abc", "alice", meta) as src:
            assert src.read() == b"pickled"
        with pytest.raises(errors.SnapshotCorrupt, match="checksum"):
            await snapshots.open("sess_abc", "alice", SnapshotMeta(meta.sha256, meta.bytes + 1))
        with pytest.raises(errors.PayloadTooLarge):
            await snapshots.save("sess_big", "alice", io.BytesIO(b"x" * (MB + 1)), MB)
        assert not snapshots._blobs.exists("alice", "sess_big")  # an upload over the cap is
        snapshots.delete("sess_abc", "alice")  # aborted, never left half-written
        assert not snapshots._blobs.exists("alice", "sess_abc")
    finally:
        store.close()


async def test_a_big_file_streams_to_s3_and_back(tmp_path: Path, s3_url: str) -> None:
    """96 MB in and out of S3, the Python heap never holding more than a few parts of it
    (measured: 7 MB up, 3 MB down)."""
    size = 96 * MB
    store = Store(tmp_path / "engine.db")
    files = FileStore(
        store, tmp_path / "files", 128 * MB, blobs=open_blobs(s3_url, "files", tmp_path)
    )
    block = bytes(range(256)) * 4096  # 1 MB

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    expected = hashlib.sha256()
    for _ in range(size // len(block)):
        expected.update(block)
    try:
        tracemalloc.start()
        created = await files.create(chunks(), "big.bin", owner="alice")
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got, total = hashlib.sha256(), 0
        async for chunk in files.iter_content(created.id, "alice"):
            got.update(chunk)
            total += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert created.bytes == size == total and got.hexdigest() == expected.hexdigest()
        assert files.blobs.size("alice", created.id) == size
        assert upload_peak < 24 * MB, f"the upload held {upload_peak / MB:.0f} MB at once"
        assert download_peak < 8 * MB, f"the download held {download_peak / MB:.0f} MB at once"
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        store.close()


def test_each_engine_recovers_only_its_own_folders_sessions(tmp_path: Path, pg_url: str) -> None:
    """Every primary engine is the owner ``primary`` of its folder: on a shared database, the
    folder's id tells their sessions apart, so that one engine's start never takes up
    another's live sessions."""
    (tmp_path / "other").mkdir()
    first, second = folder_id(tmp_path), folder_id(tmp_path / "other")
    assert first == folder_id(tmp_path) and first != second
    stores = [Store(tmp_path / "unused", pg_url, home) for home in (first, second)]
    try:
        for n, store in enumerate(stores):
            SessionRecords(store).insert(
                SessionInfo(
                    id=f"sess_{n}",
                    owner="alice",
                    thread_id=f"t{n}",
                    status=SessionStatus.ACTIVE,
                    created_at=1,
                    last_active_at=1,
                    expires_at=9,
                    idle_timeout=9,
                ),
                deadline=9,
                engine_owner=PRIMARY,
            )
        for n, store in enumerate(stores):
            rows = SessionRecords(store).unfinished([PRIMARY, None])
            assert [r["id"] for r in rows] == [f"sess_{n}"]
        # Yet each sees every session, its own or not, for everything else.
        assert SessionRecords(stores[0]).row("sess_1")["home"] == second
    finally:
        for store in stores:
            store.close()
