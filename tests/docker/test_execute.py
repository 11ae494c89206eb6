"""The happy path, results, live events, and the sync face."""

from __future__ import annotations

import asyncio
import base64
import time

from engine import (
    DoneEvent,
    Engine,
    ExecutionStatus,
    Session,
    Settings,
    StreamEvent,
    SyncEngine,
)
from engine.results import OutputEvent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def test_pandas_and_stdout(session: Session) -> None:
    r = await session.execute("import pandas as pd; print(pd.__version__)", timeout=30)
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout.strip().count(".") >= 1
    assert r.error is None
    assert r.execution_count == 1


async def test_expression_result_and_state_kept(session: Session) -> None:
    await session.execute("x = 20")
    r = await session.execute("x + 22")
    assert r.result == {"text/plain": "42"}
    assert r.text == "42"


async def test_stderr_and_error_with_clean_traceback(session: Session) -> None:
    r = await session.execute("import sys; print('warn', file=sys.stderr); 1/0")
    assert r.status is ExecutionStatus.ERROR
    assert r.stderr == "warn\n"
    assert r.error is not None
    assert r.error.name == "ZeroDivisionError"
    assert r.error.value == "division by zero"
    assert any("1/0" in line for line in r.error.traceback)
    assert not any("\x1b[" in line for line in r.error.traceback)


async def test_matplotlib_figure_is_png_display(session: Session) -> None:
    r = await session.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()"
    )
    assert r.status is ExecutionStatus.OK, r
    pngs = [d["image/png"] for d in r.display if "image/png" in d]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0]).startswith(PNG_MAGIC)


async def test_html_display_bundle(session: Session) -> None:
    r = await session.execute("import pandas as pd; pd.DataFrame({'a': [1, 2]})")
    assert r.result is not None
    assert "<table" in r.result["text/html"]
    assert "a" in r.result["text/plain"]


async def test_workdir_is_mnt_data_and_writable(session: Session) -> None:
    r = await session.execute(
        "import os; open('f.txt', 'w').write('hi'); print(os.getcwd(), os.listdir('.'))"
    )
    assert r.stdout.strip() == "/mnt/data ['f.txt']"


async def test_live_events_in_order(session: Session) -> None:
    seen: list[tuple[float, OutputEvent]] = []
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\n'end'"
    r = await session.execute(code, on_event=lambda e: seen.append((time.monotonic(), e)))
    # A busy kernel may send one print as two stream messages: order and timing are what count.
    kinds = [e.type for _, e in seen]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"stdout"}, kinds
    assert "".join(e.text for _, e in seen if isinstance(e, StreamEvent)) == "0\n1\n2\n"
    assert seen[-1][0] - seen[0][0] >= 0.3  # the first line came while the cell still ran
    assert r.stdout == "0\n1\n2\n"


async def test_stream_iterator_yields_events_then_done(session: Session) -> None:
    items = [item async for item in session.stream("print('a'); print('b', flush=True); 7")]
    assert isinstance(items[-1], DoneEvent)
    assert items[-1].result.text == "7"
    texts = "".join(i.text for i in items if isinstance(i, StreamEvent))
    assert texts == "a\nb\n"


async def test_output_flushed_as_the_cell_ends_stays_with_its_cell(session: Session) -> None:
    """The kernel flushes written output 0.2 s after the first write, from its IOPub thread;
    cells that end around then must still get all their output, before their idle status
    (a flush with nothing buffered returns at once, one under way does not)."""
    for n in range(25):
        seconds = 0.188 + n / 1000
        r = await session.execute(
            f"import sys, time\nprint({n})\nprint('e{n}', file=sys.stderr)\ntime.sleep({seconds})"
        )
        assert r.status is ExecutionStatus.OK, r
        assert (r.stdout, r.stderr) == (f"{n}\n", f"e{n}\n"), (n, r.stdout, r.stderr)


async def test_quick_cells_back_to_back_keep_their_own_output(session: Session) -> None:
    """The flush at a cell's end is queued without waiting for the IOPub thread: each quick
    cell's output must still come before its idle status, whole and in order."""
    for n in range(150):
        r = await session.execute(
            f"import sys\nprint({n})\nprint('e{n}', file=sys.stderr)\nprint({n}, end='!')"
        )
        assert (r.stdout, r.stderr) == (f"{n}\n{n}!", f"e{n}\n"), (n, r.stdout, r.stderr)


async def test_a_cell_is_transformed_for_the_namespace_it_runs_in(session: Session) -> None:
    """The kernel transforms each cell once; the same text in a later cell is transformed
    again: ``pwd`` is the automagic until a variable takes the name."""
    r = await session.execute("pwd")
    assert r.result == {"text/plain": "'/mnt/data'"}, r
    await session.execute("pwd = 'a variable'")
    r = await session.execute("pwd")
    assert r.result == {"text/plain": "'a variable'"}, r


async def test_one_session_per_thread(engine: Engine) -> None:
    a, b = await asyncio.gather(engine.session("thread-x"), engine.session("thread-x"))
    assert a is b
    assert (await engine.session("thread-x")) is a
    other = await engine.session("thread-y")
    assert other.id != a.id
    await a.execute("secret = 1")
    r = await other.execute("secret")
    assert r.error is not None and r.error.name == "NameError"
    await engine.sessions.close(a.id)
    await engine.sessions.close(other.id)


def test_sync_face(settings: Settings) -> None:
    sync_settings = settings.model_copy(update={"data_dir": settings.data_dir / "sync"})
    with SyncEngine(sync_settings) as engine:
        session = engine.session("sync-thread")
        r = session.execute("print(6 * 7)")
        assert r.stdout == "42\n"
        events = list(session.stream("print('x')"))
        assert isinstance(events[-1], DoneEvent)
        assert events[0] == StreamEvent(type="stdout", text="x\n")
