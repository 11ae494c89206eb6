"""The sweep of paused sessions' snapshots: what a crash in mid-pause left goes, the snapshots of
paused sessions and any written since the engine started stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.blobs import LocalBlobs
from engine.sessions.snapshots import SnapshotStore


def test_sweep_keeps_the_paused_and_what_is_newer_than_the_start(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    root.mkdir()
    started = time.time()
    for name in ("sess_paused", "sess_orphan", ".sess_orphan.partial", "sess_new"):
        (root / name).write_bytes(b"x")
    for name in ("sess_paused", "sess_orphan", ".sess_orphan.partial"):
        os.utime(root / name, (started - 60, started - 60))
    os.utime(root / "sess_new", (started + 1, started + 1))
    assert SnapshotStore(LocalBlobs(root)).sweep({"sess_paused"}, older_than=started) == 2
    assert sorted(p.name for p in root.iterdir()) == ["sess_new", "sess_paused"]
