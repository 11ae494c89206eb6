"""Many paused sessions cost disk, not memory: an engine starts without taking any of them up,
lists them all, and resumes any one with its variables. The clones are made the way the
capacity benchmark makes its 10,000 (benchmarks/paused_clones.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

from benchmarks.paused_clones import clone_paused
from engine import Engine, Session
from engine.sessions import SessionStatus

from ..support.engines import make_settings
from ..support.serve_process import containers

CLONES = 300
LONG = {"session_ttl": 86_400, "idle_timeout": 86_400, "auto_pause_after": 0}


def sessions_in_memory(ids: set[str]) -> set[str]:
    gc.collect()
    return {o.id for o in gc.get_objects() if isinstance(o, Session) and o.id in ids}


async def test_paused_clones_stay_on_disk_until_one_is_used(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **LONG)
    async with Engine(settings) as engine:
        session = await engine.session("source")
        code = "import numpy as np\narr = np.arange(1000)\nopen('kept.txt', 'w').write('k')"
        assert (await session.execute(code)).error is None
        assert (await session.pause()).status is SessionStatus.PAUSED
        source = session.id
        del session
    clones = await clone_paused(settings.data_dir, [source], CLONES)
    every = {source, *clones}
    assert len(every) == CLONES + 1
    snapshots = settings.data_dir / "snapshots"
    orphan = snapshots / f"sess_{'0' * 32}"  # what a crash in mid-pause leaves
    orphan.write_bytes(b"left")
    os.utime(orphan, (time.time() - 60, time.time() - 60))

    async with Engine(settings) as engine:
        assert engine.sessions.live() == []
        assert sessions_in_memory(every) == set()
        deadline = time.monotonic() + 30
        while orphan.exists():  # swept beside the first requests
            assert time.monotonic() < deadline, "the orphan snapshot was never swept"
            await asyncio.sleep(0.05)
        assert {p.name for p in snapshots.iterdir()} == every
        listed: list[str] = []
        after = None
        while True:
            page = engine.sessions.list(limit=100, after=after)
            assert {info.status for info in page.data} == {SessionStatus.PAUSED}
            listed += [info.id for info in page.data]
            if not page.has_more:
                break
            after = page.last_id
        assert len(listed) == len(every) and set(listed) == every
        assert sessions_in_memory(every) == set()  # listing builds no session objects

        clone = engine.get_session(clones[CLONES // 2])
        result = await clone.execute("print(int(arr.sum()), np.__name__, open('kept.txt').read())")
        assert result.error is None, result.error
        assert result.stdout == "499500 numpy k\n"
        assert clone.status is SessionStatus.ACTIVE
        assert [s.id for s in engine.sessions.live()] == [clone.id]
        assert engine.sessions.info(clones[0]).status is SessionStatus.PAUSED
        assert len(containers(settings.data_dir)) == 1
