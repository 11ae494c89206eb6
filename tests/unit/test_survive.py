"""Fast tests, no Docker: the data folder's lease, the re-verification of a kernel's endpoints
on re-adoption, adopting a kernel without launching one, the pool's shrink, the store."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import errors
from engine.kernel import KernelLimits
from engine.lease import (
    PRIMARY,
    Lease,
    dead_guests,
    describe_holder,
    forget_guest,
    owner_alive,
)
from engine.pool import Warm, WarmPool
from engine.provisioner import KernelRecord, adopt_kernel, kernel_record, new_kernel_manager
from engine.sandbox.base import SandboxSpec
from engine.sandbox.ipc import IpcKernelFolders, endpoint_names
from engine.store import Store

from ..support.fakes import TcpSandbox, bind, conn_dir, never_exits, play_kernel

UID = os.getuid()

# --- the lease ---


def test_the_first_engine_is_primary_the_next_a_guest(tmp_path: Path) -> None:
    first = Lease.take(tmp_path)
    assert first.primary and owner_alive(tmp_path, PRIMARY)
    second = Lease.take(tmp_path)
    assert not second.primary and second.owner.startswith("guest-")
    assert owner_alive(tmp_path, second.owner)
    assert stat.S_IMODE((tmp_path / "engine.lock").stat().st_mode) == 0o600
    assert f"pid {os.getpid()}" == describe_holder(tmp_path)
    with pytest.raises(errors.DataFolderInUse, match=f"pid {os.getpid()}"):
        Lease.take(tmp_path, exclusive=True)
    second.release()
    assert not owner_alive(tmp_path, second.owner)
    assert not (tmp_path / "leases" / f"{second.owner}.lock").exists()
    first.release()
    first.release()  # idempotent
    assert not owner_alive(tmp_path, PRIMARY)
    assert Lease.take(tmp_path, exclusive=True).primary


def test_a_guest_never_takes_the_primary_lease(tmp_path: Path) -> None:
    guest = Lease.take(tmp_path, guest=True)
    assert not guest.primary
    assert not owner_alive(tmp_path, PRIMARY)


def test_a_killed_process_leaves_a_dead_lease(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib, time; from engine.lease import Lease\n"
        "Lease.take(pathlib.Path(sys.argv[1]))\n"
        "g = Lease.take(pathlib.Path(sys.argv[1]))\n"
        "print(g.owner, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    guest = proc.stdout.readline().strip()
    assert owner_alive(tmp_path, PRIMARY) and owner_alive(tmp_path, guest)
    assert dead_guests(tmp_path) == []
    proc.kill()
    proc.wait()
    assert not owner_alive(tmp_path, PRIMARY)
    assert dead_guests(tmp_path) == [guest]
    forget_guest(tmp_path, guest)
    assert dead_guests(tmp_path) == []


@pytest.mark.parametrize("label", ["", "guest-", "../engine", "guest-../../x", "other"])
def test_labels_we_never_wrote_have_no_live_owner(tmp_path: Path, label: str) -> None:
    Lease.take(tmp_path)
    assert not owner_alive(tmp_path, label)


# --- re-verification of a launch an earlier process made ---


def locked_launch(tmp_path: Path, socks: list[socket.socket]) -> tuple[Path, str]:
    """A launch as an engine process leaves it when it dies: bound, locked, verified."""
    conn = conn_dir(tmp_path)
    folders = IpcKernelFolders(conn, "/conn", UID)
    launch = folders.prepare(b"k", "hmac-sha256")
    play_kernel(conn / launch.id, socks, endpoint_names())
    asyncio.run(folders.wait_bound(launch.id, never_exits, timeout=5))
    folders.close()
    return conn, launch.id


@pytest.fixture
def socks() -> list[socket.socket]:
    return []


def test_a_locked_launch_is_adopted(tmp_path: Path, socks: list[socket.socket]) -> None:
    conn, launch = locked_launch(tmp_path, socks)
    folders = IpcKernelFolders(conn, "/conn", UID)
    info = folders.adopt(launch)
    assert str(info["ip"]).startswith("/proc/self/fd/") and info["shell_port"] == 1
    fd = int(str(info["ip"]).split("/")[4])
    assert os.fstat(fd).st_ino == (conn / launch).stat().st_ino
    assert folders.prepare(b"k", "hmac-sha256").id == "k2"  # never reuses the adopted name
    folders.close()


def plant(path: Path, replace_with: Path | str | None) -> None:
    """Change a folder the engine locked, as root (or its owner) could: ``path`` removed, then
    a symlink to a Path, a file with a str, or nothing in its place."""
    parent = path.parent
    parent.chmod(0o755)
    try:
        if path.exists():
            path.unlink()
        if isinstance(replace_with, Path):
            path.symlink_to(replace_with)
        elif isinstance(replace_with, str):
            path.write_text(replace_with)
    finally:
        parent.chmod(0o555)


@pytest.mark.parametrize(
    "attack, reason",
    [
        ("symlink-socket", "not a kernel socket"),
        ("file-socket", "not a kernel socket"),
        ("extra-entry", "unexpected entries"),
        ("missing-socket", "is missing"),
        ("symlink-folder", "not a folder"),
        ("unlocked-folder", "mode 777"),
        ("unlocked-conn", "mode 755"),
    ],
)
def test_a_changed_launch_is_refused(
    tmp_path: Path, socks: list[socket.socket], attack: str, reason: str
) -> None:
    conn, launch = locked_launch(tmp_path, socks)
    folder = conn / launch
    bait = tmp_path / "bait.sock"
    bind(socks, str(bait))
    s1 = folder / endpoint_names()[0]
    if attack == "symlink-socket":
        plant(s1, bait)
    elif attack == "file-socket":
        plant(s1, "x")
    elif attack == "extra-entry":
        plant(folder / "extra", "x")
    elif attack == "missing-socket":
        plant(s1, None)
    elif attack == "symlink-folder":
        other = tmp_path / "elsewhere"
        other.mkdir()
        for name in endpoint_names():
            bind(socks, str(other / name))
        other.chmod(0o555)
        conn.chmod(0o755)
        folder.chmod(0o755)
        for entry in folder.iterdir():
            entry.unlink()
        folder.rmdir()
        folder.symlink_to(other)
        conn.chmod(0o555)
    elif attack == "unlocked-folder":
        folder.chmod(0o777)
    elif attack == "unlocked-conn":
        conn.chmod(0o755)
    folders = IpcKernelFolders(conn, "/conn", UID)
    with pytest.raises(errors.KernelStartError, match=reason):
        folders.adopt(launch)
    assert folders._open == {}  # nothing kept open on a refusal
    waiting = socks[-1] if attack == "symlink-socket" else None
    if waiting is not None:
        waiting.setblocking(False)
        with pytest.raises(BlockingIOError):
            waiting.accept()  # nobody connected to the bait


@pytest.mark.parametrize("name", ["../k1", "k0", "k1/..", "/tmp", "k1x", ""])
def test_a_launch_name_is_never_a_path(tmp_path: Path, name: str) -> None:
    folders = IpcKernelFolders(conn_dir(tmp_path), "/conn", UID)
    with pytest.raises(errors.KernelStartError, match="not a kernel launch"):
        folders.adopt(name)


# --- adopting a kernel through the provisioner: nothing is launched ---


async def test_a_kernel_manager_adopts_without_launching() -> None:
    sandbox = TcpSandbox()
    km = new_kernel_manager(sandbox, start_timeout=5)
    assert kernel_record(km) is None
    record = KernelRecord("k3", "/conn/k3.json", "exec-1", "the-key", "hmac-sha256")
    await adopt_kernel(km, record)
    assert sandbox.calls == ["adopt k3"]
    assert km.has_kernel and km.session.key == b"the-key"
    info = km.get_connection_info()
    assert info["transport"] == "tcp" and info["control_port"] == 40004
    assert kernel_record(km) == record
    assert KernelRecord.from_json(record.to_json()) == record
    await km.restart_kernel(now=True)  # an adopted kernel restarts like a launched one
    assert sandbox.calls[-3:] == ["prepare", "start", "ready launch1"]
    await km.cleanup_resources()


async def test_a_refused_adoption_leaves_the_manager_without_a_kernel() -> None:
    sandbox = TcpSandbox(fail=True)
    km = new_kernel_manager(sandbox, start_timeout=5)
    with pytest.raises(errors.KernelStartError):
        await adopt_kernel(km, KernelRecord("k1", "/c", "p", "k", "hmac-sha256"))
    assert not km.has_kernel


# --- the warm pool ---


class FakeKernel:
    async def shutdown(self) -> None:
        pass


class FakeSandbox(TcpSandbox):
    def __init__(self, name: str, running: bool = True) -> None:
        super().__init__()
        self.id, self.running, self.destroyed = name, running, False

    async def is_running(self) -> bool:
        return self.running

    async def destroy(self) -> None:
        self.destroyed = True


def pool_of(*boxes: FakeSandbox, size: int = 1) -> WarmPool:
    spec = SandboxSpec("img", 512, 1, 64, 64, 1, 1, 1, 1, "1m")
    pool = WarmPool(None, spec, KernelLimits(), size=size, minimum=0, maximum=8, quiet_seconds=0)  # type: ignore[arg-type]
    for box in boxes:
        pool._ready.append(Warm(box, FakeKernel()))  # type: ignore[arg-type]
    return pool


async def test_the_pool_never_hands_out_a_stopped_sandbox() -> None:
    dead, live = FakeSandbox("dead", running=False), FakeSandbox("live")
    pool = pool_of(dead, live)
    warm = await pool.acquire_live()
    assert warm is not None and warm.sandbox is live
    await asyncio.gather(*pool._tasks)
    assert dead.destroyed
    assert await pool_of(FakeSandbox("dead", running=False)).acquire_live() is None


async def test_after_a_burst_the_pool_shrinks_back_at_once() -> None:
    boxes = [FakeSandbox(f"b{n}") for n in range(13)]
    pool = pool_of(*boxes, size=2)
    pool.target = 8  # grown by a burst
    pool._last_demand -= 1
    pool._shrink_if_quiet()
    assert pool.target == 2 and pool.ready == 2
    await asyncio.gather(*pool._tasks)
    assert sum(b.destroyed for b in boxes) == 11


# --- the store ---


def test_the_store_is_private_and_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "engine.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, thread_id TEXT "
            "NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, last_active_at "
            "INTEGER NOT NULL, expires_at INTEGER NOT NULL, idle_timeout INTEGER NOT NULL, "
            "sandbox_id TEXT)"
        )
    os.chmod(path, 0o644)
    store = Store(path)
    columns = {r["name"] for r in store.all("PRAGMA table_info(sessions)")}
    assert {"engine_owner", "kernel", "running_since", "notice", "memory_limit_mb"} <= columns
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            assert stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode) == 0o600
    store.close()


# --- errors ---


@pytest.mark.parametrize(
    "exc, status",
    [
        (errors.SandboxUnavailable("no such volume"), 503),
        (errors.BackendUnavailable("dockerd is down"), 503),
        (errors.SandboxLost("gone"), 502),
    ],
)
def test_a_sandbox_that_cannot_be_made_is_a_503_with_its_reason(
    exc: errors.EngineError, status: int
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from engine.api import errors as api_errors

    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    r = TestClient(app).get("/boom")
    assert r.status_code == status
    assert r.json()["error"]["message"] == str(exc) and r.json()["error"]["code"] == exc.code
