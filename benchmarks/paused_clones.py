"""Many paused sessions, made honestly but fast: copies of a few really paused ones.

Pausing 10,000 sessions for real takes hours on one host, and what a paused session costs the
engine afterwards is only its stored state. So a few sessions are paused for real; then each
clone gets, through the engine's own store layer, what a pause leaves behind:

- a copy of the source's ``sessions`` row (status ``paused``), with its own session id and
  thread id;
- its own copy of the snapshot bytes (``SnapshotStore.save``: 0600, fsynced, checksummed; the
  row's checksum still matches, so the clone resumes like the source);
- copies of the source's ``session_files`` rows: the clone's /mnt/data is put back from the
  same file objects (their bytes are not copied; the sources stay paused, so they are kept).

It works on a data folder that no engine has open.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from engine.blobs import LocalBlobs
from engine.config import MB
from engine.sessions.records import SessionRecords
from engine.sessions.snapshots import SnapshotMeta, SnapshotStore
from engine.store import Store

SNAPSHOT_FOLDER = "snapshots"
DATABASE = "engine.db"


async def clone_paused(data_dir: Path, source_ids: list[str], count: int) -> list[str]:
    """Add ``count`` clones of the paused sessions ``source_ids`` (in turn) to the engine's
    data folder ``data_dir``; their session ids."""
    store = Store(data_dir / DATABASE)
    snapshots = SnapshotStore(LocalBlobs(data_dir / SNAPSHOT_FOLDER))
    records = SessionRecords(store)
    try:
        sources = []
        for source_id in source_ids:
            row = records.row(source_id)
            if row["status"] != "paused" or row["snapshot"] is None:
                raise ValueError(f"{source_id} is not paused with a snapshot")
            sources.append((row, records.files(source_id)))
        clones = []
        for n in range(count):
            row, files = sources[n % len(sources)]
            clone_id = f"sess_{uuid.uuid4().hex}"
            meta = SnapshotMeta.from_json(row["snapshot"])
            assert meta is not None
            with (data_dir / SNAPSHOT_FOLDER / row["id"]).open("rb") as src:
                copied = await snapshots.save(clone_id, row["owner"], src, meta.bytes + MB)
            if copied != meta:
                raise RuntimeError(f"the copy of {row['id']}'s snapshot differs")
            store.session_rows.add(
                {**row, "id": clone_id, "thread_id": f"{row['thread_id']}-clone-{n}"}
            )
            for file_row in files:
                store.session_rows.remember_file({**file_row, "session_id": clone_id})
            clones.append(clone_id)
        return clones
    finally:
        store.close()
