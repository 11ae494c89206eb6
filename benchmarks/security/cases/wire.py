"""The engine's kernel wire under a hostile kernel: code in the sandbox writes raw ZMTP frames on
its own kernel's connections (the engine's shell, iopub and control sockets) and then stops, so
that the engine holds a receive permit for a message that never ends. Another tenant's 2 MB
outputs, which need a permit each, must go on."""

from __future__ import annotations

import asyncio
import statistics
import time

from engine import ExecutionResult, ExecutionStatus, Session
from engine.kernel import wire

from ..harness import Context
from ..model import KERNEL, Case, Verdict, brief

MB = 1024 * 1024
BIG_OUTPUT = "display({'text/plain': 'c' * (2 * 2**20)}, raw=True)"
"""One 2 MB display message: over 1 MB, so it needs a receive permit."""
SAMPLES = 40

STALL = """\
import json, os, signal, socket, struct, threading, time
from ipykernel.connect import get_connection_info

info = json.loads(get_connection_info())
time.sleep(0.5)  # let the kernel's own busy status leave first


def connections(channel):
    \"\"\"The accepted connections on a channel's socket (each socket once, whatever its fds).\"\"\"
    path = f"{info['ip']}-{info[channel + '_port']}"
    found = {}
    for fd in os.listdir('/proc/self/fd'):
        try:
            link = os.readlink(f'/proc/self/fd/{fd}')
            if not link.startswith('socket:') or link in found:
                continue
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            if sock.family == socket.AF_UNIX and sock.getsockname() == path and not listening:
                found[link] = sock
                continue
        except OSError:
            pass
        sock.close()
    return list(found.values())


frame = struct.pack('>BQ', 1 | 2, 2 * 2**20) + b'h' * (2 * 2**20)  # MORE | LONG, 2 MB
writers = []
for channel in @CHANNELS@:
    for sock in connections(channel):
        sock.setblocking(True)
        # A whole frame marked MORE, then nothing: the next header never comes. One thread per
        # connection: the engine reads each when it has a permit for it.
        writers.append(threading.Thread(target=sock.sendall, args=(frame,), daemon=True))
for writer in writers:
    writer.start()
for writer in writers:
    writer.join(30)
os.kill(os.getpid(), signal.SIGSTOP)  # no thread of the kernel writes again
"""


def stall_code(channels: tuple[str, ...]) -> str:
    return STALL.replace("@CHANNELS@", repr(list(channels)))


def _budget() -> wire.ReceiveBudget:
    budget = wire.loop_budget()
    assert budget is not None, "no kernel of this engine has made the receive budget yet"
    return budget


async def _canary(ctx: Context) -> Session:
    """Another tenant's session whose cells each send one 2 MB output."""
    session = await ctx.session(owner="wire-canary")
    r = await session.execute(BIG_OUTPUT, timeout=60)
    if r.status is not ExecutionStatus.OK:
        raise RuntimeError(f"the 2 MB canary cell fails: {brief(r)}")
    return session


async def _latencies(session: Session, n: int = SAMPLES) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        r = await session.execute(BIG_OUTPUT, timeout=60)
        times.append(time.perf_counter() - started)
        if r.status is not ExecutionStatus.OK or not r.display:
            raise RuntimeError(f"a 2 MB canary cell failed: {brief(r)}")
    return times


def _p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


async def _until(predicate: object, seconds: float) -> float | None:
    """Seconds until ``predicate()`` held, or None if it did not within ``seconds``."""
    started = time.perf_counter()
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() - started > seconds:
            return None
        await asyncio.sleep(0.02)
    return time.perf_counter() - started


async def _stall(
    ctx: Context, kernels: int, channels: tuple[str, ...], timeout: float = 40
) -> tuple[list[Session], list[asyncio.Task[ExecutionResult]]]:
    # One tenant per kernel: the per-tenant session quota is not what these cases test.
    sessions = [await ctx.session(owner=f"hostile-wire-{n}") for n in range(kernels)]
    for s in sessions:  # the kernels are up before the clock starts
        await s.execute("1", timeout=60)
    code = stall_code(channels)
    tasks = [asyncio.ensure_future(s.execute(code, timeout=timeout)) for s in sessions]
    return sessions, tasks


def _ended(results: list[ExecutionResult]) -> tuple[bool, str]:
    """Each stalled kernel's execution ends with a result that says its kernel was replaced."""
    names = sorted({r.error.name if r.error else r.status.value for r in results})
    ok = all(r.state_lost and r.status is not ExecutionStatus.OK for r in results)
    return ok, f"stalled kernels ended with {names}"


