"""Paused sessions' saved namespaces, as opaque bytes in a blob store (the data folder, or S3).

A snapshot is written by the session's own (untrusted) code: the engine never unpickles it, only
stores it 0600 with its size and SHA-256, and hands it back unchanged to a sandbox of the same
session, which loads it (sandbox-image/sandbox_snapshot.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from typing import BinaryIO

from .. import errors
from ..blobs import BlobStore, sweep_before
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
    """One blob per paused session, under its tenant (``blobs.BlobStore``)."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    @staticmethod
    def _name(session_id: str) -> str:
        if not session_id.startswith("sess_") or not session_id[5:].isalnum():
            raise errors.InvalidRequest(f"not a session id: {session_id!r}")
        return session_id

    async def save(
        self, session_id: str, owner: str, src: BinaryIO, max_bytes: int
    ) -> SnapshotMeta:
        """Copy ``src`` in, at most ``max_bytes``; PayloadTooLarge past that."""
        name = self._name(session_id)
        digest = hashlib.sha256()
        size = await asyncio.to_thread(
            self._blobs.put, owner, name, src, max_bytes, lambda: _too_big(max_bytes), digest
        )
        return SnapshotMeta(digest.hexdigest(), size)

    async def open(self, session_id: str, owner: str, meta: SnapshotMeta) -> BinaryIO:
        """The snapshot, checked against ``meta``; SnapshotCorrupt if it is not what was saved."""
        return await asyncio.to_thread(self._open, session_id, owner, meta)

    def _open(self, session_id: str, owner: str, meta: SnapshotMeta) -> BinaryIO:
        try:
            src = self._blobs.open(owner, self._name(session_id))
        except OSError as exc:
            raise errors.SnapshotCorrupt(f"the saved namespace is missing: {exc}") from exc
        if not src.seekable():  # a remote stream: checked into a local file first
            with src:
                local = tempfile.TemporaryFile()  # noqa: SIM115  # returned to the caller
                try:
                    copy_at_most(src, local, meta.bytes + 1, lambda: _corrupt())
                except BaseException:
                    local.close()
                    raise
            src = local
            src.seek(0)
        digest = hashlib.sha256()
        size = 0
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if size != meta.bytes or digest.hexdigest() != meta.sha256:
            src.close()
            raise _corrupt()
        src.seek(0)
        return src

    def delete(self, session_id: str, owner: str) -> None:
        self._blobs.delete(owner, self._name(session_id))

    def sweep(self, keep: set[str], older_than: float) -> int:
        """Remove every snapshot but those of ``keep`` written before ``older_than`` (what a
        crash mid-pause left). Returns how many went."""
        cutoff = sweep_before(self._blobs, older_than)
        removed = 0
        for listed in self._blobs.listed():
            if listed.name not in keep and listed.mtime < cutoff:
                self._blobs.remove(listed)
                removed += 1
        return removed


def _corrupt() -> errors.SnapshotCorrupt:
    return errors.SnapshotCorrupt("the saved namespace does not match its checksum")


def _too_big(max_bytes: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"the saved namespace is over {max_bytes // (1 << 20)} MB")
