"""A sandbox ends at its deadline by itself, whether or not an engine is running: after a
graceful stop that keeps it, after a library script's exit, for a pool whose engine is gone; and
an engine that re-adopts a sandbox moves its deadline on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker

from engine import Engine
from engine.pool import WarmPool
from engine.sandbox.docker_sandbox import DockerSandbox
from engine.sandbox.lifetime import CHECK_EVERY, read_deadline
from engine.sessions import kernel_limits, sandbox_spec

from ..support.engines import make_settings
from ..support.serve_process import containers, home_filter, start

SLACK = 2 * 0.5 + 10
"""How long a sandbox outlives its session's deadline, with the reaper ticking every 0.5 s."""
SHORT_TTL = {"session_ttl": 60, "idle_timeout": 600, "reaper_interval": 0.5}
"""A TTL long enough for a session to start and run once on a loaded machine (starts took up
to 20 s here with 8 test runs sharing 2 cores)."""
SHORT_IDLE = {"session_ttl": 600, "idle_timeout": 12, "reaper_interval": 0.5, "auto_pause_after": 0}
RESTARTABLE_IDLE = {**SHORT_IDLE, "idle_timeout": 40}
"""Idle time enough for a server to restart before the session counts as expired."""


def running(data_dir: Path) -> list[str]:
    """Names of the data folder's running containers."""
    filters = {**home_filter(data_dir), "status": "running"}
    listed = docker.from_env().api.containers(filters=filters)
    return sorted(c["Names"][0].lstrip("/") for c in listed)


def deadline_of(data_dir: Path, container: str) -> int:
    """The deadline the engine last wrote for a sandbox (its container is sandbox-engine-<id>)."""
    sandbox_id = container.removeprefix("sandbox-engine-")
    found = read_deadline(data_dir / "sandboxes" / sandbox_id / "conn")
    assert found is not None, f"no deadline for {container}"
    return found


def wait_stopped(data_dir: Path, timeout: float) -> float:
    """Wait until no container of the folder runs; when that was first seen."""
    limit = time.monotonic() + timeout
    while running(data_dir):
        assert time.monotonic() < limit, f"still running after {timeout:g} s"
        time.sleep(0.5)
    return time.time()


def test_a_kept_sandbox_stops_at_its_deadline_and_the_next_engine_says_expired(
    data_dir: Path,
) -> None:
    server = start(data_dir, **SHORT_TTL)
    sid = server.call("POST", "/v1/sessions", json={"thread_id": "short"})["id"]
    r = server.execute(
        sid, "x = 1\nopen('out.txt', 'w').write('exported')\nopen('tmp.txt', 'w').write('t')"
    )
    outputs = {o["path"].rsplit("/", 1)[-1]: o["file_id"] for o in r["outputs"]}
    out, scratch = outputs["out.txt"], outputs["tmp.txt"]
    server.call("POST", f"/v1/sessions/{sid}/files/{out}/keep")  # outputs end with the session
    assert server.stop()  # SANDBOX_SHUTDOWN_SANDBOXES=keep, the default
    (box,) = running(data_dir)
    deadline = deadline_of(data_dir, box)
    session_end = server_info_expires(data_dir, sid)
    assert session_end + SLACK <= deadline <= session_end + SLACK + 1
    stopped = wait_stopped(data_dir, deadline - time.time() + CHECK_EVERY + 30)
    assert stopped >= deadline  # not before its time
    assert containers(data_dir) == [box]  # stopped, left for the next engine to remove
    server = start(data_dir)
    try:
        info = server.call("GET", f"/v1/sessions/{sid}")
        assert info["status"] == "expired"
        assert "stopped itself" in info["notice"]
        assert server.client.get(f"/v1/files/{out}/content").content == b"exported"
        assert server.client.get(f"/v1/files/{scratch}/content").status_code == 404
        assert containers(data_dir) == []
        fresh = server.call("POST", "/v1/sessions", json={"thread_id": "short"})
        assert fresh["id"] != sid and fresh["status"] == "active"
    finally:
        server.kill()


def server_info_expires(data_dir: Path, session_id: str) -> int:
    """The session's own deadline as the store has it (the server is stopped)."""
    import sqlite3

    with sqlite3.connect(data_dir / "engine.db") as db:
        ttl, active, idle = db.execute(
            "SELECT expires_at, last_active_at, idle_timeout FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
    return int(min(ttl, active + idle))


def test_an_engine_that_readopts_a_sandbox_moves_its_deadline(data_dir: Path) -> None:
    server = start(data_dir, **RESTARTABLE_IDLE)
    sid = server.call("POST", "/v1/sessions", json={"thread_id": "kept"})["id"]
    assert server.execute(sid, "x = 41")["status"] == "ok"
    (box,) = running(data_dir)
    first = deadline_of(data_dir, box)
    server.kill()  # no goodbye: the sandbox has only the deadline it had
    server = start(data_dir, **RESTARTABLE_IDLE)
    try:
        while time.time() < first + CHECK_EVERY + 3:
            server.call("POST", f"/v1/sessions/{sid}/keepalive")
            time.sleep(1)
        assert running(data_dir) == [box]
        assert deadline_of(data_dir, box) > first
        r = server.execute(sid, "print(x + 1)")
        assert r["stdout"] == "42\n" and not r["state_lost"]
    finally:
        server.kill()


async def test_a_library_script_that_exits_leaves_sandboxes_that_stop(data_dir: Path) -> None:
    settings = make_settings(data_dir.parent, shutdown_sandboxes="keep", **SHORT_IDLE)
    async with Engine(settings) as engine:
        session = await engine.session("script")
        await session.execute("x = 1")
        sandbox = session.sandbox
        assert isinstance(sandbox, DockerSandbox)
        deadline = read_deadline(data_dir / "sandboxes" / sandbox.id / "conn")
    assert deadline is not None
    assert len(running(data_dir)) == 1  # the primary keeps its sessions for the next engine
    timeout = deadline - time.time() + CHECK_EVERY + 30
    stopped = await asyncio.to_thread(wait_stopped, data_dir, timeout)
    assert stopped >= deadline


async def test_a_pool_nobody_renews_stops_and_a_renewed_one_runs_on(data_dir: Path) -> None:
    settings = make_settings(data_dir.parent)
    async with Engine(settings) as engine:
        spec = sandbox_spec(settings, engine.image, engine.labels)
        limits = kernel_limits(settings, spec.memory_limit_mb)
        pool = WarmPool(engine.backend, spec, limits, size=1, minimum=1, maximum=1, lease=4)
        pool.start()
        try:
            await pool.wait_ready(1)
            (box,) = running(data_dir)
            started = time.time()
            while time.time() < started + 4 + CHECK_EVERY + 2:  # the engine's reaper ticks
                pool.tick()
                await asyncio.sleep(0.5)
            assert running(data_dir) == [box]
            # An engine that died ticks no more: the pool's sandbox ends within its lease.
            stopped = await asyncio.to_thread(wait_stopped, data_dir, 4 + CHECK_EVERY + 30)
            assert stopped >= deadline_of(data_dir, box)
        finally:
            await pool.close()
