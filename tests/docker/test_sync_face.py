"""The sync face on a real engine, and closing a session through any door."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import DoneEvent, Engine, SessionClosed, SyncEngine, SyncSession, errors
from engine.sessions import SessionFile, SessionStatus

from ..support.engines import make_settings


def test_the_sync_face_returns_real_results(tmp_path: Path) -> None:
    with SyncEngine(make_settings(tmp_path, memory_limit_mb=512)) as engine:
        session = engine.session("sync-thread")
        assert isinstance(session, SyncSession) and session.status is SessionStatus.ACTIVE
        assert session.execute("print(6 * 7)").stdout == "42\n"

        uploaded = session.upload("data.csv", b"x,y\n1,2\n")
        assert isinstance(uploaded, SessionFile) and uploaded.path == "/mnt/data/data.csv"
        assert uploaded.file_id is not None
        obj = engine.files.create(b"hello", "hello.txt")
        assert engine.files.retrieve(obj.id) == obj
        assert engine.files.content(obj.id) == b"hello"
        assert b"".join(engine.files.iter_content(obj.id)) == b"hello"
        added = session.add_file(obj.id, "greeting.txt")
        assert added.file_id == obj.id and added.bytes == 5

        listed = {f.filename: f.file_id for f in session.list_files()}
        assert listed == {"data.csv": uploaded.file_id, "greeting.txt": obj.id}
        assert session.read_file("greeting.txt") == b"hello"
        with session.open_file("data.csv") as f:
            assert f.read() == b"x,y\n1,2\n"

        r = session.execute("open('/mnt/data/out.txt', 'w').write('made')")
        [out] = [o for o in r.outputs if o.filename == "out.txt"]
        assert engine.files.content(out.file_id) == b"made"
        session.remove_file("greeting.txt")
        assert {f.filename for f in session.list_files()} == {"data.csv", "out.txt"}

        events = session.stream("print('a'); print('b')")
        assert next(events).type == "stdout"
        events.close()  # leaving a stream early interrupts it; the session goes on
        assert session.execute("print('next')", queue_timeout=30).stdout == "next\n"
        assert isinstance(list(session.stream("1 + 1"))[-1], DoneEvent)

        deadline = session.deadline
        assert session.keepalive().id == session.id
        assert session.extend(60).expires_at <= session.deadline and session.deadline > deadline
        assert engine.get_session(session.id).thread_id == "sync-thread"
        assert engine.sessions.info(session.id).status is SessionStatus.ACTIVE
        by_thread = engine.sessions.by_thread("sync-thread")
        assert by_thread is not None and by_thread.id == session.id
        assert len(engine.sessions) == 1
        assert [s.id for s in engine.sessions.live()] == [session.id]
        assert [s.id for s in engine.sessions.list(live_only=True).data] == [session.id]

        engine.files.delete(obj.id)
        with pytest.raises(errors.FileNotFound):
            engine.files.retrieve(obj.id)


def test_a_closed_sync_session_is_never_handed_back(tmp_path: Path) -> None:
    with SyncEngine(make_settings(tmp_path, memory_limit_mb=512)) as engine:
        first = engine.session("reused-thread")
        first.close()
        assert first.status is SessionStatus.CLOSED
        with pytest.raises(SessionClosed):
            first.execute("1")
        assert engine.sessions.by_thread("reused-thread") is None
        second = engine.session("reused-thread")
        assert second.id != first.id and second.execute("print(1)").stdout == "1\n"
        engine.sessions.close(second.id)
        assert engine.sessions.info(second.id).status is SessionStatus.CLOSED
        third = engine.session("reused-thread")
        assert third.id not in (first.id, second.id)
        assert len(engine.sessions) == 1


async def test_closing_a_session_itself_lets_its_thread_start_a_new_one(engine: Engine) -> None:
    first = await engine.session("self-closed-thread")
    await first.close()
    assert engine.sessions.by_thread("self-closed-thread") is None
    assert first.id not in {s.id for s in engine.sessions.live()}
    assert engine.sessions.info(first.id).status is SessionStatus.CLOSED
    again = await engine.session("self-closed-thread")
    assert again.id != first.id and again.status is SessionStatus.ACTIVE
    await engine.sessions.close(again.id)
