"""The files in one session's /mnt/data: inputs placed within the session's quotas, listing,
reading and removal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

from .. import errors
from ..config import MB
from ..files import FileObject, Source
from ..names import check_filename, check_relative_path
from ..sandbox.base import Sandbox
from .context import SessionContext
from .models import SessionFile
from .outputs import OutputExport, user_files
from .placement import Placement


@dataclass(eq=False)
class DataFolder:
    """One session's /mnt/data, and the count and size of the files placed in it."""

    _session_id: str
    _owner: str
    _ctx: SessionContext
    _placement: Placement
    _outputs: OutputExport
    _check_open: Callable[[], object]
    _touch: Callable[[], None]
    _input_count: int = field(init=False, default=0)
    _input_bytes: int = field(init=False, default=0)

    def _sandbox(self) -> Sandbox:
        return self._placement.live_sandbox()

    async def upload(self, name: str, data: Source) -> SessionFile:
        """Place raw bytes at /mnt/data/<name>; they also become a file object."""
        name = check_filename(name)
        self._check_open()
        obj = await self._ctx.files.create(data, name, "assistants", owner=self._owner)
        return await self.add_file(obj.id, name)

    async def add_file(
        self, file_id: str, name: str | None = None, *, path: str | None = None
    ) -> SessionFile:
        """Place an existing file object at /mnt/data/<name> (its own filename by default), or
        at ``path``, a path below /mnt/data whose folders are made as needed."""
        self._check_open()
        obj = self._ctx.files.retrieve(file_id, self._owner)
        if path is not None:
            name = "/".join(check_relative_path(path))
        else:
            name = check_filename(name if name is not None else obj.filename)
        if self._input_count >= self._ctx.settings.max_session_files:
            raise errors.LimitExceeded(
                f"a session holds at most {self._ctx.settings.max_session_files} uploaded files"
            )
        data_mb = self._ctx.settings.data_size_mb
        if self._input_bytes + obj.bytes > data_mb * MB:
            raise errors.PayloadTooLarge(
                f"the files placed in this session would exceed {data_mb} MB"
            )
        entry = await self._outputs.place(obj.id, name)
        self._input_count += 1
        self._input_bytes += obj.bytes
        self._touch()
        return SessionFile.of(entry, obj.id)

    def keep_output(self, file_id: str) -> FileObject:
        """Promote an output of this session: it outlives the session (until deleted)."""
        obj = self._ctx.files.retrieve(file_id, self._owner)
        if obj.session_id != self._session_id:
            raise errors.FileNotFound(f"no output {file_id!r} of session {self._session_id}")
        return self._ctx.files.keep(file_id, self._owner)

    def keep_outputs(self, file_ids: Iterable[str]) -> None:
        """Promote those of ``file_ids`` that are this tenant's (what a message cites)."""
        self._ctx.files.keep_all(file_ids, self._owner)

    async def list_files(self) -> list[SessionFile]:
        self._check_open()
        entries, _ = await self._sandbox().list_files(self._ctx.settings.max_listed_files)
        return self._outputs.listing(entries)

    async def open_file(self, path: str) -> IO[bytes]:
        """Open /mnt/data/<path> for reading; symlinks and special files are refused."""
        check_relative_path(path)
        self._check_open()
        self._touch()
        return await self._sandbox().open_file(path)

    async def file_object(self, path: str) -> str:
        """The id of a file object holding /mnt/data/<path> as it is now (``OutputExport``)."""
        name = "/".join(check_relative_path(path))
        self._check_open()
        self._touch()
        entries, _ = await self._sandbox().list_files(self._ctx.settings.max_listed_files)
        entry = next((e for e in user_files(entries) if e.path == name), None)
        if entry is None:
            raise errors.FileNotFound(f"no file {name!r} in /mnt/data")
        return await self._outputs.file_object(entry)

    async def read_file(self, path: str) -> bytes:
        with await self.open_file(path) as f:
            return await asyncio.to_thread(f.read)

    async def remove_file(self, path: str) -> None:
        check_relative_path(path)
        self._check_open()
        await self._sandbox().remove_file(path)
