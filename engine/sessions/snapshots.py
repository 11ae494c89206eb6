"""Paused sessions' saved namespaces, as opaque bytes on the engine's disk.

A snapshot is written by the session's own (untrusted) code: the engine never unpickles it, only
stores it 0600 with its size and SHA-256, and hands it back unchanged to a sandbox of the same
session, which loads it (sandbox-image/sandbox_snapshot.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from .. import errors
from ..streams import CHUNK, copy_at_most


@dataclass(frozen=True)
class SnapshotMeta:
    """What the session's row keeps of its snapshot."""

    sha256: str
    bytes: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> SnapshotMeta | None:
        return cls(**json.loads(text)) if text else None


class SnapshotStore:
    """One file per paused session under ``<data dir>/snapshots``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, session_id: str) -> Path:
        if not session_id.startswith("sess_") or not session_id[5:].isalnum():
            raise errors.InvalidRequest(f"not a session id: {session_id!r}")
        return self._root / session_id

    async def save(self, session_id: str, src: BinaryIO, max_bytes: int) -> SnapshotMeta:
        """Copy ``src`` in, at most ``max_bytes``; PayloadTooLarge past that."""
        return await asyncio.to_thread(self._save, session_id, src, max_bytes)

    def _save(self, session_id: str, src: BinaryIO, max_bytes: int) -> SnapshotMeta:
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self._path(session_id)
        partial = target.with_name(f".{target.name}.partial")
        digest = hashlib.sha256()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                size = copy_at_most(src, out, max_bytes, lambda: _too_big(max_bytes), digest)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return SnapshotMeta(digest.hexdigest(), size)

    async def open(self, session_id: str, meta: SnapshotMeta) -> BinaryIO:
        """The snapshot, checked against ``meta``; SnapshotCorrupt if it is not what was saved."""
        return await asyncio.to_thread(self._open, session_id, meta)

    def _open(self, session_id: str, meta: SnapshotMeta) -> BinaryIO:
        try:
            f = open(self._path(session_id), "rb")  # noqa: SIM115  # returned to the caller
        except OSError as exc:
            raise errors.SnapshotCorrupt(f"the saved namespace is missing: {exc}") from exc
        digest = hashlib.sha256()
        size = 0
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if size != meta.bytes or digest.hexdigest() != meta.sha256:
            f.close()
            raise errors.SnapshotCorrupt("the saved namespace does not match its checksum")
        f.seek(0)
        return f

    def delete(self, session_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()

    def sweep(self, keep: set[str], older_than: float) -> int:
        """Remove every snapshot but those of ``keep`` written before ``older_than`` (what a
        crash mid-pause left). Returns how many went."""
        if not self._root.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(self._root):
            if entry.name not in keep:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < older_than:
                        os.unlink(entry.path)
                        removed += 1
        return removed


def _too_big(max_bytes: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"the saved namespace is over {max_bytes // (1 << 20)} MB")
