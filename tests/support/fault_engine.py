"""An engine in its own process with several executions (and an upload) in flight, for the
kill -9 fault injection: ``python -m tests.support.fault_engine DATA_DIR``.

It prints one JSON line with the ids and the expected bytes' digests, then ``RUNNING`` once every
execution is mid-cell, and waits to be killed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from engine import Engine, Settings

SESSIONS = 3


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(1_000_000 + n)


async def slow_upload() -> AsyncIterator[bytes]:
    """An upload that is still being written when the process dies."""
    for _ in range(1000):
        yield b"u" * 65536
        await asyncio.sleep(0.05)


async def main(data_dir: Path) -> None:
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
        started = asyncio.Event()
        count = 0

        def on_event(_: object) -> None:
            nonlocal count
            count += 1
            if count == SESSIONS:
                started.set()

        runs = [
            asyncio.ensure_future(
                s.execute(
                    f"open('midway{n}.bin', 'wb').write(bytes([{n}]) * 500_000)\n"
                    "print('WRITTEN', flush=True)\nimport time\ntime.sleep(600)",
                    timeout=900,
                    on_event=on_event,
                )
            )
            for n, s in enumerate(sessions)
        ]
        upload = asyncio.ensure_future(engine.files.create(slow_upload(), "partial.bin"))
        await started.wait()
        await asyncio.sleep(0.5)  # the upload has written some chunks by now
        print("RUNNING", flush=True)
        await asyncio.gather(*runs, upload)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
