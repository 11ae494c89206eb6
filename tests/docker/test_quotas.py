"""Quotas per tenant with real sandboxes and a real server: file objects, live sessions and
their memory; outputs that a session rewrites are replaced, and end with it unless kept."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from engine import Engine, ExecutionStatus, Settings
from engine.errors import FileNotFound, QuotaExceeded

from ..support.engines import make_settings, small_tmpfs
from ..support.servers import LiveServer

MB = 1024 * 1024
KEYS = ("key-a", "key-b")
WRITE_X_AND_Y = "open('/mnt/data/x.txt', 'w').write('x')\nopen('/mnt/data/y.txt', 'w').close()"


def openai_client(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0, timeout=120)


def native(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )


async def test_live_sessions_and_committed_memory_per_tenant(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, memory_limit_mb=256, max_sessions_per_owner=2, max_memory_mb_per_owner=1024
    )
    async with Engine(settings) as engine:
        await engine.session("1", owner="a")
        second = await engine.session("2", owner="a")
        with pytest.raises(QuotaExceeded) as caught:
            await engine.session("3", owner="a")
        assert caught.value.setting == "SANDBOX_MAX_SESSIONS_PER_OWNER"
        assert "2 live sessions" in str(caught.value)
        assert (await engine.session("1", owner="a")) is not None  # an existing one: no new slot
        big = await engine.session("big", owner="b", memory_limit_mb=768)
        with pytest.raises(QuotaExceeded) as caught:
            await engine.session("more", owner="b", memory_limit_mb=512)
        assert caught.value.setting == "SANDBOX_MAX_MEMORY_MB_PER_OWNER"
        assert "768 MB" in str(caught.value) and "1024 MB" in str(caught.value)
        assert engine.sessions.committed("b") == (1, 768)
        # Ending a session gives its room back, to its own tenant only.
        await engine.sessions.close(big.id)
        assert await (await engine.session("more", owner="b", memory_limit_mb=512)).execute("1")
        await engine.sessions.close(second.id)
        await engine.session("3", owner="a")


async def test_rewritten_outputs_are_replaced_and_end_with_their_session(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, memory_limit_mb=512, max_file_storage_mb_per_owner=6)
    async with Engine(settings) as engine:
        session = await engine.session("rewrites", owner="t")
        data = await session.upload("data.csv", b"a,b\n1,2\n")
        ids = []
        for i in range(4):  # 4 x 2 MB rewrites would stack to 8 MB, over the 6 MB quota
            r = await session.execute(f"open('/mnt/data/out.bin', 'wb').write(b'{i}' * 2_000_000)")
            assert r.status is ExecutionStatus.OK and [o.filename for o in r.outputs] == [
                "out.bin"
            ], r
            ids.append(r.outputs[0].file_id)
        for old in ids[:-1]:
            with pytest.raises(FileNotFound):
                engine.files.retrieve(old, "t")
        latest = engine.files.retrieve(ids[-1], "t")
        assert latest.expires_with_session and latest.session_id == session.id
        assert (await engine.files.content(latest.id))[:3] == b"333"
        # Rewriting an input leaves the upload alone: it is the user's, not the session's.
        r = await session.execute("open('/mnt/data/data.csv', 'a').write('3,4\\n')")
        rewritten = r.outputs[0].file_id
        assert await engine.files.content(data.file_id or "") == b"a,b\n1,2\n"
        # A kept output is not replaced by the next rewrite either.
        kept = session.keep_output(ids[-1])
        assert kept.expires_with_session is False
        r = await session.execute("open('/mnt/data/out.bin', 'wb').write(b'4' * 10)")
        assert engine.files.retrieve(kept.id, "t").bytes == 2_000_000
        newest = r.outputs[0].file_id
        with pytest.raises(FileNotFound):
            session.keep_output(data.file_id or "")  # an upload is no output of the session
        assert engine.files.usage("t") == (4, 2_000_000 + 10 + len(b"a,b\n1,2\n") + 12)
        await engine.sessions.close(session.id)
        for gone in (rewritten, newest):
            with pytest.raises(FileNotFound):
                engine.files.retrieve(gone, "t")
        assert await engine.files.content(kept.id) == b"3" * 2_000_000
        assert await engine.files.content(data.file_id or "") == b"a,b\n1,2\n"
        assert engine.files.usage("t") == (2, 2_000_000 + 8)


async def test_outputs_over_quota_are_left_out_and_said_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, memory_limit_mb=512, max_files_per_owner=3)
    async with Engine(settings) as engine:
        session = await engine.session(owner="t")
        r = await session.execute(
            "for i in range(5):\n    open(f'/mnt/data/f{i}.txt', 'w').write(str(i))"
        )
        assert r.status is ExecutionStatus.OK
        assert len(r.outputs) == 3 and r.dropped.get("files") == 2, r
        assert r.notice is not None and "SANDBOX_MAX_FILES_PER_OWNER" in r.notice
        assert (await session.execute("print('still fine')")).stdout == "still fine\n"


def test_quota_errors_over_http_and_promotion(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        api_keys=",".join(KEYS),
        memory_limit_mb=256,
        max_files_per_owner=3,
        max_sessions_per_owner=1,
    )
    server = LiveServer(settings)
    server.start()
    try:
        a, b = openai_client(server, KEYS[0]), openai_client(server, KEYS[1])
        for i in range(3):
            a.files.create(file=(f"{i}.txt", b"x"), purpose="assistants")
        with pytest.raises(openai.PermissionDeniedError) as caught:
            a.files.create(file=("3.txt", b"x"), purpose="assistants")
        error = caught.value.body
        assert isinstance(error, dict) and caught.value.status_code == 403
        assert error["code"] == "quota_exceeded" and error["type"] == "insufficient_quota"
        assert "SANDBOX_MAX_FILES_PER_OWNER" in error["message"]
        b.files.create(file=("b.txt", b"x"), purpose="assistants")
        with native(server, KEYS[1]) as http:
            sid = http.post("/v1/sessions", json={}).json()["id"]
            refused = http.post("/v1/sessions", json={})
            assert refused.status_code == 403, refused.text
            assert "SANDBOX_MAX_SESSIONS_PER_OWNER" in refused.json()["error"]["message"]
            r = http.post(
                f"/v1/sessions/{sid}/execute",
                json={"code": WRITE_X_AND_Y},
            ).json()
            out = {o["filename"]: o["file_id"] for o in r["outputs"]}
            shown = b.files.retrieve(out["x.txt"])  # ends with the session: OpenAI's expires_at
            assert shown.expires_at is not None and shown.expires_at > time.time()
            keep = f"/v1/sessions/{sid}/files/{out['x.txt']}/keep"
            kept = http.post(keep)
            assert kept.status_code == 200 and kept.json()["expires_with_session"] is False
            with native(server, KEYS[0]) as other:  # another tenant cannot keep it
                assert other.post(keep).status_code == 404
            assert http.delete(f"/v1/sessions/{sid}").status_code == 200
            assert http.get(f"/v1/files/{out['y.txt']}").status_code == 404
            assert http.get(f"/v1/files/{out['x.txt']}/content").content == b"x"
            assert b.files.retrieve(out["x.txt"]).expires_at is None
    finally:
        server.stop()


# --- one tenant fills a small data folder ---


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 80 MB tmpfs as the engine's data folder."""
    with small_tmpfs(tmp_path / "small", 80) as mount:
        yield mount


