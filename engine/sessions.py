"""Sessions: one sandbox and kernel per conversation thread, and the manager that owns them."""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import dataclasses
import logging
import posixpath
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, Literal

from pydantic import BaseModel, Field

from . import errors, metrics
from .config import Settings
from .errors import SandboxLost
from .files import FileStore, Source
from .kernel import EventCallback, Kernel, KernelLimits, validate_timeout
from .names import check_filename, check_relative_path, check_text
from .paging import Page, page_query
from .pool import WarmPool
from .results import (
    DoneEvent,
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    OutputEvent,
    OutputFile,
)
from .sandbox.base import DATA_MOUNT, Sandbox, SandboxBackend, SandboxSpec
from .sandbox.hostfs import FileEntry
from .store import Store, dumps

log = logging.getLogger(__name__)
MB = 1024 * 1024
IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}
UPLOAD_PREFIX = ".sandbox-engine-upload-"


class SessionStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"


class SessionInfo(BaseModel):
    id: str
    object: Literal["session"] = "session"
    thread_id: str
    status: SessionStatus
    created_at: int
    last_active_at: int
    expires_at: int
    """When the session ends unless there is activity or an extension: the earlier of its hard
    deadline and ``last_active_at + idle_timeout``."""
    idle_timeout: int
    owner: str = Field(default="", exclude=True)


class SessionFile(BaseModel):
    """A file in a session's /mnt/data."""

    path: str
    filename: str
    bytes: int
    modified_at: int
    file_id: str | None = None
    """The file object it came from or was exported to, while its content is unchanged."""


def sandbox_spec(settings: Settings, image: str, labels: dict[str, str]) -> SandboxSpec:
    return SandboxSpec(
        image=image,
        memory_limit_mb=settings.memory_limit_mb,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        nofile_limit=settings.nofile_limit,
        fsize_limit_mb=settings.fsize_limit_mb,
        tmp_size_mb=settings.tmp_size_mb,
        home_size_mb=settings.home_size_mb,
        data_size_mb=settings.data_size_mb,
        log_max_size=settings.log_max_size,
        runtime=settings.runtime,
        env=dict(settings.sandbox_env),
        labels=labels,
    )


def kernel_limits(settings: Settings, memory_limit_mb: int) -> KernelLimits:
    return KernelLimits(
        start_timeout=settings.kernel_start_timeout,
        interrupt_grace=settings.interrupt_grace,
        output_limit_chars=settings.output_limit_chars,
        max_display_outputs=settings.max_display_outputs,
        max_display_bytes=settings.max_display_bytes,
        memory_limit_mb=memory_limit_mb,
    )


@dataclass
class SessionContext:
    """What every session of one engine shares."""

    backend: SandboxBackend
    spec: SandboxSpec
    settings: Settings
    store: Store
    files: FileStore
    pool: WarmPool | None = None