async def header_stall(ctx: Context) -> Verdict:
    """Two kernels of one tenant stall on shell and iopub at once: before the fix each held two
    permits for as long as it liked, so the four permits of the process were gone."""
    canary = await _canary(ctx)
    budget = _budget()
    quiet = _p99(await _latencies(canary))
    sessions, tasks = await _stall(ctx, 2, ("shell", "iopub"))
    taken = await _until(lambda: budget.available < budget.permits, 15)
    loaded = await _latencies(canary)
    freed = await _until(lambda: budget.available == budget.permits, 3 * wire.STALL_SECONDS)
    still_stopped = not any(t.done() for t in tasks)
    results = await asyncio.gather(*tasks)
    end = time.perf_counter()
    p99 = _p99(loaded)
    ended, how = _ended(results)
    back = "NEVER" if taken is None or freed is None else f"after {taken + freed:.1f} s"
    ok = taken is not None and freed is not None and p99 < 2 * quiet and ended
    return Verdict(
        ok,
        f"canary 2 MB output p99 {quiet * 1000:.0f} ms quiet, {p99 * 1000:.0f} ms under the "
        f"stall (max {max(loaded) * 1000:.0f} ms); permits taken by the stall: "
        f"{'yes' if taken is not None else 'NO'}; all {budget.permits} back "
        f"{back}"
        f"{' while the kernels were still stopped' if still_stopped else ''}; {how}",
        sessions[0],
        end,
    )


async def permit_hog(ctx: Context) -> Verdict:
    """One kernel stalls a large message on every channel it has: it holds one permit at most,
    and that one for one deadline."""
    canary = await _canary(ctx)
    budget = _budget()
    sessions, tasks = await _stall(ctx, 1, ("shell", "iopub", "control"))
    held_most = 0
    started = time.perf_counter()
    freed_at: float | None = None
    while not all(t.done() for t in tasks) and time.perf_counter() - started < 60:
        held = budget.permits - budget.available
        held_most = max(held_most, held)
        if held_most and held == 0 and freed_at is None:
            freed_at = time.perf_counter() - started
        await asyncio.sleep(0.02)
    times = await _latencies(canary, 5)
    results = await asyncio.gather(*tasks)
    end = time.perf_counter()
    ended, how = _ended(results)
    released = "never" if freed_at is None else f"{freed_at:.1f} s"
    ok = held_most == 1 and freed_at is not None and ended
    return Verdict(
        ok,
        f"one kernel stalling on shell, iopub and control held at most {held_most} permit(s) "
        f"of {budget.permits}; released after {released} (deadline {wire.STALL_SECONDS:g} s); "
        "canary 2 MB cells after: "
        f"{max(times) * 1000:.0f} ms max; {how}",
        sessions[0],
        end,
    )


async def bounded_wait(ctx: Context) -> Verdict:
    """More stalling kernels than permits: every permit is taken, and the kernels left waiting,
    like another tenant's big output, get an answer within one deadline and one wait."""
    canary = await _canary(ctx)
    budget = _budget()
    sessions, tasks = await _stall(ctx, budget.permits + 1, ("shell",), timeout=25)
    full = await _until(lambda: budget.available == 0, 20)
    started = time.perf_counter()
    r = await canary.execute(BIG_OUTPUT, timeout=120)
    waited = time.perf_counter() - started
    results = await asyncio.gather(*tasks)
    end = time.perf_counter()
    back = await _until(lambda: budget.available == budget.permits, 10)
    bound = wire.STALL_SECONDS + wire.PERMIT_WAIT_SECONDS
    ended, how = _ended(results)
    canary_ok = r.status is ExecutionStatus.OK and bool(r.display)
    ok = full is not None and waited < bound and canary_ok and ended and back is not None
    return Verdict(
        ok,
        f"{len(sessions)} kernels stalled with {budget.permits} permits (all taken: "
        f"{'yes' if full is not None else 'NO'}); the canary's 2 MB cell waited {waited:.1f} s "
        f"(bound {bound:g} s) and {'arrived' if canary_ok else 'FAILED: ' + brief(r)}; "
        f"permits all back: {'yes' if back is not None else 'NO'}; {how}",
        sessions[0],
        end,
    )


CASES = [
    Case(
        "wire-header-stall",
        KERNEL,
        "code in two sandboxes of one tenant writes a 2 MB ZMTP frame marked MORE on its kernel's "
        "shell and iopub connections, then stops the kernel (SIGSTOP): the next header never "
        "comes",
        "every permit is back within one deadline while the kernels are still stopped; another "
        "tenant's 2 MB outputs keep a p99 under 2x their quiet value; the stalled kernels are "
        "replaced, state_lost",
        header_stall,
        limit=240,
    ),
    Case(
        "wire-permit-hog",
        KERNEL,
        "one kernel stalls a large message on its shell, iopub and control connections at once",
        "that kernel holds at most one receive permit, released at the deadline; it is replaced",
        permit_hog,
        limit=180,
    ),
    Case(
        "wire-bounded-permit-wait",
        KERNEL,
        "more kernels than receive permits stall a large message each, while another tenant "
        "sends a 2 MB output",
        "the waits are bounded: the other tenant's output arrives within one deadline plus one "
        "wait, the stalled kernels are replaced, and every permit comes back",
        bounded_wait,
        limit=420,
    ),
]