def test_a_tenant_over_quota_leaves_the_others_room(small_disk: Path) -> None:
    settings = Settings(
        data_dir=small_disk / "engine",
        api_keys=",".join([*KEYS, "key-c"]),
        pool_size=0,
        pool_min=0,
        memory_limit_mb=256,
        max_file_storage_mb_per_owner=30,
        disk_reserve_mb=8,
        shutdown_sandboxes="close",
    )
    server = LiveServer(settings)
    server.start()
    try:
        a, b, c = (openai_client(server, key) for key in (*KEYS, "key-c"))
        chunk = os.urandom(5 * MB)
        stored = 0
        with pytest.raises(openai.PermissionDeniedError) as caught:
            for i in range(20):
                a.files.create(file=(f"a{i}.bin", chunk), purpose="assistants")
                stored += 1
        assert stored == 6 and caught.value.status_code == 403
        assert "SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER" in str(caught.value)
        with native(server, KEYS[0]) as http:  # its code goes on; its outputs are left out
            sid = http.post("/v1/sessions", json={}).json()["id"]
            r = http.post(
                f"/v1/sessions/{sid}/execute",
                json={"code": "open('/mnt/data/big.bin','wb').write(b'a' * 10_000_000)"},
            ).json()
            assert r["status"] == "ok" and r["outputs"] == [] and r["dropped"] == {"files": 1}
            assert "SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER" in r["notice"]
        # Tenant B still uploads, makes threads and sessions, and gets its outputs.
        for i in range(3):
            b.files.create(file=(f"b{i}.bin", chunk), purpose="assistants")
        assert b.beta.threads.create().id
        with native(server, KEYS[1]) as http:
            sid = http.post("/v1/sessions", json={}).json()["id"]
            r = http.post(
                f"/v1/sessions/{sid}/execute",
                json={"code": "open('/mnt/data/out.txt','w').write('b')"},
            ).json()
            assert [o["filename"] for o in r["outputs"]] == ["out.txt"], r
        # A third tenant within its quota stops at the disk's reserve, which keeps the store
        # writable for everyone: B's next thread and session still work.
        refusal = None
        for i in range(20):
            try:
                c.files.create(file=(f"c{i}.bin", chunk), purpose="assistants")
            except openai.APIStatusError as exc:
                refusal = exc
                break
        assert refusal is not None and refusal.status_code == 507
        assert "SANDBOX_DISK_RESERVE_MB" in str(refusal)
        assert b.beta.threads.create().id
        with native(server, KEYS[1]) as http:
            assert http.post("/v1/sessions", json={}).status_code == 200
    finally:
        server.stop()
