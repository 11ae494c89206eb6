"""Per-tenant quotas on file objects, and outputs bound to their session: the store alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import errors
from engine.files import FileQuota, FileStore
from engine.store import Store

KB = 1024


def files_with(
    tmp_path: Path, *, count: int = 100, size: int = 100 * KB, url: str = ""
) -> FileStore:
    store = Store(tmp_path / "db", url)
    return FileStore(store, tmp_path / "files", 64 * KB, FileQuota(count, size, 0))


async def test_count_quota_names_the_setting_and_spares_other_tenants(
    tmp_path: Path, database_url: str
) -> None:
    files = files_with(tmp_path, url=database_url, count=3)
    for i in range(3):
        await files.create(b"x", f"{i}.txt", owner="a")
    with pytest.raises(errors.QuotaExceeded) as caught:
        await files.create(b"x", "3.txt", owner="a")
    assert caught.value.code == "quota_exceeded"
    assert caught.value.setting == "SANDBOX_MAX_FILES_PER_OWNER" and caught.value.limit == 3
    assert "SANDBOX_MAX_FILES_PER_OWNER" in str(caught.value)
    assert isinstance(caught.value, errors.LimitExceeded)
    await files.create(b"x", "b.txt", owner="b")  # another tenant is not held back
    files.delete(files.list("a").data[0].id, "a")
    await files.create(b"x", "again.txt", owner="a")  # deleting frees room
    assert files.usage("a") == (3, 3)
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


async def test_bytes_quota_counts_uploads_and_outputs_together(
    tmp_path: Path, database_url: str
) -> None:
    files = files_with(tmp_path, url=database_url, size=100 * KB)
    await files.create(b"u" * 40 * KB, "upload.bin", owner="a")
    await files.create(b"o" * 40 * KB, "out.bin", "assistants_output", owner="a", session_id="s")
    with pytest.raises(errors.QuotaExceeded) as caught:
        await files.create(b"x" * 30 * KB, "third.bin", owner="a")
    assert caught.value.setting == "SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER"
    assert files.usage("a") == (2, 80 * KB)  # the refused one left no row and no bytes
    assert list((tmp_path / "files" / "tmp").iterdir()) == []
    assert len(list((tmp_path / "files" / "blobs").iterdir())) == 2
    await files.create(b"x" * 60 * KB, "b.bin", owner="b")


async def test_concurrent_uploads_cannot_overshoot_together(
    tmp_path: Path, database_url: str
) -> None:
    files = files_with(tmp_path, url=database_url, size=100 * KB)
    gate, started = asyncio.Event(), []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 30 * KB
        started.append(1)  # the first chunk is written: it counts while the upload goes on
        if len(started) == 3:
            gate.set()
        await gate.wait()
        yield b"x" * 30 * KB

    uploads = [files.create(chunks(), f"{i}.bin", owner="a") for i in "123"]
    results = await asyncio.gather(*uploads, return_exceptions=True)
    refused = [r for r in results if isinstance(r, errors.QuotaExceeded)]
    # 3 x 30 KB in flight, then each second chunk: 120 KB (refused), 90 KB, 120 KB (refused).
    assert len(refused) == 2, results
    assert files.usage("a") == (1, 60 * KB)


async def test_a_replaced_file_is_not_counted_twice(tmp_path: Path, database_url: str) -> None:
    files = files_with(tmp_path, url=database_url, size=100 * KB)
    old = await files.create(
        b"o" * 60 * KB, "out.bin", "assistants_output", owner="a", session_id="s"
    )
    new = await files.create(
        b"n" * 60 * KB,
        "out.bin",
        "assistants_output",
        owner="a",
        session_id="s",
        replaces=old.id,
    )
    assert files.drop_output(old.id, "s")
    assert files.usage("a") == (1, 60 * KB)
    assert files.retrieve(new.id).expires_with_session


async def test_outputs_end_with_their_session_unless_kept(
    tmp_path: Path, database_url: str
) -> None:
    files = files_with(tmp_path, url=database_url)
    upload = await files.create(b"in", "in.txt", owner="a")
    out = await files.create(b"1", "out.txt", "assistants_output", owner="a", session_id="s1")
    kept = await files.create(b"2", "kept.txt", "assistants_output", owner="a", session_id="s1")
    other = await files.create(b"3", "o.txt", "assistants_output", owner="a", session_id="s2")
    assert out.expires_with_session and not upload.expires_with_session
    assert files.keep(kept.id, "a").expires_with_session is False
    with pytest.raises(errors.FileNotFound):
        files.keep(kept.id, "b")  # another tenant's file is not found
    assert not files.drop_output(upload.id, "s1")  # an upload never goes with a session
    assert files.drop_session_outputs("s1") == 1
    with pytest.raises(errors.FileNotFound):
        files.retrieve(out.id)
    assert not (tmp_path / "files" / "blobs" / out.id).exists()
    assert await files.content(kept.id) == b"2"
    assert await files.content(upload.id) == b"in"
    assert files.retrieve(other.id).expires_with_session
