"""Pause and resume: a paused session keeps its variables and files on disk, not in memory, and
any use resumes it; auto-pause, restarts, the snapshot cap and a tampered snapshot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine import Engine, SyncEngine
from engine.errors import SessionClosed
from engine.sessions import SessionStatus

from ..support.engines import make_settings
from ..support.serve_process import containers

STATE = """
import collections as co
import pandas as pd
df = pd.DataFrame({"x": [1, 2, 3]})
shared = [1, 2]
alias = shared
k = 10
def add_k(n):
    return n + k
class Point:
    def __init__(self, v):
        self.v = v
    def twice(self):
        return self.v * 2
p = Point(21)
gen = (i for i in range(3))
import threading
worker = threading.Thread(target=lambda: None)
import os
os.makedirs("/mnt/data/sub", exist_ok=True)
open("/mnt/data/sub/notes.txt", "w").write("nested")
"""
CHECK = (
    "k = 100\n"
    "print(add_k(1), p.twice(), isinstance(p, Point), alias is shared, int(df.x.sum()), "
    "co.OrderedDict.__name__, open('/mnt/data/sub/notes.txt').read())"
)
EXPECTED = "101 42 True True 6 OrderedDict nested\n"


async def wait_status(engine: Engine, session_id: str, status: SessionStatus) -> None:
    deadline = time.monotonic() + 60
    while engine.sessions.info(session_id).status is not status:
        assert time.monotonic() < deadline, f"never {status}"
        await asyncio.sleep(0.1)


async def test_pause_frees_the_sandbox_and_execute_resumes_with_everything(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as engine:
        session = await engine.session("t")
        assert (await session.execute(STATE)).error is None
        info = await session.pause()
        assert info.status is SessionStatus.PAUSED
        assert engine.sessions.info(session.id).status is SessionStatus.PAUSED
        assert info.notice is not None
        assert "gen (TypeError" in info.notice and "worker (TypeError" in info.notice
        assert containers(engine.settings.data_dir) == []
        snapshot = engine.settings.data_dir / "snapshots" / session.id
        assert snapshot.stat().st_mode & 0o777 == 0o600
        result = await session.execute(CHECK)  # resumes it first
        assert result.error is None, result.error
        assert result.stdout == EXPECTED
        assert result.notice is not None and "gen" in result.notice
        assert session.status is SessionStatus.ACTIVE
        assert not snapshot.exists()
        assert len(containers(engine.settings.data_dir)) == 1
        assert [f.path for f in await session.list_files()] == ["/mnt/data/sub/notes.txt"]


async def test_every_use_resumes_and_the_thread_finds_its_paused_session(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as engine:
        session = await engine.session("t")
        await session.execute("v = 'back'")
        await session.pause()
        await session.pause()  # a second pause changes nothing
        assert await engine.session("t") is session  # the thread's session, still paused
        assert session.status is SessionStatus.PAUSED
        await session.interrupt()  # nothing runs: no resume
        assert session.status is SessionStatus.PAUSED
        assert (await session.upload("u.txt", b"up")).path == "/mnt/data/u.txt"
        assert session.status is SessionStatus.ACTIVE
        await session.pause()
        assert await session.read_file("u.txt") == b"up"
        await session.pause()
        info = await session.resume()
        assert info.status is SessionStatus.ACTIVE
        assert (await session.execute("print(v)")).stdout == "back\n"


async def test_auto_pause_then_a_restart_keeps_the_paused_session(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auto_pause_after=2, reaper_interval=0.2)
    async with Engine(settings) as engine:
        session = await engine.session("t")
        await session.execute("import numpy as np\narr = np.arange(5)")
        await wait_status(engine, session.id, SessionStatus.PAUSED)
        await session.wait_idle()  # the pause has finished
        assert containers(settings.data_dir) == []
        session_id = session.id
    async with Engine(settings) as engine:
        assert engine.sessions.info(session_id).status is SessionStatus.PAUSED
        again = engine.get_session(session_id)
        result = await again.execute("print(int(arr.sum()), np.__name__)")
        assert result.stdout == "10 numpy\n", result


async def test_over_the_cap_only_files_are_kept_and_the_resume_says_so(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path, max_snapshot_mb=1)) as engine:
        session = await engine.session("t")
        await session.execute(
            "import numpy as np\nbig = np.ones(400_000)\nopen('kept.txt', 'w').write('f')"
        )
        info = await session.pause()
        assert info.notice is not None and "SANDBOX_MAX_SNAPSHOT_MB" in info.notice
        result = await session.execute("print(open('kept.txt').read()); big")
        assert result.stdout == "f\n"
        assert result.error is not None and result.error.name == "NameError"
        assert result.state_lost and result.notice is not None
        assert "without its variables" in result.notice


async def test_a_tampered_snapshot_is_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as engine:
        session = await engine.session("t")
        await session.execute("x = 1")
        await session.pause()
        snapshot = engine.settings.data_dir / "snapshots" / session.id
        snapshot.write_bytes(snapshot.read_bytes() + b"x")
        result = await session.execute("print('alive'); x")
        assert result.stdout == "alive\n"
        assert result.error is not None and result.error.name == "NameError"
        assert result.notice is not None and "checksum" in result.notice


async def test_a_paused_session_ends_after_its_paused_ttl(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, paused_ttl=1, reaper_interval=0.2)
    async with Engine(settings) as engine:
        session = await engine.session("t")
        await session.execute("open('out.txt', 'w').write('o')")
        await session.pause()
        await wait_status(engine, session.id, SessionStatus.EXPIRED)
        assert not (settings.data_dir / "snapshots" / session.id).exists()
        with pytest.raises(SessionClosed):
            await session.execute("1")
        fresh = await engine.session("t")
        assert fresh.id != session.id


def test_the_sync_face_pauses_and_resumes(tmp_path: Path) -> None:
    with SyncEngine(make_settings(tmp_path)) as engine:
        session = engine.session("t")
        session.execute("y = 7")
        assert session.pause().status is SessionStatus.PAUSED
        assert session.execute("print(y * 6)").stdout == "42\n"


async def test_a_resume_takes_a_sandbox_with_the_stack_imported(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, pool_min=1, resume_pool_size=1)
    async with Engine(settings) as engine:
        resumes, pool = engine.runtime.resume_pool, engine.pool
        assert resumes is not None and pool is not None
        await resumes.wait_ready(1)
        await pool.wait_ready(1)
        session = await engine.session("t")  # a new session never takes a stacked sandbox
        assert (resumes.hits, pool.hits) == (0, 1)
        await session.execute("import pandas as pd\ndf = pd.DataFrame({'x': [4, 5]})")
        await session.pause()
        result = await session.execute("print(int(df.x.sum()))")
        assert result.stdout == "9\n", result
        assert resumes.hits == 1
