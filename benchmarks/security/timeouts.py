"""The timeout benchmark: requested timeout against when the code really stopped, when the
result came back, and when the session answered again.

Every cell starts a heartbeat process that stamps the time into /mnt/data/hb every 10 ms and is
ended by the cell's own ``finally`` (interruptible code) or by the kernel restart's kill of every
sandbox process (uninterruptible code); its last stamp is the moment the code stopped.

Targets: within 0.5 s of the timeout for interruptible code, within 3 s for uninterruptible
code, and a session that answers afterwards.

Run: ``python -m benchmarks.security.timeouts [--quick] [--runtime runsc]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import Engine, Session, Settings

from ..common import results_dir

TARGETS = {"interruptible": 0.5, "uninterruptible": 3.0}

KINDS: dict[str, tuple[str, str]] = {
    "sleep": ("interruptible", "import time\nwhile True:\n    time.sleep(0.01)"),
    "python-loop": ("interruptible", "n = 0\nwhile True:\n    n += 1"),
    "numpy": (
        "interruptible",
        "import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a = np.tanh(a @ a)",
    ),
    "sigint-ignored": (
        "uninterruptible",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    ),
    "interrupt-swallowed": (
        "uninterruptible",
        "import time\nwhile True:\n    try:\n        while True:\n            time.sleep(1)\n"
        "    except KeyboardInterrupt:\n        pass",
    ),
    "sigint-blocked": (
        "uninterruptible",
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
        "time.sleep(1000)",
    ),
    "loop-in-c": ("uninterruptible", "import re\nre.match(r'(a*)*b', 'a' * 64)"),
}

HEARTBEAT = """
import subprocess as _sp, sys as _sys
_hb = _sp.Popen([_sys.executable, '-c', '''
import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
fd = os.open('/mnt/data/hb', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
while True:
    os.pwrite(fd, repr(time.time()).ljust(32).encode(), 0)
    time.sleep(0.01)
'''], start_new_session=True)
while not __import__('os').path.exists('/mnt/data/hb'):
    pass
try:
{body}
finally:
    _hb.kill()
