"""Kernel faults: exits, crashes, signals, code that will not stop, broken stdio."""

from __future__ import annotations

import time

from engine import ExecutionResult, ExecutionStatus

from ..harness import Context
from ..model import KERNEL, Case, Check, Verdict, brief, code_case, lines


def died(expected: str) -> Check:
    def check(r: ExecutionResult) -> tuple[bool, str]:
        ok = (
            r.status is ExecutionStatus.CRASHED
            and r.state_lost
            and r.error is not None
            and r.error.name == "KernelDied"
            and expected in r.error.value
        )
        return ok, brief(r)

    return check


def restarted(r: ExecutionResult) -> tuple[bool, str]:
    """Uninterruptible code: a timeout, a restart, and state_lost saying so."""
    ok = r.status is ExecutionStatus.TIMEOUT and r.state_lost
    ok = ok and r.error is not None and r.error.name == "TimeoutError"
    return ok, f"{brief(r)}; returned after {r.duration_ms / 1000:.1f} s (timeout 3 s)"


def error_named(name: str) -> Check:
    def check(r: ExecutionResult) -> tuple[bool, str]:
        ok = r.status is ExecutionStatus.ERROR and r.error is not None and r.error.name == name
        return ok, brief(r)

    return check


def crashed_or_error(r: ExecutionResult) -> tuple[bool, str]:
    ok = r.status is ExecutionStatus.ERROR or (
        r.status is ExecutionStatus.CRASHED and r.error is not None and r.state_lost
    )
    return ok, brief(r)


