"""What a session's code produced: images in its display bundles and files in /mnt/data.

One ``OutputExport`` per session owns what is known about its /mnt/data: which files are
unchanged since they were exported or placed there, and under which file object.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .. import errors
from ..config import Settings
from ..files import FileObject, FileStore, Source
from ..results import ExecutionResult, OutputFile
from ..sandbox.base import DATA_MOUNT, UPLOAD_PREFIX, FileEntry, Sandbox
from .models import SessionFile
from .records import SessionRecords

log = logging.getLogger(__name__)
IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}


def is_upload_in_progress(entry: FileEntry) -> bool:
    return posixpath.basename(entry.path).startswith(UPLOAD_PREFIX)


def user_files(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """The entries that are the session's own files: the upload-prefix rule, applied once."""
    return [e for e in entries if not is_upload_in_progress(e)]


@dataclass(frozen=True)
class KnownFile:
    """A file of /mnt/data as last seen, and the file object holding that content, if any."""

    size: int
    mtime_ns: int
    inode: int | None = None
    """None when it is not known (the store keeps size and mtime only)."""
    file_id: str | None = None

    @classmethod
    def of(cls, entry: FileEntry, file_id: str | None = None) -> KnownFile:
        return cls(entry.size, entry.mtime_ns, entry.inode, file_id)

    def matches(self, entry: FileEntry) -> bool:
        """Whether ``entry`` still has the content seen then (same size, mtime and inode)."""
        return (
            self.size == entry.size
            and self.mtime_ns == entry.mtime_ns
            and (self.inode is None or self.inode == entry.inode)
        )


def decode_images(result: ExecutionResult) -> list[tuple[str, str, bytes]]:
    """(filename, mime type, bytes) of every image in the result's display bundles."""
    images = []
    bundles = [*result.display, *([result.result] if result.result else [])]
    for n, bundle in enumerate(bundles, start=1):
        mime = next((m for m in IMAGE_TYPES if m in bundle), None)
        if mime is None:
            continue
        try:
            data = base64.b64decode(bundle[mime], validate=False)
        except (ValueError, TypeError):
            continue
        images.append((f"image-{result.execution_count or 0}-{n}{IMAGE_TYPES[mime]}", mime, data))
    return images


