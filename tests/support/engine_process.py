"""The kill -9 harness: an engine in its own process, killed with SIGKILL while its executions (and
an upload) are in flight.

``kill_mid_execution(SCENARIO, data_dir)`` runs ``python -m tests.support.engine_process SCENARIO
DATA_DIR``, which sets SCENARIO up on an engine, prints one JSON line with what the test will look
for, then ``RUNNING`` once every execution is mid-cell; the harness kills it there and returns the
JSON. ``tests/support/serve_process.py`` does the same for ``sandbox-engine serve``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from engine import Engine, Session, Settings

ROOT = Path(__file__).resolve().parents[2]

PAYLOAD = random.Random(7).randbytes(3_000_000)
MIDWAY = bytes(range(256)) * 4096
SESSIONS = 3


def kill_mid_execution(scenario: str, data_dir: Path) -> dict[str, Any]:
    """Run ``scenario`` in an engine process on ``data_dir`` and SIGKILL it mid-execution."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.engine_process", scenario, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        ids: dict[str, Any] = json.loads(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "RUNNING"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return ids


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(1_000_000 + n)


async def slow_upload() -> AsyncIterator[bytes]:
    """An upload that is still being written when the process dies."""
    for _ in range(1000):
        yield b"u" * 65536
        await asyncio.sleep(0.05)


def mid_cell(
    session: Session, name: str, data: str, on_event: Callable[[object], None]
) -> Awaitable[Any]:
    """An execution that writes ``name`` (``data``, a Python expression) and then sleeps."""
    return session.execute(
        f"open({name!r}, 'wb').write({data})\n"
        "print('WRITTEN', flush=True)\nimport time\ntime.sleep(600)",
        timeout=900,
        on_event=on_event,
    )


async def hold(
    start: Callable[[Callable[[object], None]], list[Awaitable[Any]]], settle: float = 0
) -> None:
    """Start the executions, say ``RUNNING`` once each has sent an event, and wait to be killed."""
    started = asyncio.Event()
    count = 0

    def on_event(_: object) -> None:
        nonlocal count
        count += 1
        if count == len(runs):
            started.set()

    runs = [asyncio.ensure_future(run) for run in start(on_event)]
    await started.wait()
    await asyncio.sleep(settle)
    print("RUNNING", flush=True)
    await asyncio.gather(*runs)


async def restart(data_dir: Path) -> None:
    """One session with an input and an exported copy, killed while a cell writes midway.bin."""
    async with Engine(Settings(data_dir=data_dir)) as engine:
        f = await engine.files.create(PAYLOAD, "input.bin")
        session = await engine.session("restart-thread", file_ids=[f.id])
        r = await session.execute("import shutil; shutil.copy('input.bin', 'copy.bin')")
        ids = {"session": session.id, "input": f.id, "output": r.outputs[0].file_id}
        print(json.dumps(ids), flush=True)
        await hold(
            lambda on_event: [mid_cell(session, "midway.bin", "bytes(range(256)) * 4096", on_event)]
        )


async def faults(data_dir: Path) -> None:
    """Several sessions, each killed while a cell writes midway<N>.bin, and an upload half written;
    the JSON has the sessions and the expected bytes' digests."""
    settings = Settings(data_dir=data_dir, pool_size=0, pool_min=0)
    async with Engine(settings) as engine:
        sessions, inputs, outputs = [], {}, {}
        for n in range(SESSIONS):
            f = await engine.files.create(payload(n), f"input{n}.bin")
            session = await engine.session(f"fault-{n}", file_ids=[f.id])
            r = await session.execute(
                f"import shutil; shutil.copy('input{n}.bin', 'output{n}.bin')"
            )
            inputs[f.id] = outputs[r.outputs[0].file_id] = hashlib.sha256(payload(n)).hexdigest()
            sessions.append(session)
        ids = {"sessions": [s.id for s in sessions], "inputs": inputs, "outputs": outputs}
        print(json.dumps(ids), flush=True)
        upload = asyncio.ensure_future(engine.files.create(slow_upload(), "partial.bin"))
        await hold(
            lambda on_event: [
                mid_cell(s, f"midway{n}.bin", f"bytes([{n}]) * 500_000", on_event)
                for n, s in enumerate(sessions)
            ],
            settle=0.5,  # the upload has written some chunks by now
        )
        await upload


SCENARIOS: dict[str, Callable[[Path], Coroutine[Any, Any, None]]] = {
    "restart": restart,
    "faults": faults,
}

if __name__ == "__main__":
    asyncio.run(SCENARIOS[sys.argv[1]](Path(sys.argv[2])))
