"""Resource exhaustion: processes, memory, disk, inodes, CPU, output, threads and sockets."""

from __future__ import annotations

import time

from engine import ExecutionResult, ExecutionStatus

from .. import hostside
from ..harness import Context
from ..model import RESOURCES, Case, Verdict, brief, code_case, lines

FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""

SHELL_FORK_BOMB = """
import os, subprocess, time
subprocess.Popen(['bash', '-c', ':(){ :|:& };:'], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
print('pids=' + str(sum(1 for p in os.listdir('/proc') if p.isdigit())))
"""

FILL = """
import errno
path, written = {path!r}, 0
try:
    with open(path, 'wb') as f:
        while True:
            f.write(b'\\0' * (4 << 20))
            written += 4
except OSError as e:
    print('stopped=' + errno.errorcode.get(e.errno, str(e.errno)))
print('written_mb=' + str(written))
"""

MILLION_FILES = """
import os, time
started, n, why = time.time(), 0, 'done'
try:
    for d in range(1000):
        os.mkdir(f'/mnt/data/many{d}')
        for i in range(1000):
            fd = os.open(f'/mnt/data/many{d}/{i}', os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b'x')
            os.close(fd)
            n += 1
        print(f'files={n}', flush=True)  # the OOM killer may not let the cell finish
        if time.time() - started > 40:
            why = 'time budget'
            break
except OSError as e:
    why = e.strerror
print(f'files={n}')
print(f'stopped={why}')
"""

SPIN_THREADS = """
import threading
def spin():
    while True:
        pass
for _ in range(8):
    threading.Thread(target=spin, daemon=True).start()
print('spinning')
"""

THREADS = """
import threading
gate, started = threading.Event(), []
try:
    for _ in range(5000):
        t = threading.Thread(target=gate.wait)
        t.start()
        started.append(t)
except RuntimeError as e:
    print('stopped=' + str(e))
print('threads=' + str(len(started)))
gate.set()
"""

SOCKETS = """
import socket
held = []
try:
    for _ in range(5000):
        held.append(socket.socket())
except OSError as e:
    why = e.strerror
else:
    why = 'none'
n = len(held)
for s in held:
    s.close()
print('sockets=' + str(n))
print('stopped=' + why)
"""


def _stopped(result: ExecutionResult, *, allow_oom: bool = True) -> tuple[bool, str]:
    """A filler must stop on its own (ENOSPC, EFBIG) or be killed as out of memory."""
    found = lines(result)
    if result.status is ExecutionStatus.OK and found.get("stopped") in ("ENOSPC", "EFBIG"):
        return True, f"write refused with {found['stopped']} after {found.get('written_mb')} MB"
    if allow_oom and _is_oom(result):
        return True, "killed as out of memory (the tmpfs counts toward the memory limit)"
    return False, brief(result)


def fill_case(name: str, path: str, quick: bool = False) -> Case:
    return code_case(
        name,
        RESOURCES,
        f"write zeros to {path} until something stops it",
        "the write fails with ENOSPC/EFBIG (size-capped tmpfs) or the kernel is killed as out of "
        "memory; the session answers again",
        FILL.format(path=path),
        _stopped,
        timeout=60,
        quick=quick,
    )


async def fill_data(ctx: Context) -> Verdict:
    """/mnt/data is a tmpfs volume: filling it must not touch the host's disk."""
    session = await ctx.session()
    before = hostside.disk_used(ctx.settings.data_dir)
    result = await session.execute(FILL.format(path="/mnt/data/fill.bin"), timeout=60)
    end = time.perf_counter()
    grew = (hostside.disk_used(ctx.settings.data_dir) - before) / 2**20
    ok, evidence = _stopped(result)
    # Other processes share the host disk; a filled 1 GB tmpfs landing on it would show as ~1 GB.
    if grew > 200:
        ok, evidence = False, f"host disk grew by {grew:.0f} MB; {evidence}"
    exported = [o for o in result.outputs if o.bytes > ctx.engine.files.max_bytes]
    if exported:
        ok = False
    return Verdict(ok, f"{evidence}; host disk delta {grew:+.0f} MB", session, end)


