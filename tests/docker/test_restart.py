"""The engine process is killed with SIGKILL mid-execution and started again: nothing is lost,
and the session continues in its sandbox (the execution in flight reported as interrupted)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from engine import Engine, SessionClosed
from engine.runtime import HOME_LABEL
from engine.sessions import SessionStatus

from ..support.engine_process import MIDWAY, PAYLOAD, kill_mid_execution
from ..support.engines import make_settings


async def test_kill_9_mid_execution_then_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    ids = kill_mid_execution("restart", settings.data_dir)

    client = docker.from_env()
    async with Engine(make_settings(settings.data_dir.parent)) as engine:
        label = f"{HOME_LABEL}={engine.labels[HOME_LABEL]}"
        (box,) = client.containers.list(all=True, filters={"label": label})
        assert await engine.files.content(ids["input"]) == PAYLOAD
        assert await engine.files.content(ids["output"]) == PAYLOAD
        session = engine.get_session(ids["session"])
        assert session.info.status is SessionStatus.ACTIVE
        assert session.info.notice is not None and "interrupted" in session.info.notice
        assert box.name == f"sandbox-engine-{session.sandbox.id}"  # the same sandbox
        # The execution in flight is not run again; what it wrote is still in /mnt/data, and
        # the next execution exports it (once) as the change it is.
        r = await session.execute(
            "print(open('midway.bin', 'rb').read() == bytes(range(256)) * 4096)"
        )
        assert r.stdout == "True\n" and not r.state_lost
        assert r.notice is not None and "interrupted" in r.notice
        (midway,) = r.outputs
        assert midway.path == "/mnt/data/midway.bin"
        assert await engine.files.content(midway.file_id) == MIDWAY
        salvaged = [f for f in engine.files.list(limit=100).data if f.filename == "midway.bin"]
        assert len(salvaged) == 1 and salvaged[0].session_id == ids["session"]
        # copy.bin was exported before the kill and has not changed: not exported twice.
        copies = [f for f in engine.files.list(limit=100).data if f.filename == "copy.bin"]
        assert len(copies) == 1
        assert (await engine.session("restart-thread")).id == ids["session"]
        assert (await session.execute("print('ok')")).stdout == "ok\n"
    # This engine closed its sessions (SANDBOX_SHUTDOWN_SANDBOXES=close): nothing is left.
    assert client.containers.list(all=True, filters={"label": label}, sparse=True) == []
    assert client.volumes.list(filters={"label": label}) == []
    async with Engine(make_settings(settings.data_dir.parent)) as engine:
        assert engine.sessions.info(ids["session"]).status is SessionStatus.CLOSED
        with pytest.raises(SessionClosed):
            engine.get_session(ids["session"])
        fresh = await engine.session("restart-thread")
        assert fresh.id != ids["session"]
        assert (await fresh.execute("print('ok')")).stdout == "ok\n"


async def test_half_written_upload_leaves_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings) as engine:
        kept = await engine.files.create(b"kept", "kept.txt")
        root = engine.files.root
    # What a crash mid-upload leaves: a temp file, and a blob whose row never committed.
    (root / "tmp" / "file-partial").write_bytes(b"half")
    (root / "blobs" / "file-orphan").write_bytes(b"orphan")
    async with Engine(settings) as engine:
        assert list((root / "tmp").iterdir()) == []
        assert not (root / "blobs" / "file-orphan").exists()
        assert await engine.files.content(kept.id) == b"kept"
        assert [f.id for f in engine.files.list().data] == [kept.id]
