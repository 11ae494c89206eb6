"""Fault injection: the engine killed with SIGKILL mid-executions, a container killed from outside,
the Docker daemon stopped and started, the data folder's disk full. Each time: no uploaded or
output file lost, no container leaked, and errors that say what happened."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from engine import Engine, ExecutionStatus, Settings, errors
from engine.runtime import HOME_LABEL

from ..support.engine_process import kill_mid_execution
from ..support.engines import make_settings, small_tmpfs

DOCKER_PID = Path("/var/run/docker.pid")
DOCKERD_LOG = Path("/var/log/dockerd.log")


def leftovers(engine: Engine) -> tuple[list[str], list[str]]:
    client = docker.from_env()
    label = {"label": f"{HOME_LABEL}={engine.labels[HOME_LABEL]}"}
    # The low-level list: the high-level one inspects each container, which races removals.
    containers = [c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters=label)]
    volumes = [v.name for v in client.volumes.list(filters=label)]
    return containers, volumes


def assert_nothing_left(engine: Engine) -> None:
    assert leftovers(engine) == ([], [])
    sandboxes = engine.settings.data_dir / "sandboxes"
    assert not sandboxes.exists() or list(sandboxes.iterdir()) == []


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the engine process killed with SIGKILL ---


async def test_kill_9_during_executions_and_an_upload(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    ids = kill_mid_execution("faults", settings.data_dir)

    async with Engine(settings) as engine:
        # The dead process's sessions were re-adopted, each in its own sandbox still.
        containers, volumes = leftovers(engine)
        live = sorted(f"sandbox-engine-{engine.get_session(s).sandbox.id}" for s in ids["sessions"])
        assert sorted(containers) == live and sorted(volumes) == live
        for file_id, digest in {**ids["inputs"], **ids["outputs"]}.items():
            assert sha(await engine.files.content(file_id)) == digest
        for n, session_id in enumerate(ids["sessions"]):
            session = engine.get_session(session_id)
            # Interrupted, not re-run; what it wrote before the kill is exported now, once.
            r = await session.execute("print('ok')")
            assert r.stdout == "ok\n" and r.notice is not None and "interrupted" in r.notice
            (midway,) = r.outputs
            assert midway.filename == f"midway{n}.bin"
            assert await engine.files.content(midway.file_id) == bytes([n]) * 500_000
            assert (await session.execute("print(1)")).outputs == []
        names = {f.filename: f for f in engine.files.list(limit=100).data}
        assert names["midway0.bin"].session_id == ids["sessions"][0]
        # The upload that never finished left neither a row nor bytes.
        assert "partial.bin" not in names
        assert list((settings.data_dir / "files" / "tmp").iterdir()) == []
        assert (await engine.session("fault-0")).id == ids["sessions"][0]
    assert_nothing_left(engine)


# --- a container killed or removed from outside ---


@pytest.mark.parametrize("how", ["kill", "remove"])
async def test_container_killed_from_outside_mid_execution(tmp_path: Path, how: str) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings) as engine:
        data = os.urandom(100_000)
        session = await engine.session(
            "outside", file_ids=[(await engine.files.create(data, "input.bin")).id]
        )
        r = await session.execute("open('report.txt', 'w').write('exported before')")
        exported = r.outputs[0].file_id
        old = session.sandbox
        container = docker.from_env().containers.get(old.container_id)  # type: ignore[attr-defined]
        running = asyncio.ensure_future(
            session.execute("import time\nprint('started', flush=True)\ntime.sleep(600)", 900)
        )
        await asyncio.sleep(1.5)
        started = time.monotonic()
        if how == "kill":
            await asyncio.to_thread(container.kill)
        else:
            await asyncio.to_thread(container.remove, force=True)
        result = await asyncio.wait_for(running, 60)
        noticed = time.monotonic() - started
        assert result.status is ExecutionStatus.CRASHED
        assert result.error is not None and result.error.name == "SandboxLost"
        assert "stopped unexpectedly" in result.error.value
        assert result.state_lost
        assert noticed < 20
        assert session.sandbox.id != old.id
        assert (await session.execute("print('again')")).stdout == "again\n"
        assert await engine.files.content(exported) == b"exported before"
        containers, volumes = leftovers(engine)
        assert containers == [f"sandbox-engine-{session.sandbox.id}"]
        assert volumes == [f"sandbox-engine-{session.sandbox.id}"]
    assert_nothing_left(engine)


# --- a session deleted while it executes ---


async def test_session_closed_mid_execution(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings) as engine:
        for delay in (0.0, 0.3, 1.0):
            session = await engine.session()
            running = asyncio.ensure_future(session.execute("import time; time.sleep(30)", 60))
            await asyncio.sleep(delay)
            await engine.sessions.close(session.id)
            # The execution ends with what it produced until then, and says why it stopped.
            result = await asyncio.wait_for(running, 30)
            assert result.status is ExecutionStatus.CANCELLED, result
            assert result.error is not None and result.error.name == "SessionClosed"
            assert "closed while this execution ran" in result.error.value
            await asyncio.sleep(1)  # nothing may come back to life behind our back
            assert leftovers(engine) == ([], [])
    assert_nothing_left(engine)


# --- the Docker daemon stopped and started ---


def dockerd_pid() -> int | None:
    try:
        pid = int(DOCKER_PID.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def docker_answers() -> bool:
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def stop_dockerd(timeout: float = 120) -> None:
    pid = dockerd_pid()
    assert pid is not None, "dockerd is not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("dockerd did not stop")
        time.sleep(0.2)


def start_dockerd(timeout: float = 90) -> None:
    """The way scripts/setup starts it: ``nohup dockerd >/var/log/dockerd.log 2>&1 &``."""
    if dockerd_pid() is None:
        with open(DOCKERD_LOG, "ab") as log:
            subprocess.Popen(
                ["dockerd"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    deadline = time.monotonic() + timeout
    while not docker_answers():
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not answer within {timeout:g} s; see {DOCKERD_LOG}")
        time.sleep(0.5)


def foreign_containers(basetemp: Path) -> list[str]:
    """Running containers that this test run did not start: stopping dockerd would kill them."""
    base = str(basetemp.resolve())
    foreign = []
    for c in docker.from_env().containers.list():
        binds = [m.get("Source", "") for m in c.attrs.get("Mounts", []) if m.get("Type") == "bind"]
        if not any(src.startswith(base) for src in binds):
            foreign.append(c.name)
    return foreign


@pytest.fixture
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Permission to stop the Docker daemon; it is running again afterwards, whatever happens.

    ``SANDBOX_TEST_DOCKERD_RESTART=never`` skips the test, ``=always`` runs it even when other
    people's containers would die with the daemon; by default it runs only when every running
    container belongs to this test run (a CI machine)."""
    mode = os.environ.get("SANDBOX_TEST_DOCKERD_RESTART", "auto")
    if mode == "never":
        pytest.skip("SANDBOX_TEST_DOCKERD_RESTART=never")
    if os.geteuid() != 0 or dockerd_pid() is None:
        pytest.skip("needs root and a dockerd started in the background (scripts/setup)")
    if mode != "always":
        foreign = foreign_containers(tmp_path_factory.getbasetemp())
        if foreign:
            pytest.skip(
                f"stopping dockerd would kill {len(foreign)} container(s) this test run does not "
                f"own (e.g. {foreign[0]}); set SANDBOX_TEST_DOCKERD_RESTART=always to run anyway"
            )
    try:
        yield
    finally:
        start_dockerd()


