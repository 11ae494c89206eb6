"""The blocking face of FileStore."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import BinaryIO

from ..blobs import BlobStore
from ..delegation import through
from ..files import DeleteHook, FileQuota, FileStore
from .twin import Twin, blocking, on_loop


class SyncFiles(Twin[FileStore]):
    """File objects (see ``FileStore``); every method blocks."""

    root: through[Path] = through("_face.root")
    max_bytes: through[int] = through("_face.max_bytes")
    quota: through[FileQuota | None] = through("_face.quota")
    blobs: through[BlobStore] = through("_face.blobs")
    sweep = on_loop(FileStore.sweep)
    create = blocking(FileStore.create)
    usage = on_loop(FileStore.usage)
    keep = on_loop(FileStore.keep)
    ends_with = on_loop(FileStore.ends_with)
    drop_output = on_loop(FileStore.drop_output)
    drop_session_outputs = on_loop(FileStore.drop_session_outputs)
    retrieve = on_loop(FileStore.retrieve)
    list = on_loop(FileStore.list)
    content = blocking(FileStore.content)
    delete = on_loop(FileStore.delete)

    def open_blob(self, file_id: str, owner: str | None = None) -> BinaryIO:
        return self._face.open_blob(file_id, owner)

    def keep_all(self, file_ids: Iterable[str], owner: str | None = None) -> None:
        self._portal.run_sync(self._face.keep_all, list(file_ids), owner)

    def owners(self, file_ids: Iterable[str]) -> dict[str, str]:
        return self._portal.run_sync(self._face.owners, list(file_ids))

    def iter_content(self, file_id: str, owner: str | None = None) -> Generator[bytes, None, None]:
        """The file's bytes, streamed in chunks. Unknown ids raise here, not mid-stream."""
        chunks = self._portal.run_sync(self._face.iter_content, file_id, owner)
        return self._portal.iterate(chunks)

    def on_delete(self, hook: DeleteHook) -> Callable[[], None]:
        """Run ``hook`` (in the engine's loop thread) after every delete; returns its undo."""
        return self._face.on_delete(hook)
