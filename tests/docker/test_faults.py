"""Timeouts, crashes, out-of-memory kills and output caps: the session always comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest

from engine import Engine, ExecutionStatus, InvalidRequest, Session, SessionClosed, SessionNotFound
from engine.runtime import HOME_LABEL

from ..support.engines import make_settings


async def test_timeout_interrupts_and_keeps_state(session: Session) -> None:
    await session.execute("kept = 'yes'")
    started = time.monotonic()
    r = await session.execute("import time\nprint('before', flush=True)\ntime.sleep(60)", timeout=1)
    elapsed = time.monotonic() - started
    assert r.status is ExecutionStatus.TIMEOUT
    assert r.error is not None and r.error.name == "TimeoutError"
    assert r.stdout == "before\n"
    assert not r.state_lost
    assert elapsed < 1 + 1.5
    after = await session.execute("print(kept)")
    assert after.stdout == "yes\n"
    assert "before" not in after.stdout


async def test_uninterruptible_code_forces_restart(session: Session) -> None:
    await session.execute("lost = 1")
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    r = await session.execute(code, timeout=1)
    assert r.status is ExecutionStatus.TIMEOUT
    assert r.state_lost
    assert r.error is not None and "restarted" in r.error.value
    after = await session.execute("print('fresh'); lost")
    assert after.stdout == "fresh\n"
    assert after.error is not None and after.error.name == "NameError"


async def test_uninterruptible_code_has_stopped_when_the_timeout_returns(session: Session) -> None:
    """The result comes back once the code is killed; the new kernel starts behind it."""
    code = (
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    open('ticks', 'a').write('.'); time.sleep(0.01)"
    )
    r = await session.execute(code, timeout=1)
    assert r.status is ExecutionStatus.TIMEOUT and r.state_lost
    ticks = await session.read_file("ticks")
    await session.interrupt()  # nothing to interrupt while the kernel restarts: no error
    await asyncio.sleep(0.3)
    assert await session.read_file("ticks") == ticks
    after = await session.execute("print('fresh')")
    assert after.stdout == "fresh\n"


async def test_closing_while_the_kernel_restarts(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as engine:
        for pause in (0.0, 0.5):
            session = await engine.session()
            code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
            r = await session.execute(code, timeout=1)
            assert r.status is ExecutionStatus.TIMEOUT and r.state_lost
            await asyncio.sleep(pause)
            await engine.sessions.close(session.id)
            with pytest.raises(SessionClosed):
                await session.execute("1")
        label = {"label": f"{HOME_LABEL}={engine.labels[HOME_LABEL]}"}
        assert docker.from_env().containers.list(all=True, filters=label, sparse=True) == []


async def test_background_processes_die_with_a_restart(session: Session) -> None:
    await session.execute(
        "import subprocess; p = subprocess.Popen(['sleep', '1000'])\n"
        "open('pid', 'w').write(str(p.pid))"
    )
    await session.restart()
    r = await session.execute(
        "import os\npid = int(open('pid').read())\n"
        "try:\n    os.kill(pid, 0); print('alive')\nexcept ProcessLookupError:\n    print('gone')"
    )
    assert r.stdout == "gone\n"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os; os._exit(3)", "exit code 3"),
        ("import ctypes; ctypes.string_at(0)", "signal 11"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "signal 9"),
    ],
)
async def test_dead_kernel_is_reported_and_replaced(
    session: Session, code: str, expected: str
) -> None:
    await session.execute("before = 1")
    r = await session.execute(code, timeout=20)
    assert r.status is ExecutionStatus.CRASHED
    assert r.error is not None and r.error.name == "KernelDied"
    assert expected in r.error.value
    assert r.state_lost
    after = await session.execute("print('back'); before")
    assert after.stdout == "back\n"
    assert after.error is not None and after.error.name == "NameError"


async def test_out_of_memory_is_reported_as_such(session: Session) -> None:
    r = await session.execute("hog = b'x' * (2 * 1024**3)", timeout=60)
    assert r.status is ExecutionStatus.CRASHED
    assert r.error is not None and r.error.name == "OutOfMemory"
    assert "out of memory" in r.error.value
    assert (await session.execute("print(1)")).stdout == "1\n"


async def test_files_survive_a_kernel_crash(session: Session) -> None:
    await session.execute("open('/mnt/data/keep.txt', 'w').write('kept')")
    await session.execute("import os; os._exit(1)")
    r = await session.execute("print(open('/mnt/data/keep.txt').read())")
    assert r.stdout == "kept\n"


async def test_output_cap_keeps_head_and_tail(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, output_limit_chars=10_000)
    async with Engine(settings) as engine:
        session = await engine.session()
        r = await session.execute(
            "print('HEAD'); import sys\nfor i in range(200000): sys.stdout.write('y' * 20)\n"
            "print(); print('TAIL')"
        )
        assert r.status is ExecutionStatus.OK
        assert r.stdout.startswith("HEAD\n")
        assert r.stdout.rstrip().endswith("TAIL")
        assert len(r.stdout) < 10_200
        assert r.dropped["stdout"] > 3_900_000
        assert "characters dropped" in r.stdout
        fd = await session.execute("import os\nfor _ in range(2000): os.write(1, b'z' * 1000)")
        assert fd.status is ExecutionStatus.OK
        assert len(fd.stdout) < 10_200


async def test_bad_calls_raise_engine_errors(engine: Engine, session: Session) -> None:
    with pytest.raises(InvalidRequest):
        await session.execute(123)  # type: ignore[arg-type]
    for bad in (-1, 0, float("nan"), float("inf"), "5", 10**9):
        with pytest.raises(InvalidRequest):
            await session.execute("1", timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFound):
        engine.get_session("sess_nope")
    other = await engine.session()
    await engine.sessions.close(other.id)
    with pytest.raises(SessionClosed):
        await other.execute("1")
    with pytest.raises(SessionClosed):
        engine.get_session(other.id)
    await engine.sessions.close(other.id)  # closing twice is harmless
    with pytest.raises(SessionNotFound):
        await engine.sessions.close("sess_unknown")


async def test_container_killed_from_outside(session: Session) -> None:
    client = docker.from_env()
    container_id = session.sandbox.container_id  # type: ignore[attr-defined]
    client.containers.get(container_id).kill()
    r = await session.execute("print('x')", timeout=20)
    assert r.status is ExecutionStatus.CRASHED
    assert r.error is not None and r.error.name == "SandboxLost"
    assert (await session.execute("print('again')")).stdout == "again\n"


async def test_no_leftover_containers_after_close(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    engine = Engine(settings)
    async with engine:
        for i in range(2):
            await (await engine.session(f"t{i}")).execute("1")
        client = docker.from_env()
        label = f"{HOME_LABEL}={engine.labels[HOME_LABEL]}"
        assert len(client.containers.list(filters={"label": label})) == 2
    assert client.containers.list(all=True, filters={"label": label}, sparse=True) == []
    assert client.volumes.list(filters={"label": label}) == []
    assert list((settings.data_dir / "sandboxes").iterdir()) == []


async def test_forged_kernel_messages_are_dropped(session: Session) -> None:
    """Code in the kernel can write to its own sockets; nothing it writes unsigned is taken."""
    forge = (
        "k = get_ipython().kernel\n"
        "parent = {'msg_id': k.get_parent()['header']['msg_id']}\n"
        "import json\n"
        "idle = json.dumps({'msg_id': 'x', 'msg_type': 'status', 'session': 's', 'username': 'u',"
        " 'date': '2026-01-01T00:00:00Z', 'version': '5.3'})\n"
        "k.iopub_socket.send_multipart([b'status', b'<IDS|MSG>', b'forged', idle.encode(),"
        " json.dumps(parent).encode(), b'{}', b'{\"execution_state\": \"idle\"}'])\n"
        "k.iopub_socket.send_multipart([b'junk'])\n"
        "import time; time.sleep(0.3); print('still running')"
    )
    r = await session.execute(forge, timeout=20)
    assert r.status is ExecutionStatus.OK, r.error
    assert r.stdout == "still running\n"
    after = await session.execute("6 * 7")
    assert after.text == "42"