@pytest.mark.restarts_docker
async def test_docker_daemon_stopped_and_started(tmp_path: Path, dockerd: None) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings) as engine:
        data = os.urandom(300_000)
        uploaded = await engine.files.create(data, "input.bin")
        session = await engine.session("daemon", file_ids=[uploaded.id])
        r = await session.execute("open('report.txt', 'w').write('before the outage')")
        exported = r.outputs[0].file_id
        running = asyncio.ensure_future(
            session.execute("import time\nprint('started', flush=True)\ntime.sleep(600)", 900)
        )
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stop_dockerd)
        try:
            # The cell in flight ends with a clear outcome, not a hang.
            try:
                result = await asyncio.wait_for(running, 60)
                assert result.status is ExecutionStatus.CRASHED, result
                assert result.error is not None
            except errors.EngineError as exc:
                assert isinstance(exc, errors.SandboxError), exc
            # While the daemon is down: a clear error, quickly, and files are still served.
            started = time.monotonic()
            with pytest.raises(errors.BackendUnavailable):
                await asyncio.wait_for(engine.session("while-down"), 30)
            assert time.monotonic() - started < 30
            with pytest.raises(errors.SandboxError):
                await asyncio.wait_for(session.execute("1"), 30)
            assert await engine.files.content(uploaded.id) == data
            assert await engine.files.content(exported) == b"before the outage"
        finally:
            await asyncio.to_thread(start_dockerd)
        # Back up: the old session moves to a new sandbox, new sessions start.
        again = await session.execute("print('back')", 60)
        if again.status is ExecutionStatus.CRASHED:
            assert again.error is not None and again.error.name == "SandboxLost", again
            again = await session.execute("print('back')", 60)
        assert again.stdout == "back\n"
        fresh = await engine.session("after-outage")
        assert (await fresh.execute("print(1)")).stdout == "1\n"
        assert await engine.files.content(uploaded.id) == data
        assert await engine.files.content(exported) == b"before the outage"
        # The lost sandbox's container and volume went at once, not at the next start.
        containers, volumes = await asyncio.to_thread(leftovers, engine)
        live = {session.sandbox.id, fresh.sandbox.id}
        assert len(containers) == len(volumes) == len(live), (containers, volumes)
    assert_nothing_left(engine)