async def closed_stdout(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute("import sys\nsys.stdout.close()\nsys.stderr.close()\nprint('x')")
    end = time.perf_counter()
    after = await session.execute("print('printed')\n6 * 7", timeout=30)
    prints = "printed" in after.stdout
    ok = r.status in (ExecutionStatus.ERROR, ExecutionStatus.OK)
    note = (
        "print() works again"
        if prints
        else (
            f"print() fails until a restart ({after.error.name if after.error else '?'}), "
            "the kernel itself still answers"
        )
    )
    return Verdict(ok, f"{brief(r)}; next cell: {note}", session, end)


async def old_output_after_timeout(ctx: Context) -> Verdict:
    """A cell floods stdout until its timeout, and leaves a thread printing time stamps.

    The next cells must carry nothing the old cell printed, and no thread line stamped before
    they began. A thread still running prints live into whichever cell runs (Jupyter's rule:
    such output has no cell of its own); a restart ends it."""
    session = await ctx.session()
    r = await session.execute(
        "import threading, time\n"
        "def chatter():\n"
        "    while True:\n"
        "        print(f'T{time.time():.4f}', flush=True)\n"
        "        time.sleep(0.005)\n"
        "threading.Thread(target=chatter, daemon=True).start()\n"
        "while True:\n"
        "    print('OLD-CELL', flush=True)\n"
        "    time.sleep(0.001)\n",
        timeout=1,
    )
    end = time.perf_counter()
    early, live, cell_lines = 0, 0, 0
    outs = []
    for _ in range(3):
        began = time.time()
        n = await session.execute("import time; time.sleep(0.3); print('NEW')")
        outs.append(n)
        cell_lines += n.stdout.count("OLD-CELL")
        for line in n.stdout.splitlines():
            if line.startswith("T"):
                live += 1
                early += float(line[1:]) < began - 0.01
    await session.restart()
    quiet = await session.execute("import time; time.sleep(0.3); print('NEW')")
    ok = r.status is ExecutionStatus.TIMEOUT and not early and not cell_lines
    ok = ok and all("NEW" in n.stdout for n in outs) and quiet.stdout == "NEW\n"
    return Verdict(
        ok,
        f"timed-out cell ({r.status.value}); next 3 cells: {cell_lines} of its lines, "
        f"{early} thread lines stamped before they began, {live} live thread lines (a thread "
        f"left running prints into the running cell); after restart: {quiet.stdout!r}",
        session,
        end,
    )


async def old_output_after_restart(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    print('OLD' * 100, flush=True)",
        timeout=2,
    )
    end = time.perf_counter()
    nxt = await session.execute("print('NEW')")
    ok = r.status is ExecutionStatus.TIMEOUT and r.state_lost and nxt.stdout == "NEW\n"
    return Verdict(
        ok,
        f"a SIGINT-proof printing loop timed out ({brief(r)[:80]}); next cell stdout "
        f"{nxt.stdout!r}",
        session,
        end,
    )


async def orphan_processes(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "q = subprocess.Popen(['bash', '-c', 'trap \"\" INT TERM HUP; sleep 1000'])\n"
        "print(f'pids={p.pid},{q.pid}')",
    )
    end = time.perf_counter()
    await session.restart()
    pids = lines(r).get("pids", "")
    after = await session.execute(
        f"import os\nalive = [p for p in ({pids},) if os.path.exists(f'/proc/{{p}}')]\n"
        "print(f'alive={alive}')"
    )
    ok = lines(after).get("alive") == "[]"
    return Verdict(
        ok,
        f"a detached sleep and a signal-ignoring bash survive the cell; after restart: "
        f"{lines(after).get('alive', brief(after))} still alive",
        session,
        end,
    )


SWALLOWS_INTERRUPTS = (
    "import time\nwhile True:\n    try:\n        while True:\n            time.sleep(1)\n"
    "    except KeyboardInterrupt:\n        pass"
)


async def repeated_interrupts(ctx: Context) -> Verdict:
    """Each timeout must stop the code (a restart here), however many came before."""
    session = await ctx.session()
    outcomes = []
    ok = True
    for _ in range(4):
        r = await session.execute(SWALLOWS_INTERRUPTS, timeout=1)
        nxt = await session.execute("6 * 7", timeout=15)
        outcomes.append(f"{r.status.value}/{'restart' if r.state_lost else 'kept'}/{nxt.text}")
        ok = ok and r.status is ExecutionStatus.TIMEOUT and r.state_lost and nxt.text == "42"
    end = time.perf_counter()
    return Verdict(
        ok, f"4 timeouts of a loop that swallows KeyboardInterrupt: {outcomes}", session, end
    )


CASES = [
    code_case(
        "os-exit",
        KERNEL,
        "os._exit(3)",
        "crashed: KernelDied, exit code 3; a new kernel; files kept",
        "import os; os._exit(3)",
        died("exit code 3"),
        quick=True,
    ),
    code_case(
        "segfault",
        KERNEL,
        "dereference NULL through ctypes",
        "crashed: KernelDied, signal 11; a new kernel",
        "import ctypes; ctypes.string_at(0)",
        died("signal 11"),
    ),
    code_case(
        "sigkill-self",
        KERNEL,
        "SIGKILL to its own process",
        "crashed: KernelDied, signal 9; a new kernel",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        died("signal 9"),
    ),
    code_case(
        "sigint-ignored",
        KERNEL,
        "SIGINT set to SIG_IGN, then a busy loop",
        "timeout; interrupt fails, so the kernel is restarted within interrupt_grace",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        restarted,
        timeout=3,
    ),
    code_case(
        "sigint-swallowed",
        KERNEL,
        "a SIGINT handler that prints and carries on sleeping",
        "timeout and restart",
        "import signal, time\nsignal.signal(signal.SIGINT, lambda *a: print('ignored'))\n"
        "while True:\n    time.sleep(0.1)",
        restarted,
        timeout=3,
    ),
    code_case(
        "keyboardinterrupt-caught",
        KERNEL,
        "catch KeyboardInterrupt in a loop and keep going",
        "timeout and restart",
        "import time\nwhile True:\n    try:\n        time.sleep(1)\n"
        "    except KeyboardInterrupt:\n        pass",
        restarted,
        timeout=3,
    ),
    code_case(
        "sigint-blocked",
        KERNEL,
        "block SIGINT with pthread_sigmask, then sleep",
        "timeout and restart",
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
        "time.sleep(1000)",
        restarted,
        timeout=3,
    ),
    code_case(
        "infinite-loop-in-c",
        KERNEL,
        "catastrophic regex backtracking: a loop in C that never checks for signals",
        "timeout and restart",
        "import re\nre.match(r'(a*)*b', 'a' * 64)",
        restarted,
        timeout=3,
    ),
    code_case(
        "deep-recursion",
        KERNEL,
        "unbounded Python recursion",
        "RecursionError; the kernel carries on",
        "def f(n):\n    return f(n + 1)\nf(0)",
        error_named("RecursionError"),
    ),
    code_case(
        "deep-recursion-unlimited",
        KERNEL,
        "sys.setrecursionlimit(10**8), then unbounded recursion until the C stack overflows",
        "RecursionError, or a crash reported as KernelDied; a new kernel",
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)",
        crashed_or_error,
        timeout=60,
    ),
    Case(
        "closed-stdout",
        KERNEL,
        "sys.stdout.close() and sys.stderr.close(), then print",
        "a clear error, no hang; the kernel still answers",
        closed_stdout,
    ),
    code_case(
        "closed-fd1",
        KERNEL,
        "os.close(1) and os.close(2) under the kernel",
        "no hang; later output still arrives",
        "import os\nos.close(1)\nos.close(2)\nprint('after')",
        lambda r: (r.status is ExecutionStatus.OK and "after" in r.stdout, brief(r)),
    ),
    code_case(
        "exit-builtin",
        KERNEL,
        "exit() and quit() inside a cell",
        "no hang; the session answers the next cell",
        "exit()",
        lambda r: (r.status in (ExecutionStatus.OK, ExecutionStatus.CRASHED), brief(r)),
    ),
    code_case(
        "stdin-request",
        KERNEL,
        "input() waiting for the user",
        "an immediate error (no stdin), no hang",
        "input('password: ')",
        error_named("StdinNotImplementedError"),
    ),
    Case(
        "repeated-interrupts",
        KERNEL,
        "four timeouts in a row of a loop that catches KeyboardInterrupt",
        "each time the code is stopped (restart) and the next cell answers",
        repeated_interrupts,
        limit=180,
    ),
    Case(
        "old-output-after-timeout",
        KERNEL,
        "a cell that prints non-stop, and a thread that keeps printing, until the timeout",
        "the next executions carry nothing printed before they began; a restart ends the thread",
        old_output_after_timeout,
    ),
    Case(
        "old-output-after-restart",
        KERNEL,
        "a SIGINT-proof cell printing non-stop until the timeout forces a restart",
        "the next execution carries only its own output",
        old_output_after_restart,
    ),
    Case(
        "orphan-processes",
        KERNEL,
        "detached and signal-ignoring child processes left behind by a cell",
        "a restart ends every sandbox process",
        orphan_processes,
    ),
]
