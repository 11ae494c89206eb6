"""Session lifetimes, keepalive and extend, limits, and the execution queue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine import Engine, ExecutionStatus, Session, SessionClosed
from engine.errors import FileNotFound, LimitExceeded, SessionBusy, SessionNotFound
from engine.sessions import SessionStatus

from ..support.engines import make_settings


async def sleep_until(deadline: float) -> None:
    """Deadlines are whole seconds; wait until one has surely passed, however slow the start was."""
    await asyncio.sleep(max(0.0, deadline - time.time()) + 1.2)


async def test_an_expired_session_ends_and_its_kept_files_stay(tmp_path: Path) -> None:
    # Expiry by idle time, which counts from the last execution: a TTL would count from a start
    # that takes seconds on a loaded machine. test_lifetimes.py expires sessions by TTL.
    settings = make_settings(tmp_path, reaper_interval=0.2, auto_pause_after=0)
    async with Engine(settings) as engine:
        session = await engine.session("short", idle_timeout=3)
        r = await session.execute(
            "open('/mnt/data/out.txt', 'w').write('kept')\n"
            "open('/mnt/data/tmp.txt', 'w').write('-')"
        )
        outputs = {o.filename: o.file_id for o in r.outputs}
        file_id = outputs["out.txt"]
        session.keep_output(file_id)  # the other output ends with the session
        assert session.status is SessionStatus.ACTIVE
        await sleep_until(session.info.expires_at)
        assert session.status is SessionStatus.EXPIRED
        assert engine.sessions.info(session.id).status is SessionStatus.EXPIRED
        with pytest.raises(SessionClosed):
            await session.execute("1")
        with pytest.raises(SessionClosed):
            engine.get_session(session.id)
        assert await engine.files.content(file_id) == b"kept"
        with pytest.raises(FileNotFound):
            engine.files.retrieve(outputs["tmp.txt"])
        fresh = await engine.session("short")
        assert fresh.id != session.id


async def test_idle_timeout_reset_by_activity_and_keepalive(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, idle_timeout=3, reaper_interval=0.2, auto_pause_after=0)
    async with Engine(settings) as engine:
        session = await engine.session()
        for _ in range(3):
            await asyncio.sleep(1)
            await session.execute("1")
            assert session.info.expires_at >= time.time() + 1
        await asyncio.sleep(1)
        before = session.info.expires_at
        session.keepalive()
        assert session.info.expires_at >= before + 1
        await asyncio.sleep(1)
        assert session.status is SessionStatus.ACTIVE
        await sleep_until(session.info.expires_at)
        assert session.status is SessionStatus.EXPIRED


async def test_extend_pushes_the_deadline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, session_ttl=4, reaper_interval=0.2)
    async with Engine(settings) as engine:
        session = await engine.session(idle_timeout=600)
        before = session.info.expires_at
        now = int(time.time())
        info = session.extend(3)
        # extending counts from the deadline, or from now if a slow start already passed it
        assert max(before, now) + 3 <= info.expires_at <= max(before, int(time.time())) + 3
        await sleep_until(before)
        assert session.status is SessionStatus.ACTIVE
        await sleep_until(info.expires_at)
        assert session.status is SessionStatus.EXPIRED


async def test_list_get_close(engine: Engine) -> None:
    a = await engine.session("list-a", owner="lister")
    b = await engine.session("list-b", owner="lister")
    page = engine.sessions.list("lister")
    assert [s.id for s in page.data] == [b.id, a.id]
    assert page.data[0].object == "session" and page.data[0].status is SessionStatus.ACTIVE
    assert engine.get_session(a.id, "lister") is a
    with pytest.raises(SessionNotFound):
        engine.get_session(a.id, "another-owner")
    await engine.sessions.close(a.id)
    assert engine.sessions.info(a.id).status is SessionStatus.CLOSED
    assert [s.id for s in engine.sessions.list("lister", live_only=True).data] == [b.id]
    await engine.sessions.close(b.id)


async def test_limits_total_and_per_owner(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_sessions=3, max_sessions_per_owner=2)
    async with Engine(settings) as engine:
        await engine.session("1", owner="a")
        await engine.session("2", owner="a")
        with pytest.raises(LimitExceeded):
            await engine.session("3", owner="a")
        assert (await engine.session("1", owner="a")) is not None  # existing: no new slot
        await engine.session("1", owner="b")
        with pytest.raises(LimitExceeded):
            await engine.session("2", owner="b")


async def test_same_thread_id_per_owner_is_separate(engine: Engine) -> None:
    a = await engine.session("shared-thread", owner="tenant-a")
    b = await engine.session("shared-thread", owner="tenant-b")
    assert a.id != b.id
    await engine.sessions.close(a.id)
    await engine.sessions.close(b.id)


async def test_concurrent_executes_run_in_order_without_mixing(session: Session) -> None:
    code = "import time\nfor i in range(3):\n    print('{tag}', i, flush=True)\n    time.sleep(0.1)"
    tasks = []
    for tag in "ABCDE":
        tasks.append(asyncio.create_task(session.execute(code.format(tag=tag))))
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*tasks)
    for tag, r in zip("ABCDE", results, strict=True):
        assert r.stdout == "".join(f"{tag} {i}\n" for i in range(3))
    counts = [r.execution_count for r in results if r.execution_count is not None]
    assert counts == sorted(counts) and len(set(counts)) == 5


async def test_waiting_call_can_give_up(session: Session) -> None:
    slow = asyncio.create_task(session.execute("import time; time.sleep(1.5); 'slow'"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(SessionBusy):
        await session.execute("'never'", queue_timeout=0.2)
    assert time.monotonic() - started < 1
    waiting = asyncio.create_task(session.execute("'cancelled'"))
    await asyncio.sleep(0.1)
    waiting.cancel()
    after = asyncio.create_task(session.execute("'after'"))
    assert (await slow).text == "'slow'"
    assert (await after).text == "'after'"
    assert waiting.cancelled()


async def test_stream_closed_early_interrupts(session: Session) -> None:
    stream = session.stream("import time\nprint('go', flush=True)\ntime.sleep(30)")
    first = await stream.__anext__()
    assert first.type == "stdout"
    started = time.monotonic()
    await stream.aclose()
    r = await session.execute("print('free')", queue_timeout=5)
    assert r.status is ExecutionStatus.OK and r.stdout == "free\n"
    assert time.monotonic() - started < 5


async def test_cancelled_execution_stops_before_the_next_runs(session: Session) -> None:
    await session.execute("kept = 'still here'")
    running = asyncio.create_task(
        session.execute("import time\nfor _ in range(300):\n    time.sleep(0.1)\nleaked = 1")
    )
    await asyncio.sleep(0.5)
    running.cancel()
    started = time.monotonic()
    r = await session.execute("print(kept); print('leaked' in globals())", queue_timeout=10)
    assert r.stdout == "still here\nFalse\n"
    assert time.monotonic() - started < 5
    assert running.cancelled()
