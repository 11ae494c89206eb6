"""Lifetimes: a sandbox stops itself at its deadline, and nothing inside it can move that."""

from __future__ import annotations

import asyncio
import contextlib
import time

from engine import ExecutionStatus
from engine.errors import EngineError
from engine.sandbox.docker_sandbox import DockerSandbox
from engine.sandbox.lifetime import CHECK_EVERY, read_deadline
from engine.sessions import sandbox_spec

from ..harness import Context
from ..model import ISOLATION, RESOURCES, Case, Verdict, brief, lines

# Each probe prints name=denied:<why> or name=ALLOWED:<what>.
MOVE_DEADLINE = r"""
import os, signal, time

def probe(name, fn):
    try:
        what = fn()
        print(f'{name}=ALLOWED:{what}')
    except OSError as e:
        print(f'{name}=denied:{e.strerror}')

def write():
    with open('/conn/deadline', 'w') as f:
        f.write('99999999999\n')
    return 'wrote'

def replace():
    with open('/tmp/deadline', 'w') as f:
        f.write('99999999999\n')
    os.replace('/tmp/deadline', '/conn/deadline')
    return 'replaced'

def create():
    open('/conn/deadline.new', 'w').close()
    return 'created'

def holders():
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            status = open(f'/proc/{pid}/status').read()
        except OSError:
            continue
        uid = next(l.split()[1] for l in status.splitlines() if l.startswith('Uid:'))
        if uid != str(os.getuid()) and pid != '1':
            found.append(int(pid))
    return found

def kill(sig):
    def run():
        pids = holders()
        if not pids:
            raise OSError(0, 'no watcher process visible')
        for pid in pids:
            os.kill(pid, sig)
        return f'signalled {pids}'
    return run

def memory():
    pids = holders()
    if not pids:
        raise OSError(0, 'no watcher process visible')
    open(f'/proc/{pids[0]}/mem', 'rb').close()
    return 'opened its memory'

probe('write', write)
probe('replace', replace)
probe('create', create)
probe('unlink', lambda: os.unlink('/conn/deadline'))
probe('chmod', lambda: os.chmod('/conn', 0o777))
probe('stop-watcher', kill(signal.SIGSTOP))
probe('kill-watcher', kill(signal.SIGKILL))
probe('watcher-memory', memory)
probe('clock', lambda: time.clock_settime(time.CLOCK_REALTIME, 4e9))
print('deadline=' + open('/conn/deadline').read().strip())
"""

# Fill the process limit with sleepers, then sleep: a watcher that needed a fork would stall.
HOLD_PIDS = """
import os, time
try:
    while True:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
except OSError:
    pass
time.sleep(3600)
"""


async def move_own_deadline(ctx: Context) -> Verdict:
    session = await ctx.session()
    sandbox = session.sandbox
    conn = ctx.settings.data_dir / "sandboxes" / sandbox.id / "conn"
    before = read_deadline(conn)
    result = await session.execute(MOVE_DEADLINE, timeout=30)
    end = time.perf_counter()
    found = lines(result)
    allowed = {k: v for k, v in found.items() if v.startswith("ALLOWED")}
    after = read_deadline(conn)
    running = await sandbox.is_running()
    ok = (
        result.status is ExecutionStatus.OK
        and len(found) == 10
        and not allowed
        and before is not None
        and after == before
        and found.get("deadline") == str(before)
        and running
    )
    probes = "; ".join(f"{k}: {v.removeprefix('denied:')}" for k, v in found.items())
    evidence = f"deadline {before} -> {after}, sandbox running={running}; " + (
        f"ALLOWED {allowed}" if allowed else probes or brief(result)
    )
    return Verdict(ok, evidence, session, end)


async def orphan_stops(ctx: Context) -> Verdict:
    spec = sandbox_spec(ctx.settings, ctx.engine.image, ctx.engine.labels)
    deadline = time.time() + 8
    # Made by the backend alone: no session, no pool, no reaper: nothing will renew it.
    sandbox = await ctx.engine.backend.create(spec, deadline)
    try:
        await sandbox.start_process(["python3", "-c", HOLD_PIDS], {})
        await asyncio.sleep(2)
        held = await sandbox.is_running()
        limit = time.monotonic() + 8 + CHECK_EVERY + 30
        while await sandbox.is_running() and time.monotonic() < limit:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # Docker's state, polled: nothing to wait on here
        stopped_at = time.time()
        end = time.perf_counter()
        stopped = not await sandbox.is_running()
        late = stopped_at - deadline
        ok = held and stopped and late >= 0
        written = sandbox.deadline if isinstance(sandbox, DockerSandbox) else None
        return Verdict(
            ok,
            f"running while its code held the process limit: {held}; stopped: {stopped}, "
            f"seen {late:.1f} s after its deadline ({written})",
            None,
            end,
        )
    finally:
        with contextlib.suppress(EngineError):
            await sandbox.destroy()


CASES = [
    Case(
        "move-own-deadline",
        ISOLATION,
        "sandbox code rewrites, replaces, deletes or adds files in /conn (where its deadline "
        "is), chmods it, stops, kills or reads the memory of the lifetime watcher, sets the "
        "clock",
        "every attempt denied; the deadline file unchanged; the sandbox still running",
        move_own_deadline,
        quick=True,
    ),
    Case(
        "orphan-stops-at-deadline",
        RESOURCES,
        "a sandbox nobody renews (its engine gone) whose code fills the process limit with "
        "sleepers and sleeps",
        "the container stops itself at its deadline (checked every 5 s), not before",
        orphan_stops,
    ),
]