"""


@dataclass
class Sample:
    kind: str
    klass: str
    timeout: float
    status: str
    state_lost: bool
    stopped_s: float
    """When the code stopped (its heartbeat's last stamp), from the call."""
    returned_s: float
    """When ``execute`` returned its result, from the call."""
    usable_s: float
    """When the next cell (``6 * 7``) had answered, from the call."""

    @property
    def stop_over(self) -> float:
        return self.stopped_s - self.timeout

    @property
    def return_over(self) -> float:
        return self.returned_s - self.timeout


async def measure(session: Session, kind: str, timeout: float) -> Sample:
    klass, body = KINDS[kind]
    code = HEARTBEAT.format(body=textwrap.indent(body, "    "))
    await session.execute("import os\nif os.path.exists('/mnt/data/hb'): os.remove('/mnt/data/hb')")
    wall0, t0 = time.time(), time.perf_counter()
    r = await session.execute(code, timeout=timeout)
    returned = time.perf_counter() - t0
    nxt = await session.execute("6 * 7", timeout=60)
    usable = time.perf_counter() - t0
    if nxt.text != "42":
        usable = float("inf")
    stamp = (await session.read_file("hb")).decode().strip()
    stopped = float(stamp) - wall0 if stamp else float("nan")
    return Sample(kind, klass, timeout, r.status.value, r.state_lost, stopped, returned, usable)


async def run(
    timeouts: Sequence[float], reps: int, runtime: str | None, console: Console
) -> list[Sample]:
    workdir = Path(tempfile.mkdtemp(prefix="sandbox-timeouts-"))
    extra: dict[str, Any] = {"runtime": runtime} if runtime else {}  # else SANDBOX_RUNTIME, if set
    settings = Settings(
        data_dir=workdir / "engine",
        pool_size=0,
        pool_min=0,
        shutdown_sandboxes="close",
        **extra,
    )
    samples: list[Sample] = []
    try:
        async with Engine(settings) as engine:
            for kind in KINDS:
                session = await engine.session(f"timeouts-{kind}")
                await session.execute("6 * 7")
                for timeout in timeouts:
                    for _ in range(reps):
                        s = await measure(session, kind, timeout)
                        samples.append(s)
                        console.print(
                            f"{kind:<20} T={timeout:<4g} {s.status:<8} stopped "
                            f"{s.stop_over:+.2f} s, returned {s.return_over:+.2f} s, usable "
                            f"after {s.usable_s - timeout:+.2f} s"
                        )
                await engine.sessions.close(session.id)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def summarize(samples: list[Sample]) -> list[dict[str, Any]]:
    rows = []
    for kind, (klass, _) in KINDS.items():
        mine = [s for s in samples if s.kind == kind]
        if not mine:
            continue
        target = TARGETS[klass]
        stop = [s.stop_over for s in mine]
        ret = [s.return_over for s in mine]
        usable = [s.usable_s - s.timeout for s in mine]
        rows.append(
            {
                "kind": kind,
                "class": klass,
                "n": len(mine),
                "statuses": sorted({s.status for s in mine}),
                "state_lost": any(s.state_lost for s in mine),
                "stop_over_p50_s": statistics.median(stop),
                "stop_over_max_s": max(stop),
                "return_over_p50_s": statistics.median(ret),
                "return_over_max_s": max(ret),
                "usable_after_max_s": max(usable),
                "target_s": target,
                "stop_met": max(stop) <= target,
                "return_met": max(ret) <= target,
                "usable": all(u != float("inf") for u in usable),
            }
        )
    return rows


def render(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Timeouts: seconds past the requested timeout (max over runs)")
    for col in ("kind", "class", "n", "status", "stopped", "returned", "usable", "target"):
        table.add_column(col)
    for r in rows:

        def mark(value: float, met: bool) -> str:
            return f"[green]{value:+.2f}[/]" if met else f"[red]{value:+.2f}[/]"

        table.add_row(
            r["kind"],
            r["class"],
            str(r["n"]),
            ",".join(r["statuses"]),
            mark(r["stop_over_max_s"], r["stop_met"]),
            mark(r["return_over_max_s"], r["return_met"]),
            f"{r['usable_after_max_s']:+.2f}",
            f"<= {r['target_s']:g}",
        )
    console.print(table)


def bench(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    quick = bool(getattr(args, "quick", False))
    timeouts = [1.0] if quick else [1.0, 3.0]
    reps = 1 if quick else 2
    runtime = getattr(args, "runtime", None)
    started = time.perf_counter()
    samples = asyncio.run(run(timeouts, reps, runtime, console))
    rows = summarize(samples)
    render(rows, console)
    ok = all(r["stop_met"] and r["usable"] for r in rows)
    results = results_dir(args)
    results.mkdir(parents=True, exist_ok=True)
    path = results / "timeouts.json"
    payload = {
        "benchmark": "timeouts",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "runtime": runtime or Settings().runtime or "runc",
        "targets_s": TARGETS,
        "met": ok,
        "duration_s": round(time.perf_counter() - started, 1),
        "summary": rows,
        "samples": [asdict(s) for s in samples],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    late = [r["kind"] for r in rows if not r["return_met"]]
    console.print(
        f"stop targets {'met' if ok else 'MISSED'}"
        + (f"; results came back later than the target for {', '.join(late)}" if late else "")
        + f"; wrote {path}"
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.security.timeouts")
    parser.add_argument("--quick", action="store_true", help="one timeout, one run per kind")
    parser.add_argument("--runtime", help="OCI runtime for the sandboxes, e.g. runsc")
    parser.add_argument(
        "--out",
        "--results",
        dest="results",
        help="folder for timeouts.json (default ./bench-results)",
    )
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