async def spinning_threads(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(SPIN_THREADS, timeout=30)
    end = time.perf_counter()
    if r.status is not ExecutionStatus.OK:
        return Verdict(False, brief(r), session, end)
    rate = await hostside.cpu_rate(session, 2.0)
    t = time.perf_counter()
    canary = ctx.canary.session
    assert canary is not None
    answered = await canary.execute("6 * 7", timeout=30)
    canary_s = time.perf_counter() - t
    await session.restart()
    after = await hostside.cpu_rate(session, 1.0)
    limit = ctx.settings.cpus
    ok = rate <= limit * 1.15 + 0.05 and answered.text == "42" and after < 0.2
    return Verdict(
        ok,
        f"8 spinning threads after the cell ended: container CPU {rate:.2f} s/s "
        f"(limit {limit:g}); canary answered in {canary_s:.2f} s; after restart {after:.2f} s/s",
        session,
        end,
    )


async def shell_fork_bomb(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(SHELL_FORK_BOMB, timeout=30)
    end = time.perf_counter()
    pids = int(lines(r).get("pids", "0") or 0)
    t = time.perf_counter()
    await session.restart()
    restart_s = time.perf_counter() - t
    after = await session.execute(
        "import os, subprocess\nprint('pids=' + str(sum(1 for p in os.listdir('/proc') "
        "if p.isdigit())))\nprint('spawn=' + str(subprocess.run(['true']).returncode))",
        timeout=30,
    )
    left = int(lines(after).get("pids", "999") or 999)
    limit = ctx.settings.pids_limit
    ok = pids <= limit + 5 and left < 20 and lines(after).get("spawn") == "0"
    return Verdict(
        ok,
        f"detached bash fork bomb: {pids} pids visible (limit {limit}); restart took "
        f"{restart_s:.1f} s and left {left} pids; new processes spawn again",
        session,
        end,
    )


def _is_oom(result: ExecutionResult) -> bool:
    """OutOfMemory: the kernel was OOM-killed. Under gVisor the whole sandbox is, and the
    session reports SandboxLost saying it ran out of memory."""
    error = result.error
    if result.status is not ExecutionStatus.CRASHED or error is None:
        return False
    return error.name == "OutOfMemory" or (
        error.name == "SandboxLost" and "out of memory" in error.value
    )


def _oom(result: ExecutionResult) -> tuple[bool, str]:
    return _is_oom(result), brief(result)


def _child_oom(result: ExecutionResult) -> tuple[bool, str]:
    rc = lines(result).get("rc")
    if result.status is ExecutionStatus.OK and rc == "-9":
        return True, "the child was OOM-killed (rc -9); the kernel lived on"
    return _oom(result)


async def huge_stdout(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\nprint('END')",
        timeout=120,
    )
    end = time.perf_counter()
    cap = ctx.settings.output_limit_chars
    ok = r.status is ExecutionStatus.OK and len(r.stdout) <= cap + 200
    ok = ok and r.dropped.get("stdout", 0) > 90_000_000 and r.stdout.rstrip().endswith("END")
    return Verdict(
        ok,
        f"100 MB printed: kept {len(r.stdout)} chars (cap {cap}), dropped "
        f"{r.dropped.get('stdout', 0)}, tail kept; took {r.duration_ms / 1000:.1f} s",
        session,
        end,
    )


async def fd1_output(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import os\nfor _ in range(100):\n    os.write(1, b'z' * 1_000_000)\n"
        "os.write(2, b'E' * 5_000_000)",
        timeout=120,
    )
    end = time.perf_counter()
    info = await hostside.inspect(session)
    logs = hostside.log_bytes(info)
    cap = ctx.settings.output_limit_chars
    ok = r.status is ExecutionStatus.OK and len(r.stdout) <= cap + 200
    ok = ok and len(r.stderr) <= cap + 200 and logs <= 1024 * 1024
    return Verdict(
        ok,
        f"100 MB to fd 1 and 5 MB to fd 2: kept {len(r.stdout)} + {len(r.stderr)} chars "
        f"(cap {cap} each), dropped {r.dropped}; container log file {logs} bytes",
        session,
        end,
    )


async def huge_display(ctx: Context) -> Verdict:
    session = await ctx.session()
    rss = hostside.rss_mb()
    r = await session.execute(
        "from IPython.display import display\n"
        "for i in range(6):\n"
        "    display({'text/plain': str(i) * (20 << 20)}, raw=True)\n",
        timeout=180,
    )
    end = time.perf_counter()
    kept = sum(len(str(v)) for bundle in r.display for v in bundle.values())
    cap = ctx.settings.max_display_bytes
    grew = hostside.rss_mb() - rss
    ok = r.status is ExecutionStatus.OK and kept <= cap and r.dropped.get("display", 0) > 0
    return Verdict(
        ok,
        f"6 displays of 20 MB each: kept {len(r.display)} ({kept / 2**20:.0f} MB, cap "
        f"{cap / 2**20:.0f} MB), dropped {r.dropped.get('display', 0)}; engine RSS "
        f"{grew:+.0f} MB after; took {r.duration_ms / 1000:.1f} s",
        session,
        end,
    )


async def huge_error(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute("raise ValueError('v' * (100 << 20))\n", timeout=120)
    end = time.perf_counter()
    size = 0 if r.error is None else len(r.error.value) + sum(map(len, r.error.traceback))
    cap = ctx.settings.output_limit_chars
    # Formatting the traceback copies the message; under gVisor that can end in an OOM kill.
    ok = (r.status is ExecutionStatus.ERROR or _is_oom(r)) and size <= 3 * cap
    return Verdict(
        ok,
        f"a 100 MB exception message: kept {size} chars of error (cap {cap}); "
        f"took {r.duration_ms / 1000:.1f} s; {brief(r, 90)}",
        session,
        end,
    )


async def huge_result(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute("'r' * (100 << 20)", timeout=120)
    end = time.perf_counter()
    kept = sum(len(str(v)) for v in (r.result or {}).values())
    cap = ctx.settings.max_display_bytes
    ok = r.status is ExecutionStatus.OK and kept <= cap
    return Verdict(
        ok,
        f"a 100 MB value as the cell's result: kept {kept} chars (cap {cap}), "
        f"dropped {r.dropped}; took {r.duration_ms / 1000:.1f} s",
        session,
        end,
    )


async def many_displays(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "from IPython.display import display\nfor i in range(20000):\n    display(i)\n",
        timeout=120,
    )
    end = time.perf_counter()
    cap = ctx.settings.max_display_outputs
    dropped = r.dropped.get("display", 0)
    ok = r.status is ExecutionStatus.OK and len(r.display) <= cap and dropped > 0
    # Under a flood the kernel's iopub socket drops messages past its high-water mark.
    lost = 20000 - len(r.display) - dropped
    return Verdict(
        ok,
        f"20,000 displays: kept {len(r.display)} (cap {cap}), dropped {dropped}, "
        f"{lost} never reached the engine (iopub high-water mark); "
        f"took {r.duration_ms / 1000:.1f} s",
        session,
        end,
    )


async def million_files(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(MILLION_FILES, timeout=60)
    end = time.perf_counter()
    found = lines(r)
    cap = ctx.settings.max_output_files
    ok = r.status in (ExecutionStatus.OK, ExecutionStatus.CRASHED, ExecutionStatus.TIMEOUT)
    ok = ok and len(r.outputs) <= cap
    t = time.perf_counter()
    listed = await session.list_files()
    list_s = time.perf_counter() - t
    ok = ok and list_s < 30
    return Verdict(
        ok,
        f"{found.get('files', '?')} files ({found.get('stopped', brief(r))}); "
        f"status {r.status.value}; exported {len(r.outputs)} (cap {cap}), dropped {r.dropped}; "
        f"listing /mnt/data from the host: {len(listed)} entries in {list_s:.1f} s",
        session,
        end,
    )


CASES = [
    code_case(
        "fork-bomb",
        RESOURCES,
        "os.fork() in an endless loop inside the kernel",
        "the pids limit stops it; the timeout ladder kills every process and restarts the kernel "
        "(under gVisor, which does not count its processes, the sandbox dies and is replaced)",
        FORK_BOMB,
        lambda r: (
            r.state_lost and r.status in (ExecutionStatus.TIMEOUT, ExecutionStatus.CRASHED),
            brief(r),
        ),
        timeout=5,
        limit=180,
    ),
    Case(
        "shell-fork-bomb-detached",
        RESOURCES,
        "a bash fork bomb in its own session, left running after the cell returns",
        "the pids limit caps it; a restart ends every process and the sandbox can spawn again",
        shell_fork_bomb,
        limit=180,
    ),
    code_case(
        "memory-bomb",
        RESOURCES,
        "allocate 3 GB at once",
        "the kernel is OOM-killed inside its cgroup and reported as OutOfMemory",
        "hog = b'x' * (3 << 30)",
        _oom,
        timeout=60,
    ),
    code_case(
        "memory-creep",
        RESOURCES,
        "append 64 MB chunks until something gives",
        "OutOfMemory, reported as such; the session answers again",
        "hog = []\nwhile True:\n    hog.append(b'y' * (64 << 20))",
        _oom,
        timeout=60,
    ),
    code_case(
        "memory-bomb-in-child",
        RESOURCES,
        "a child process allocates 3 GB",
        "the OOM killer ends the child (or the kernel) inside the sandbox's cgroup",
        "import subprocess, sys\n"
        "rc = subprocess.run([sys.executable, '-c', \"b'x' * (3 << 30)\"]).returncode\n"
        "print(f'rc={rc}')",
        _child_oom,
        timeout=60,
    ),
    Case(
        "fill-mnt-data",
        RESOURCES,
        "write to /mnt/data until it is full",
        "ENOSPC from the size-capped tmpfs volume or an OOM kill; the host disk does not grow",
        fill_data,
    ),
    fill_case("fill-tmp", "/tmp/fill.bin"),
    fill_case("fill-dev-shm", "/dev/shm/fill.bin", quick=True),
    fill_case("fill-home", "/home/sandbox/fill.bin"),
    Case(
        "million-small-files",
        RESOURCES,
        "create up to a million 1-byte files in /mnt/data",
        "bounded by memory/inodes/timeout; export capped at max_output_files; listing capped",
        million_files,
        limit=180,
    ),
    Case(
        "cpu-threads-after-cell",
        RESOURCES,
        "8 threads spin the CPU after the cell has returned",
        "CPU use stays within --cpus; the canary stays responsive; a restart stops them",
        spinning_threads,
    ),
    Case(
        "huge-stdout",
        RESOURCES,
        "print 100 MB",
        "stdout keeps its head and tail within output_limit_chars; the rest is counted as dropped",
        huge_stdout,
        limit=180,
    ),
    Case(
        "fd1-output",
        RESOURCES,
        "os.write 100 MB straight to fd 1 and 5 MB to fd 2",
        "captured and capped like stdout; nothing piles up in Docker's log",
        fd1_output,
        limit=180,
    ),
    Case(
        "huge-display",
        RESOURCES,
        "six display outputs of 20 MB each",
        "display data kept within max_display_bytes; the rest dropped and counted",
        huge_display,
        limit=240,
    ),
    Case(
        "huge-error",
        RESOURCES,
        "raise an exception whose message is 100 MB",
        "the error's value and traceback are capped",
        huge_error,
        limit=180,
    ),
    Case(
        "huge-result",
        RESOURCES,
        "a 100 MB string as the cell's value",
        "the result bundle is capped like display data",
        huge_result,
        limit=180,
    ),
    Case(
        "many-displays",
        RESOURCES,
        "20,000 display outputs",
        "at most max_display_outputs kept, the rest counted as dropped",
        many_displays,
        limit=180,
    ),
    code_case(
        "thousands-of-threads",
        RESOURCES,
        "start 5,000 threads",
        "the pids limit refuses them (can't start new thread); the kernel carries on",
        THREADS,
        lambda r: (
            r.status is ExecutionStatus.OK and int(lines(r).get("threads", "9999")) < 256,
            brief(r),
        ),
        quick=True,
    ),
    code_case(
        "thousands-of-sockets",
        RESOURCES,
        "open 5,000 sockets",
        "the nofile limit refuses them (EMFILE); the kernel carries on",
        SOCKETS,
        lambda r: (
            r.status is ExecutionStatus.OK and int(lines(r).get("sockets", "9999")) <= 1024,
            brief(r),
        ),
    ),
]