@dataclass(eq=False)
class OutputExport:
    """The /mnt/data state of one session, and turning what its code wrote into file objects."""

    session_id: str
    owner: str
    _sandbox: Callable[[], Sandbox]
    _files: FileStore
    _records: SessionRecords
    _settings: Settings
    known: dict[str, KnownFile] = field(init=False, default_factory=dict)

    def forget(self) -> None:
        """The sandbox was replaced: nothing in the new /mnt/data is known."""
        self.known.clear()

    def restore(self) -> None:
        """Load what an earlier process recorded (sizes and mtimes; no inodes)."""
        self.known = {
            r["path"]: KnownFile(r["size"], r["mtime_ns"], None, r["file_id"])
            for r in self._records.files(self.session_id)
        }

    def remember(self, entry: FileEntry, file_id: str) -> None:
        """``entry`` holds the content of file object ``file_id``."""
        self.known[entry.path] = KnownFile.of(entry, file_id)
        self._records.remember_file(self.session_id, entry, file_id)

    def changed(self, entries: Iterable[FileEntry]) -> list[FileEntry]:
        """The user files that are new or changed since last seen; the rest stay known."""
        changed = []
        current: dict[str, KnownFile] = {}
        for e in user_files(entries):
            known = self.known.get(e.path)
            if known is not None and known.matches(e):
                current[e.path] = known
            else:
                current[e.path] = KnownFile.of(e)
                changed.append(e)
        self.known = current
        return changed

    def listing(self, entries: Iterable[FileEntry]) -> list[SessionFile]:
        """The user files, each with its file object while its content is unchanged."""
        return [
            SessionFile.of(e, k.file_id if (k := self.known.get(e.path)) and k.matches(e) else None)
            for e in user_files(entries)
        ]

    async def export(self, result: ExecutionResult) -> None:
        """Add to ``result.outputs`` its images and the files its code wrote or changed."""
        for name, mime, data in decode_images(result):
            obj = await self._create(data, name, mime_type=mime)
            result.outputs.append(
                OutputFile(
                    type="image", file_id=obj.id, filename=name, mime_type=mime, bytes=obj.bytes
                )
            )
        try:
            entries, truncated = await self._sandbox().list_files(self._settings.max_listed_files)
        except errors.EngineError as exc:
            log.warning("session %s: cannot list /mnt/data: %s", self.session_id, exc)
            return
        if truncated:
            result.dropped["listing"] = 1
        exported = 0
        before = {path: known.file_id for path, known in self.known.items()}
        for entry in self.changed(entries):
            too_big = entry.size > self._files.max_bytes
            if exported >= self._settings.max_output_files or too_big:
                result.dropped["files"] = result.dropped.get("files", 0) + 1
                continue
            try:
                output = await self._export_file(entry, before.get(entry.path))
            except (errors.StorageFull, errors.QuotaExceeded) as exc:
                log.warning(
                    "session %s: output %s not exported: %s", self.session_id, entry.path, exc
                )
                result.dropped["files"] = result.dropped.get("files", 0) + 1
                if isinstance(exc, errors.QuotaExceeded) and result.notice is None:
                    result.notice = f"{entry.path} was not exported: {exc}"
                continue
            if output is not None:
                result.outputs.append(output)
                exported += 1

    async def save_all(self) -> list[str]:
        """Before a pause: export every file changed since last seen, so that file objects hold
        all of /mnt/data. Returns the paths that could not be (too big, or over a quota)."""
        entries, _ = await self._sandbox().list_files(self._settings.max_listed_files)
        before = {path: known.file_id for path, known in self.known.items()}
        missed = []
        for entry in self.changed(entries):
            try:
                output = await self._export_file(entry, before.get(entry.path))
            except (errors.StorageFull, errors.QuotaExceeded):
                output = None
            if output is None:
                missed.append(entry.path)
        return missed

    async def put_back(self) -> list[str]:
        """On resume: write every known file into the new /mnt/data from its file object.
        Returns the paths whose file object is gone."""
        missed = []
        known, self.known = self.known, {}
        for path, file in known.items():
            if file.file_id is None:
                missed.append(path)
                continue
            try:
                await self.place(file.file_id, path)
            except (errors.NotFound, OSError):
                missed.append(path)
        return missed

    async def place(self, file_id: str, path: str) -> FileEntry:
        """Write file object ``file_id`` at /mnt/data/<path>, known as holding its content."""
        with await asyncio.to_thread(self._files.open_blob, file_id) as src:
            entry = await self._sandbox().write_file(path, src, self._files.max_bytes)
        self.remember(entry, file_id)
        return entry

    async def file_object(self, entry: FileEntry) -> str:
        """The id of a file object holding ``entry`` as it is now: the one it was last
        exported as if unchanged since, else a new output of this session."""
        known = self.known.get(entry.path)
        if known is not None and known.file_id is not None and known.matches(entry):
            return known.file_id
        output = await self._export_file(entry, known.file_id if known is not None else None)
        if output is None or output.file_id is None:
            raise errors.PayloadTooLarge(
                f"/mnt/data/{entry.path} is larger than a file object may be, or is gone"
            )
        return output.file_id

    async def _export_file(self, entry: FileEntry, previous: str | None) -> OutputFile | None:
        """Export ``entry``; the output it had before, ``previous``, is replaced: deleted if
        it is this session's own and nobody kept it (an upload or a kept file stays)."""
        if entry.size > self._files.max_bytes:
            return None
        try:
            f = await self._sandbox().open_file(entry.path)
        except errors.EngineError:
            return None  # gone, or swapped for something that is not a regular file
        path = f"{DATA_MOUNT}/{entry.path}"
        name = posixpath.basename(entry.path)
        if previous is not None and not self._files.ends_with(previous, self.session_id):
            previous = None
        with f:
            try:
                obj = await self._create(f, name, path=path, replaces=previous)
            except errors.QuotaExceeded:
                raise
            except errors.LimitExceeded:
                return None
        self.remember(entry, obj.id)
        if previous is not None:
            self._files.drop_output(previous, self.session_id)
        return OutputFile(
            type="file",
            file_id=obj.id,
            filename=name,
            mime_type=obj.mime_type,
            bytes=obj.bytes,
            path=path,
        )

    async def salvage(self) -> None:
        """Export what changed since the last record, from a sandbox an earlier process left.

        The first failure ends it (the caller logs it); what was exported so far stays.
        """
        self.restore()
        sandbox = self._sandbox()
        entries, _ = await sandbox.list_files(self._settings.max_listed_files)
        for entry in self.changed(entries):
            if entry.size > self._files.max_bytes:
                continue
            # Rescued from a sandbox whose engine is gone: kept, as nobody saw them yet.
            with await sandbox.open_file(entry.path) as f:
                await self._create(
                    f, posixpath.basename(entry.path), path=f"{DATA_MOUNT}/{entry.path}", keep=True
                )

    async def _create(
        self,
        data: Source,
        name: str,
        *,
        path: str | None = None,
        mime_type: str | None = None,
        keep: bool = False,
        replaces: str | None = None,
    ) -> FileObject:
        return await self._files.create(
            data,
            name,
            "assistants_output",
            owner=self.owner,
            session_id=self.session_id,
            path=path,
            mime_type=mime_type,
            keep=keep,
            replaces=replaces,
        )
