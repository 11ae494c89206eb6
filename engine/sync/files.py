"""The blocking face of FileStore."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path

from ..files import DeleteHook, FileObject, FileQuota, FileStore, Source
from ..paging import Page
from .portal import Portal


class SyncFiles:
    """File objects (see ``FileStore``); every method blocks."""

    def __init__(self, files: FileStore, portal: Portal) -> None:
        self._files = files
        self._portal = portal

    @property
    def root(self) -> Path:
        return self._files.root

    @property
    def max_bytes(self) -> int:
        return self._files.max_bytes

    @property
    def quota(self) -> FileQuota | None:
        return self._files.quota

    def sweep(self) -> int:
        """Remove temp files and blobs with no row. Returns how many were removed."""
        return self._portal.run_sync(self._files.sweep)

    def blob_path(self, file_id: str) -> Path:
        return self._files.blob_path(file_id)

    def create(
        self,
        data: Source,
        filename: str | None = None,
        purpose: str = "assistants",
        *,
        owner: str = "",
        session_id: str | None = None,
        path: str | None = None,
        mime_type: str | None = None,
        keep: bool = False,
        replaces: str | None = None,
    ) -> FileObject:
        return self._portal.run(
            self._files.create,
            data,
            filename,
            purpose,
            owner=owner,
            session_id=session_id,
            path=path,
            mime_type=mime_type,
            keep=keep,
            replaces=replaces,
        )

    def usage(self, owner: str, *, excluding: str | None = None) -> tuple[int, int]:
        """How many file objects ``owner`` holds, and their bytes."""
        return self._portal.run_sync(self._files.usage, owner, excluding=excluding)

    def keep(self, file_id: str, owner: str | None = None) -> FileObject:
        """Promote an output: it no longer ends with its session (deleted only by the user)."""
        return self._portal.run_sync(self._files.keep, file_id, owner)

    def keep_all(self, file_ids: Iterable[str], owner: str | None = None) -> None:
        self._portal.run_sync(self._files.keep_all, list(file_ids), owner)

    def ends_with(self, file_id: str, session_id: str) -> bool:
        return self._portal.run_sync(self._files.ends_with, file_id, session_id)

    def drop_output(self, file_id: str, session_id: str) -> bool:
        return self._portal.run_sync(self._files.drop_output, file_id, session_id)

    def drop_session_outputs(self, session_id: str) -> int:
        return self._portal.run_sync(self._files.drop_session_outputs, session_id)

    def owners(self, file_ids: Iterable[str]) -> dict[str, str]:
        return self._portal.run_sync(self._files.owners, list(file_ids))

    def retrieve(self, file_id: str, owner: str | None = None) -> FileObject:
        return self._portal.run_sync(self._files.retrieve, file_id, owner)

    def list(
        self,
        owner: str | None = None,
        *,
        purpose: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[FileObject]:
        return self._portal.run_sync(
            self._files.list,
            owner,
            purpose=purpose,
            limit=limit,
            order=order,
            after=after,
            before=before,
        )

    def iter_content(self, file_id: str, owner: str | None = None) -> Generator[bytes, None, None]:
        """The file's bytes, streamed in chunks. Unknown ids raise here, not mid-stream."""
        chunks = self._portal.run_sync(self._files.iter_content, file_id, owner)
        return self._portal.iterate(chunks)

    def content(self, file_id: str, owner: str | None = None) -> bytes:
        """The file's bytes, whole."""
        return self._portal.run(self._files.content, file_id, owner)

    def delete(self, file_id: str, owner: str | None = None) -> None:
        self._portal.run_sync(self._files.delete, file_id, owner)

    def on_delete(self, hook: DeleteHook) -> Callable[[], None]:
        """Run ``hook`` (in the engine's loop thread) after every delete; returns its undo."""
        return self._files.on_delete(hook)
