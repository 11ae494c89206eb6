"""Pause snapshots: bytes shaped by the session's own code, stored by the engine and loaded back
on resume. They must never be unpickled on the host, nor reach another tenant's sandbox."""

from __future__ import annotations

import sys
import time

from ..harness import Context
from ..model import ISOLATION, Case, Verdict, clip

# On load, the object's __reduce__ runs: it tries the host's sentinel and the engine's folder,
# then leaves a mark where it actually ran.
LOADER_BOMB = r"""
import os
class Bomb:
    def __reduce__(self):
        return (exec, ('''
import os, socket
hit = []
for path in ("@SENTINEL@", "@DATA_DIR@/engine.db", "/etc/passwd"):
    try:
        with open(path, "a") as f:
            f.write("owned by the snapshot")
        hit.append(path)
    except OSError:
        pass
open("/tmp/bomb-ran-here", "w").write(socket.gethostname() + " " + repr(hit))
''',))
bomb = Bomb()
precious = "@MARKER@-a"
"""

PLANTED = r"""
import os, sandbox_snapshot
# A snapshot of its own, where the engine looks for one, and a save that plants a link instead.
open("/mnt/data/.sandbox-engine-upload-snapshot", "w").write("not a snapshot")
def save(path, max_bytes):
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink("@DATA_DIR@/snapshots", path)
    print('{"saved": [], "modules": [], "unsaved": {}, "bytes": 1, "over_cap": false}')
sandbox_snapshot.save = save
mine = "@MARKER@-b"
"""


async def snapshot_attacks_the_host_loader(ctx: Context) -> Verdict:
    session = await ctx.session()
    made = await session.execute(ctx.fill(LOADER_BOMB))
    if made.error is not None:
        return Verdict(False, f"setup failed: {made.error.value}", session)
    info = await session.pause()
    snapshot = ctx.settings.data_dir / "snapshots" / session.id
    stored = snapshot.read_bytes() if snapshot.exists() else b""
    host_unpickler = "dill" in sys.modules
    after = await session.execute("print(open('/tmp/bomb-ran-here').read()); print(precious)")
    end = time.perf_counter()
    ran_in_sandbox = after.error is None and ctx.marker in after.stdout
    ok = (
        info.status.value == "paused"
        and b"owned by the snapshot" in stored
        and not host_unpickler
        and ran_in_sandbox
        and "@" not in after.stdout
    )
    return Verdict(
        ok,
        f"paused with a {len(stored)} byte snapshot holding the payload; the engine process has "
        f"{'a' if host_unpickler else 'no'} dill; on resume the payload ran in the sandbox: "
        f"{clip(after.stdout, 160)!r}; the runner checks that the host sentinel is untouched",
        session,
        end,
    )


async def snapshot_crosses_tenants(ctx: Context) -> Verdict:
    victim = await ctx.session(owner="tenant-a")
    await victim.execute(f"precious = {ctx.marker + '-a'!r}")
    await victim.pause()
    attacker = await ctx.session(owner="tenant-b")
    planted = await attacker.execute(ctx.fill(PLANTED))
    if planted.error is not None:
        return Verdict(False, f"setup failed: {planted.error.value}", attacker)
    probe = await attacker.execute(
        "import os\nprint(os.path.exists(" + repr(f"{ctx.settings.data_dir}/snapshots") + "))"
    )
    paused = await attacker.pause()
    stolen = []
    for call in (
        lambda: ctx.engine.sessions.get(victim.id, "tenant-b"),
        lambda: ctx.engine.sessions.info(victim.id, "tenant-b"),
    ):
        try:
            call()
            stolen.append("the attacker reached the victim's session")
        except Exception:  # NotFound is the contained outcome
            pass
    back = await attacker.execute("print(mine); print(precious)")
    victim_back = await victim.execute("print(precious)")
    end = time.perf_counter()
    ok = (
        not stolen
        and probe.stdout.strip() == "False"
        and paused.notice is not None
        and "could not be saved" in paused.notice
        and back.error is not None
        and back.error.name == "NameError"
        and victim_back.stdout.strip() == ctx.marker + "-a"
    )
    return Verdict(
        ok,
        f"lookups of the victim's session as the attacker: {stolen or 'all 404'}; the engine's "
        f"snapshots folder seen from the sandbox: {probe.stdout.strip()}; the attacker's planted "
        f"link at pause: {clip(paused.notice or '', 140)!r}; the attacker resumed with "
        f"{back.error.name if back.error else 'its names'}; the victim resumed with "
        f"{victim_back.stdout.strip()!r}",
        victim,
        end,
    )


CASES = [
    Case(
        "snapshot-host-loader",
        ISOLATION,
        "code pauses with an object whose unpickling runs code that writes the host's sentinel, "
        "the engine's database and /etc/passwd",
        "the snapshot is stored as bytes, never unpickled on the host; the payload runs only "
        "inside the resumed sandbox, which reaches none of those",
        snapshot_attacks_the_host_loader,
        limit=240,
    ),
    Case(
        "snapshot-cross-tenant",
        ISOLATION,
        "tenant B plants a snapshot of its own where the engine reads one, replaces the "
        "in-sandbox saver by one that leaves a symlink to the engine's snapshot folder, pauses, "
        "and looks for tenant A's paused session",
        "the symlink is refused (B keeps its files, loses its variables, and is told); A's "
        "session is 404 to B, and A resumes with its own variables",
        snapshot_crosses_tenants,
        limit=240,
    ),
]
