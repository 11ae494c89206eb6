"""The kernel as an adversary: code that breaks the kernel's own machinery, and kernels that
send the engine more than it accepts. A session must never go silent, and a flood costs the
flooding session only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine import Engine, ExecutionStatus, Session

from ..support.engines import make_settings

BREAKAGES = {
    "stdout closed": "import sys; sys.stdout.close()",
    "stdout None": "import sys; sys.stdout = None",
    "stderr closed": "import sys; sys.stderr.close()",
    "displayhook None": "import sys; sys.displayhook = None",
    "excepthook": "import sys; sys.excepthook = lambda *a: None",
    "display_pub None": "get_ipython().display_pub = None",
    "SIGINT ignored": "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)",
    "event loop stopped": "import asyncio; asyncio.get_event_loop().stop()",
    "event loop closed": "import asyncio; asyncio.get_event_loop().close()",
    "fds 1 and 2 closed": "import os; os.close(1); os.close(2)",
    "iopub socket closed": "get_ipython().kernel.iopub_socket.close()",
    "print replaced": "import builtins; builtins.print = lambda *a, **k: None",
    "print deleted": "import builtins; del builtins.print",
    "shell stream replaced": "import sys; sys.stdout = open('/dev/null', 'w')",
}


@pytest.mark.parametrize("code", BREAKAGES.values(), ids=BREAKAGES.keys())
async def test_the_next_cell_works_after_code_breaks_the_kernel(
    session: Session, code: str
) -> None:
    await session.execute("x = 'kept'")
    results = [await session.execute(code, timeout=30)]
    # The next cell prints, or the kernel was found broken and restarted (which that result
    # says); then the one after prints.
    for _ in range(2):
        results.append(after := await session.execute("print(1+1)", timeout=30))
        if after.ok:
            break
    lost = [r for r in results if r.state_lost]
    for r in lost:
        assert r.error is not None and "state" in r.error.value and "lost" in r.error.value, r
    assert after.ok and after.stdout == "2\n", results
    kept = await session.execute("x", timeout=30)
    if lost:
        assert kept.error is not None and kept.error.name == "NameError"
    else:
        assert kept.text == "'kept'", "no restart was reported, so the state must be kept"
    # Errors and results come back as from a fresh kernel.
    err = await session.execute("1/0", timeout=30)
    assert err.status is ExecutionStatus.ERROR
    assert err.error is not None and err.error.name == "ZeroDivisionError"
    assert (await session.execute("6*7", timeout=30)).text == "42"


async def test_code_that_unloads_the_guard_still_gets_answers(session: Session) -> None:
    """Code that removes the guard and silences print itself: a kernel choosing to print
    nothing cannot be told from one that has nothing to say (IPython's display hook flushes
    sys.stdout too, so results go as well), but the session still answers, and a restart
    brings output back."""
    unload = (
        "ip = get_ipython()\n"
        "for f in list(ip.events.callbacks['post_run_cell']):\n"
        "    ip.events.unregister('post_run_cell', f)\n"
        "import sys; sys.stdout = None"
    )
    assert (await session.execute(unload, timeout=30)).ok
    silent = await session.execute("print(1+1); 6*7", timeout=30)
    assert silent.ok and silent.duration_ms < 10_000
    await session.restart()
    assert (await session.execute("print(1+1)", timeout=30)).stdout == "2\n"


async def test_huge_output_by_mistake_is_folded_not_restarted(tmp_path: Path) -> None:
    """Ordinary code that prints, raises or returns more than the message cap stays under it (the
    kernel-side guard sends it in pieces or cut), so the kernel keeps its state."""
    async with Engine(make_settings(tmp_path, memory_limit_mb=1024)) as engine:
        await _fold_huge_output(await engine.session())


async def _fold_huge_output(session: Session) -> None:
    await session.execute("kept = 'yes'")
    printed = await session.execute("print('x' * 100_000_000); print('END')", timeout=60)
    assert printed.status is ExecutionStatus.OK, printed.error
    assert printed.dropped["stdout"] > 90_000_000 and printed.stdout.rstrip().endswith("END")
    raised = await session.execute("raise ValueError('v' * 40_000_000)", timeout=60)
    assert raised.status is ExecutionStatus.ERROR and raised.error is not None
    assert raised.error.name == "ValueError"
    value = await session.execute("'r' * 70_000_000", timeout=60)
    assert value.status is ExecutionStatus.OK and value.result is not None, value.error
    assert "characters dropped in the kernel" in value.result["text/plain"]
    assert (await session.execute("print(kept)")).stdout == "yes\n"


# The class's own send: hostile code steps around the guard that splits huge output politely.
FLOOD = """
k = get_ipython().kernel
for i in range({count}):
    type(k.session).send(k.session, k.iopub_socket, 'stream',
                         {{'name': 'stdout', 'text': 'x' * {size}}}, parent=k.get_parent())
print('sent')
"""


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_flood_costs_the_flooding_sessions_only(tmp_path: Path) -> None:
    """Two sessions send 200 MB messages, one many 1 MB ones; a canary keeps answering and
    the engine's memory stays bounded."""
    settings = make_settings(tmp_path, memory_limit_mb=1536)
    async with Engine(settings) as engine:
        big = [await engine.session() for _ in range(2)]
        small = await engine.session()
        canary = await engine.session()
        for s in (*big, small):
            await s.execute("x = 'kept'")
        before = rss_mib()
        latencies: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                r = await canary.execute("1+1", timeout=30)
                latencies.append(time.perf_counter() - t)
                assert r.text == "2"
                await asyncio.sleep(0.05)

        prober = asyncio.ensure_future(probe())
        results = await asyncio.gather(
            *(s.execute(FLOOD.format(count=6, size=200 * 2**20), timeout=120) for s in big),
            small.execute(FLOOD.format(count=300, size=2**20), timeout=120),
        )
        peak = rss_mib()
        stop.set()
        await prober

        for r in results[:2]:
            assert r.status is ExecutionStatus.CRASHED and r.state_lost
            assert r.error is not None and r.error.name == "MessageTooLarge"
            assert "larger than 64 MB" in r.error.value and "restarted" in r.error.value
        flooded = results[2]
        assert flooded.ok and flooded.stdout.endswith("sent\n")
        assert flooded.dropped["stdout"] > 200 * 2**20, "the output cap keeps ~1 MB"
        assert peak - before < 512, f"the engine grew by {peak - before:.0f} MiB"
        assert latencies and max(latencies) < 10, latencies
        for s in big:  # restarted, and answering again
            assert (await s.execute("print(1+1)", timeout=60)).stdout == "2\n"
        assert (await small.execute("x", timeout=30)).text == "'kept'"