# --- the data folder's disk full ---


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs as the engine's data folder."""
    with small_tmpfs(tmp_path / "small", 20) as mount:
        yield mount


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


async def test_data_folder_disk_full(small_disk: Path) -> None:
    settings = Settings(
        data_dir=small_disk / "engine", pool_size=0, pool_min=0, shutdown_sandboxes="close"
    )
    async with Engine(settings) as engine:
        session = await engine.session("full")
        kept: list[tuple[str, bytes]] = []
        refusal: errors.EngineError | None = None
        for i in range(20):
            data = os.urandom(3 * 1024 * 1024)
            try:
                obj = await engine.files.create(data, f"f{i}.bin")
            except errors.EngineError as exc:
                refusal = exc
                break
            kept.append((obj.id, data))
        assert refusal is not None, "20 x 3 MB fitted on a 20 MB disk"
        assert isinstance(refusal, errors.StorageFull), refusal
        assert "full" in str(refusal)
        assert list((settings.data_dir / "files" / "tmp").iterdir()) == []
        fill(small_disk / "filler")  # not one byte left
        # A new session needs a few bytes on this disk: it starts, or fails saying why.
        try:
            other = await engine.session("while-full")
        except errors.EngineError as exc:
            assert isinstance(exc, errors.StorageFull | errors.SandboxError), exc
        else:
            assert (await other.execute("print(1)")).stdout == "1\n"
        # An upload into the session fails just as clearly.
        with pytest.raises(errors.StorageFull):
            await session.upload("more.bin", os.urandom(3 * 1024 * 1024))
        # Executions go on; an output that does not fit is left out and counted.
        r = await session.execute(
            "open('big.bin', 'wb').write(b'x' * 5_000_000)\nprint('done')", timeout=60
        )
        assert r.status is ExecutionStatus.OK and r.stdout == "done\n", r
        assert "big.bin" not in [o.filename for o in r.outputs]
        assert r.dropped.get("files", 0) >= 1
        # Room again: outputs are exported again, and nothing stored earlier was lost.
        (small_disk / "filler").unlink()
        engine.files.delete(kept.pop()[0])
        r = await session.execute("open('small.txt', 'w').write('fits')")
        assert "small.txt" in [o.filename for o in r.outputs]
        for file_id, data in kept:
            assert await engine.files.content(file_id) == data
    assert_nothing_left(engine)
