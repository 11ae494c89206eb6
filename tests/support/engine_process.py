"""An engine in its own process, for the kill -9 test:
``python -m tests.support.engine_process DIR``."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from engine import Engine, Settings

PAYLOAD = random.Random(7).randbytes(3_000_000)
MIDWAY = bytes(range(256)) * 4096


async def main(data_dir: Path) -> None:
    async with Engine(Settings(data_dir=data_dir)) as engine:
        f = await engine.files.create(PAYLOAD, "input.bin")
        session = await engine.session("restart-thread", file_ids=[f.id])
        r = await session.execute("import shutil; shutil.copy('input.bin', 'copy.bin')")
        ids = {"session": session.id, "input": f.id, "output": r.outputs[0].file_id}
        print(json.dumps(ids), flush=True)
        await session.execute(
            "open('midway.bin', 'wb').write(bytes(range(256)) * 4096)\n"
            "print('WRITTEN', flush=True)\nimport time\ntime.sleep(600)",
            timeout=900,
            on_event=lambda e: print("EVENT", flush=True),
        )


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