class Session:
    """A live kernel in its own sandbox. Executions run one at a time, in arrival order."""

    def __init__(
        self, info: SessionInfo, deadline: int, ctx: SessionContext, spec: SandboxSpec
    ) -> None:
        self._info = info
        self.spec = spec
        self.deadline = deadline
        self.last_active = time.time()
        self._ctx = ctx
        self._settings = ctx.settings
        self._sandbox: Sandbox | None = None
        self._kernel: Kernel | None = None
        self._lock = asyncio.Lock()
        self._known: dict[str, tuple[int, int, int, str | None]] = {}
        self._input_count = 0
        self._input_bytes = 0
        self._saved: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<Session {self.id} thread={self.thread_id!r} {self.status}>"

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def thread_id(self) -> str:
        return self._info.thread_id

    @property
    def owner(self) -> str:
        return self._info.owner

    @property
    def status(self) -> SessionStatus:
        return self._info.status

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def wait_idle(self) -> None:
        """Return once every execution queued so far has finished."""
        async with self._lock:
            pass

    @property
    def info(self) -> SessionInfo:
        info = self._info
        expires = min(self.deadline, info.last_active_at + info.idle_timeout)
        return info.model_copy(update={"expires_at": expires})

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise errors.SessionClosed(f"session {self.id} has no sandbox")
        return self._sandbox

    def _save(self) -> None:
        info = self.info
        row = {
            "status": info.status.value,
            "last_active_at": info.last_active_at,
            "expires_at": self.deadline,
            "idle_timeout": info.idle_timeout,
            "sandbox_id": self._sandbox.id if self._sandbox else None,
        }
        # Only this session writes its row: most executions change nothing in it (activity is
        # kept in whole seconds), so they skip the write.
        if row == self._saved:
            return
        self._ctx.store.update("sessions", "id", self.id, **row)
        self._saved = row

    def touch(self) -> None:
        """Any activity resets the idle timeout."""
        self.last_active = time.time()
        self._info.last_active_at = int(self.last_active)

    @property
    def idle_expired(self) -> bool:
        return time.time() >= self.last_active + self._info.idle_timeout

    def keepalive(self) -> SessionInfo:
        self._check_open()
        self.touch()
        self._save()
        return self.info

    def extend(self, seconds: int) -> SessionInfo:
        """Push the hard deadline out by ``seconds`` (and count as activity)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise errors.InvalidRequest("extend takes a positive whole number of seconds")
        self._check_open()
        limit = self._info.created_at + self._settings.max_session_lifetime
        self.deadline = min(max(self.deadline, int(time.time())) + seconds, limit)
        self.touch()
        self._save()
        return self.info

    async def start(self, file_ids: Iterable[str] = ()) -> None:
        pool = self._ctx.pool
        warm = pool.acquire() if pool is not None and pool.spec == self.spec else None
        if warm is not None:
            sandbox, kernel = warm.sandbox, warm.kernel
        else:
            sandbox = await self._ctx.backend.create(self.spec)
            try:
                kernel = Kernel(sandbox, kernel_limits(self._settings, self.spec.memory_limit_mb))
                await kernel.start()
            except BaseException:
                await sandbox.destroy()
                raise
        self._sandbox, self._kernel = sandbox, kernel
        self._info.status = SessionStatus.ACTIVE
        self.touch()
        self._save()
        for file_id in file_ids:
            await self.add_file(file_id)

    def _check_open(self) -> Kernel:
        if self._info.status not in (SessionStatus.ACTIVE,) or self._kernel is None:
            raise errors.SessionClosed(f"session {self.id} is {self._info.status.value}")
        return self._kernel

    # --- executions ---

    async def execute(
        self,
        code: str,
        timeout: float | None = None,
        on_event: EventCallback | None = None,
        *,
        queue_timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; ``on_event`` receives stdout, stderr, display, result and error live.

        Waits its turn behind earlier executions; ``queue_timeout`` bounds that wait.
        """
        if not isinstance(code, str):
            raise errors.InvalidRequest(f"code must be a string, not {type(code).__name__}")
        check_text("code", code)
        seconds = validate_timeout(
            timeout, self._settings.default_timeout, self._settings.max_timeout
        )
        self._check_open()
        try:
            async with asyncio.timeout(queue_timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise errors.SessionBusy(
                f"session {self.id} is still running an earlier execution"
            ) from None
        try:
            kernel = self._check_open()
            self.touch()
            try:
                result = await kernel.execute(code, seconds, on_event)
            except SandboxLost as exc:
                self._raise_if_closed_under(kernel, exc)  # closed, not lost: never restart it
                result = await self._replace_sandbox(exc)
            except asyncio.CancelledError as exc:
                self._raise_if_closed_under(kernel, exc)
                # The caller gave up: the code must stop before the next execution may start.
                await asyncio.shield(self._settle(kernel))
                raise
            except Exception as exc:
                self._raise_if_closed_under(kernel, exc)
                raise
            else:
                await self._export_outputs(result)
            _record(result)
            return result
        finally:
            self.touch()
            if self._info.status is SessionStatus.ACTIVE:
                try:
                    self._save()
                except errors.StorageFull as exc:  # the result matters more than last-active
                    log.warning("session %s: not saved: %s", self.id, exc)
            self._lock.release()

    async def _settle(self, kernel: Kernel) -> None:
        """Interrupt, then wait for the kernel to be idle (an empty cell queues behind the
        interrupted one; if that one ignores the interrupt, the timeout ladder restarts it)."""
        with contextlib.suppress(Exception):
            await kernel.interrupt()
            await kernel.execute("", self._settings.interrupt_grace)

    def _raise_if_closed_under(self, kernel: Kernel, exc: BaseException) -> None:
        """Closing a session tears its kernel's channels down under a running execution; that
        surfaces as whatever the channel raised (often a CancelledError). Say what happened."""
        task = asyncio.current_task()
        if self._kernel is kernel or (task is not None and task.cancelling()):
            return
        raise errors.SessionClosed(
            f"session {self.id} was closed while this execution ran"
        ) from exc

    async def stream(
        self, code: str, timeout: float | None = None
    ) -> AsyncGenerator[OutputEvent | DoneEvent, None]:
        """Yield output events while ``code`` runs, then one DoneEvent with the result.

        Closing the iterator early interrupts the execution.
        """
        events: asyncio.Queue[OutputEvent] = asyncio.Queue()
        task = asyncio.ensure_future(self.execute(code, timeout, events.put_nowait))
        try:
            while not task.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            yield DoneEvent(result=task.result())
        finally:
            if not task.done():
                await self.interrupt()
                await asyncio.wait({task}, timeout=self._settings.interrupt_grace + 5)

    async def _replace_sandbox(self, cause: SandboxLost | None = None) -> ExecutionResult:
        """The container vanished under us: start over in a new one."""
        old = self._sandbox
        seen = self._kernel.oom_kills_seen if self._kernel is not None else 0
        self._sandbox = self._kernel = None
        self._known.clear()
        # Under gVisor the OOM killer ends the whole sandbox, not just the kernel.
        oom = cause is not None and cause.out_of_memory
        if old is not None:
            with contextlib.suppress(errors.EngineError):
                oom = oom or await old.oom_kills() > seen
            await old.destroy()
        why = (
            f"ran out of memory (its limit is {self.spec.memory_limit_mb} MB)"
            if oom
            else "stopped unexpectedly"
        )
        await self.start()
        return ExecutionResult(
            status=ExecutionStatus.CRASHED,
            error=ErrorInfo(
                name="SandboxLost",
                value=f"the sandbox container {why}; a new one was started and "
                "everything in it (variables, files in /mnt/data) was lost. Files already "
                "exported as file objects are kept.",
            ),
            state_lost=True,
        )

    async def interrupt(self) -> None:
        await self._check_open().interrupt()

    async def restart(self) -> None:
        """A fresh kernel: variables go, files in /mnt/data stay."""
        self._check_open()
        async with self._lock:
            kernel = self._check_open()
            self.touch()
            try:
                await kernel.restart()
            except SandboxLost as exc:
                self._raise_if_closed_under(kernel, exc)
                await self._replace_sandbox(exc)

    # --- outputs ---

    async def _export_outputs(self, result: ExecutionResult) -> None:
        bundles = [*result.display, *([result.result] if result.result else [])]
        for n, bundle in enumerate(bundles, start=1):
            mime = next((m for m in IMAGE_TYPES if m in bundle), None)
            if mime is None:
                continue
            try:
                data = base64.b64decode(bundle[mime], validate=False)
            except (ValueError, TypeError):
                continue
            name = f"image-{result.execution_count or 0}-{n}{IMAGE_TYPES[mime]}"
            obj = await self._ctx.files.create(
                data,
                name,
                "assistants_output",
                owner=self.owner,
                session_id=self.id,
                mime_type=mime,
            )
            result.outputs.append(
                OutputFile(
                    type="image",
                    file_id=obj.id,
                    filename=name,
                    mime_type=mime,
                    bytes=obj.bytes,
                )
            )
        try:
            entries, truncated = await self.sandbox.list_files(self._settings.max_listed_files)
        except errors.EngineError as exc:
            log.warning("session %s: cannot list /mnt/data: %s", self.id, exc)
            return
        if truncated:
            result.dropped["listing"] = 1
        exported = 0
        for entry in self._changed(entries):
            too_big = entry.size > self._ctx.files.max_bytes
            if exported >= self._settings.max_output_files or too_big:
                result.dropped["files"] = result.dropped.get("files", 0) + 1
                continue
            try:
                output = await self._export_file(entry)
            except errors.StorageFull as exc:
                log.warning("session %s: output %s not exported: %s", self.id, entry.path, exc)
                result.dropped["files"] = result.dropped.get("files", 0) + 1
                continue
            if output is not None:
                result.outputs.append(output)
                exported += 1

    def _changed(self, entries: list[FileEntry]) -> list[FileEntry]:
        changed = []
        current: dict[str, tuple[int, int, int, str | None]] = {}
        for e in entries:
            if posixpath.basename(e.path).startswith(UPLOAD_PREFIX):
                continue
            known = self._known.get(e.path)
            if known is not None and known[:3] == (e.size, e.mtime_ns, e.inode):
                current[e.path] = known
            else:
                current[e.path] = (e.size, e.mtime_ns, e.inode, None)
                changed.append(e)
        self._known = current
        return changed

    async def _export_file(self, entry: FileEntry) -> OutputFile | None:
        if entry.size > self._ctx.files.max_bytes:
            return None
        try:
            f = await self.sandbox.open_file(entry.path)
        except errors.EngineError:
            return None  # gone, or swapped for something that is not a regular file
        path = f"{DATA_MOUNT}/{entry.path}"
        name = posixpath.basename(entry.path)
        with f:
            try:
                obj = await self._ctx.files.create(
                    f,
                    name,
                    "assistants_output",
                    owner=self.owner,
                    session_id=self.id,
                    path=path,
                )
            except errors.LimitExceeded:
                return None
        self._remember(entry, obj.id)
        return OutputFile(
            type="file",
            file_id=obj.id,
            filename=name,
            mime_type=obj.mime_type,
            bytes=obj.bytes,
            path=path,
        )

    def _remember(self, entry: FileEntry, file_id: str) -> None:
        self._known[entry.path] = (entry.size, entry.mtime_ns, entry.inode, file_id)
        self._ctx.store.insert(
            "session_files",
            {
                "session_id": self.id,
                "path": entry.path,
                "file_id": file_id,
                "size": entry.size,
                "mtime_ns": entry.mtime_ns,
            },
            replace=True,
        )

    # --- inputs and the files in /mnt/data ---

    async def upload(self, name: str, data: Source) -> SessionFile:
        """Place raw bytes at /mnt/data/<name>; they also become a file object."""
        name = check_filename(name)
        self._check_open()
        obj = await self._ctx.files.create(data, name, "assistants", owner=self.owner)
        return await self.add_file(obj.id, name)

    async def add_file(self, file_id: str, name: str | None = None) -> SessionFile:
        """Place an existing file object at /mnt/data/<name> (its own filename by default)."""
        self._check_open()
        obj = self._ctx.files.retrieve(file_id, self.owner)
        name = check_filename(name if name is not None else obj.filename)
        if self._input_count >= self._settings.max_session_files:
            raise errors.LimitExceeded(
                f"a session holds at most {self._settings.max_session_files} uploaded files"
            )
        if self._input_bytes + obj.bytes > self._settings.data_size_mb * MB:
            raise errors.PayloadTooLarge(
                f"the files placed in this session would exceed {self._settings.data_size_mb} MB"
            )
        src = await asyncio.to_thread(open, self._ctx.files.blob_path(obj.id), "rb")
        with src:
            entry = await self.sandbox.write_file(name, src, self._ctx.files.max_bytes)
        self._input_count += 1
        self._input_bytes += obj.bytes
        self._remember(entry, obj.id)
        self.touch()
        return _session_file(entry, obj.id)

    async def list_files(self) -> list[SessionFile]:
        self._check_open()
        entries, _ = await self.sandbox.list_files(self._settings.max_listed_files)
        return [
            _session_file(
                e,
                k[3]
                if (k := self._known.get(e.path)) and k[:3] == (e.size, e.mtime_ns, e.inode)
                else None,
            )
            for e in entries
            if not posixpath.basename(e.path).startswith(UPLOAD_PREFIX)
        ]

    async def open_file(self, path: str) -> IO[bytes]:
        """Open /mnt/data/<path> for reading; symlinks and special files are refused."""
        check_relative_path(path)
        self._check_open()
        self.touch()
        return await self.sandbox.open_file(path)

    async def read_file(self, path: str) -> bytes:
        with await self.open_file(path) as f:
            return await asyncio.to_thread(f.read)

    async def remove_file(self, path: str) -> None:
        check_relative_path(path)
        self._check_open()
        await self.sandbox.remove_file(path)

    # --- the end ---

    async def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        if self._info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            return
        self._info.status = status
        kernel, sandbox = self._kernel, self._sandbox
        self._kernel = None
        try:
            if kernel is not None:
                await kernel.shutdown()
            if sandbox is not None:
                await sandbox.destroy()
        finally:
            self._sandbox = None
            self._save()


def _record(result: ExecutionResult) -> None:
    metrics.EXECUTIONS.labels(result.status.value).inc()
    metrics.EXECUTION_SECONDS.observe(result.duration_ms / 1000)
    if result.status is ExecutionStatus.TIMEOUT:
        metrics.TIMEOUTS.labels("restart" if result.state_lost else "interrupt").inc()
    if result.error is not None and result.error.name == "OutOfMemory":
        metrics.OOM_KILLS.inc()


def _session_file(entry: FileEntry, file_id: str | None) -> SessionFile:
    return SessionFile(
        path=f"{DATA_MOUNT}/{entry.path}",
        filename=posixpath.basename(entry.path),
        bytes=entry.size,
        modified_at=entry.mtime_ns // 1_000_000_000,
        file_id=file_id,
    )


class SessionManager:
    """Owns every live session: one per (owner, thread id), with lifetimes and limits."""

    def __init__(self, ctx: SessionContext, labels: dict[str, str]) -> None:
        self._ctx = ctx
        self._settings = ctx.settings
        self._labels = labels
        self._live: dict[str, Session] = {}
        self._by_thread: dict[tuple[str, str], Session] = {}
        self._creating: dict[tuple[str, str], asyncio.Task[Session]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._live)

    async def start(self) -> None:
        await self.recover()
        self._reaper = asyncio.create_task(self._reap_forever(), name="session-reaper")

    async def recover(self) -> int:
        """After a restart: save what earlier sandboxes wrote, then remove them."""
        leftovers = await self._ctx.backend.find_leftovers(self._labels)
        for sandbox in leftovers:
            row = self._ctx.store.one("SELECT * FROM sessions WHERE sandbox_id = ?", (sandbox.id,))
            if row is not None:
                try:
                    await self._salvage(row, sandbox)
                except Exception as exc:  # salvage is best effort; removal is not
                    log.warning("could not salvage files of session %s: %s", row["id"], exc)
            await sandbox.destroy()
        self._ctx.store.execute(
            "UPDATE sessions SET status = ? WHERE status IN (?, ?)",
            (SessionStatus.EXPIRED.value, SessionStatus.ACTIVE.value, SessionStatus.STARTING.value),
        )
        return len(leftovers)

    async def _salvage(self, row: dict[str, Any], sandbox: Sandbox) -> None:
        known = {
            r["path"]: (r["size"], r["mtime_ns"])
            for r in self._ctx.store.all(
                "SELECT * FROM session_files WHERE session_id = ?", (row["id"],)
            )
        }
        entries, _ = await sandbox.list_files(self._settings.max_listed_files)
        for entry in entries:
            if known.get(entry.path) == (entry.size, entry.mtime_ns):
                continue
            if posixpath.basename(entry.path).startswith(UPLOAD_PREFIX):
                continue
            if entry.size > self._ctx.files.max_bytes:
                continue
            with await sandbox.open_file(entry.path) as f:
                await self._ctx.files.create(
                    f,
                    posixpath.basename(entry.path),
                    "assistants_output",
                    owner=row["owner"],
                    session_id=row["id"],
                    path=f"{DATA_MOUNT}/{entry.path}",
                )

    async def get_or_create(
        self,
        thread_id: str | None = None,
        *,
        owner: str = "",
        file_ids: Iterable[str] = (),
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
    ) -> Session:
        if self._closed:
            raise errors.EngineError("the engine is closed")
        if thread_id is None:
            thread_id = f"thread_{uuid.uuid4().hex}"
        if not isinstance(thread_id, str) or not thread_id or len(thread_id) > 256:
            raise errors.InvalidRequest("thread_id must be a non-empty string (<= 256 chars)")
        check_text("thread_id", thread_id)
        file_ids = list(file_ids)
        if not all(isinstance(f, str) for f in file_ids):
            raise errors.InvalidRequest("file_ids must be a list of strings")
        for f in file_ids:
            self._ctx.files.retrieve(f, owner)
        idle = _check_seconds(
            "idle_timeout",
            idle_timeout,
            self._settings.idle_timeout,
            self._settings.max_session_lifetime,
        )
        life = _check_seconds(
            "ttl", ttl, self._settings.session_ttl, self._settings.max_session_lifetime
        )
        memory = _check_number(
            "memory_limit_mb",
            memory_limit_mb,
            self._settings.memory_limit_mb,
            64,
            self._settings.max_memory_limit_mb,
        )
        spec = dataclasses.replace(self._ctx.spec, memory_limit_mb=memory)
        key = (owner, thread_id)
        if (existing := self._by_thread.get(key)) is not None:
            for f in file_ids:
                await existing.add_file(f)
            return existing
        task = self._creating.get(key)
        if task is None:
            self._check_limits(owner)
            task = asyncio.ensure_future(self._create(key, file_ids, idle, life, spec))
            self._creating[key] = task
            task.add_done_callback(lambda _: self._creating.pop(key, None))
        return await asyncio.shield(task)

    def _check_limits(self, owner: str) -> None:
        live = len(self._live) + len(self._creating)
        if live >= self._settings.max_sessions:
            raise errors.LimitExceeded(f"the engine already runs {live} sessions, its limit")
        mine = sum(1 for s in self._live.values() if s.owner == owner)
        mine += sum(1 for o, _ in self._creating if o == owner)
        if mine >= self._settings.max_sessions_per_owner:
            raise errors.LimitExceeded(f"this owner already has {mine} live sessions, its limit")

    async def _create(
        self,
        key: tuple[str, str],
        file_ids: list[str],
        idle: int,
        life: int,
        spec: SandboxSpec,
    ) -> Session:
        owner, thread_id = key
        now = int(time.time())
        info = SessionInfo(
            id=f"sess_{uuid.uuid4().hex}",
            thread_id=thread_id,
            status=SessionStatus.STARTING,
            created_at=now,
            last_active_at=now,
            expires_at=now + min(life, idle),
            idle_timeout=idle,
            owner=owner,
        )
        self._ctx.store.insert(
            "sessions",
            {
                **info.model_dump(mode="json", exclude={"object"}),
                "owner": owner,
                "expires_at": now + life,
                "data": dumps({}),
            },
        )
        session = Session(info, now + life, self._ctx, spec)
        try:
            await session.start(file_ids)
        except BaseException:
            await session.close(SessionStatus.CLOSED)
            raise
        self._live[session.id] = session
        self._by_thread[key] = session
        metrics.SESSIONS_CREATED.inc()
        metrics.SESSIONS_LIVE.set(len(self._live))
        return session

    def get(self, session_id: str, owner: str | None = None) -> Session:
        """A live session. Closed or expired ones raise SessionClosed; unknown ones NotFound."""
        if not isinstance(session_id, str):
            raise errors.InvalidRequest("session id must be a string")
        session = self._live.get(session_id)
        if session is not None and (owner is None or session.owner == owner):
            return session
        info = self.info(session_id, owner)
        raise errors.SessionClosed(f"session {session_id} is {info.status.value}")

    def by_thread(self, thread_id: str, owner: str = "") -> Session | None:
        """The live session of a thread, if there is one."""
        return self._by_thread.get((owner, thread_id))

    def info(self, session_id: str, owner: str | None = None) -> SessionInfo:
        session = self._live.get(session_id)
        if session is not None and (owner is None or session.owner == owner):
            return session.info
        row = self._ctx.store.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if row is None or (owner is not None and row["owner"] != owner):
            raise errors.SessionNotFound(f"no session with id {session_id!r}")
        return _info_from_row(row)

    def list(
        self,
        owner: str | None = None,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        live_only: bool = False,
    ) -> Page[SessionInfo]:
        filters: dict[str, Any] = {} if owner is None else {"owner": owner}
        if live_only:
            filters["status"] = SessionStatus.ACTIVE.value
        rows, has_more = page_query(
            self._ctx.store,
            "sessions",
            filters,
            limit=limit,
            order=order,
            after=after,
            before=before,
        )
        infos = [
            self._live[r["id"]].info if r["id"] in self._live else _info_from_row(r) for r in rows
        ]
        return Page[SessionInfo].of(infos, has_more)

    def live(self) -> builtins.list[Session]:
        return list(self._live.values())

    async def close(
        self,
        session_id: str,
        owner: str | None = None,
        status: SessionStatus = SessionStatus.CLOSED,
    ) -> None:
        session = self._live.get(session_id)
        if session is None or (owner is not None and session.owner != owner):
            self.info(session_id, owner)  # NotFound if it never existed
            return
        self._live.pop(session.id, None)
        self._by_thread.pop((session.owner, session.thread_id), None)
        metrics.SESSIONS_LIVE.set(len(self._live))
        metrics.SESSIONS_ENDED.labels(status.value).inc()
        await session.close(status)

    async def reap(self) -> int:
        """End every session whose time is up. Returns how many ended."""
        now = time.time()
        ended = 0
        for session in list(self._live.values()):
            if now >= session.deadline or (session.idle_expired and not session.busy):
                await self.close(session.id, status=SessionStatus.EXPIRED)
                ended += 1
        return ended

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reaper_interval)
            try:
                await self.reap()
                if self._ctx.pool is not None:
                    self._ctx.pool.tick()
            except Exception:  # the reaper must outlive any one failure
                log.exception("session reaper failed")

    async def close_all(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._creating.values()):
            with contextlib.suppress(Exception):  # a failed start cleaned up after itself
                await task
        sessions = list(self._live.values())
        self._live.clear()
        self._by_thread.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def _info_from_row(row: dict[str, Any]) -> SessionInfo:
    expires = min(row["expires_at"], row["last_active_at"] + row["idle_timeout"])
    return SessionInfo.model_validate({**row, "expires_at": expires})


def _check_seconds(name: str, value: object, default: int, maximum: int) -> int:
    return _check_number(name, value, default, 1, maximum)


def _check_number(name: str, value: object, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise errors.InvalidRequest(f"{name} must be a whole number from {minimum} to {maximum}")
    return value
