"""The warm pool: sessions start from pre-started sandboxes, each used once."""

from __future__ import annotations

import time
from pathlib import Path

from engine import Engine

from ..support.engines import make_settings


async def test_sessions_come_from_the_pool_and_it_refills(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=2, pool_min=1, pool_max=3)
    async with Engine(settings) as engine:
        pool = engine.pool
        assert pool is not None
        await pool.wait_ready(2)
        started = time.perf_counter()
        a = await engine.session("warm-a")
        warm_start = time.perf_counter() - started
        assert pool.hits == 1 and pool.misses == 0
        assert warm_start < 0.5
        # A warm kernel is started but has not imported the stack: its first use does.
        r = await a.execute("import sys; print('pandas' in sys.modules)")
        assert r.stdout == "False\n"
        assert r.execution_count == 1
        r = await a.execute("print(type(pd.DataFrame()).__name__)")
        assert r.stdout == "DataFrame\n"
        b = await engine.session("warm-b")
        assert pool.hits == 2
        assert a.sandbox.id != b.sandbox.id
        await pool.wait_ready(2)  # refilled in the background
        used = {a.sandbox.id, b.sandbox.id}
        await engine.sessions.close(a.id)
        c = await engine.session("warm-c")
        assert c.sandbox.id not in used  # a sandbox is never handed out twice


async def test_empty_pool_falls_back_to_cold_start_and_grows(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=0, pool_min=0, pool_max=2)
    async with Engine(settings) as engine:
        # pool_size 0 with pool_min 0 means no pool at all
        assert engine.pool is None
    settings = make_settings(tmp_path / "b", pool_size=1, pool_min=0, pool_max=2)
    async with Engine(settings) as engine:
        pool = engine.pool
        assert pool is not None
        a = await engine.session("cold-a")  # before the pool has anything ready
        assert pool.misses == 1
        assert pool.target == 2  # demand outran it: the target grew
        assert (await a.execute("1+1")).text == "2"


async def test_custom_memory_limit_bypasses_the_pool(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, pool_max=1)
    async with Engine(settings) as engine:
        pool = engine.pool
        assert pool is not None
        await pool.wait_ready(1)
        s = await engine.session("big", memory_limit_mb=768)
        assert pool.hits == 0 and pool.ready == 1
        r = await s.execute("print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())")
        assert r.stdout.strip() == str(768 * 1024 * 1024)
