"""Sessions: one sandbox and kernel per conversation thread, and the manager that owns them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from enum import StrEnum

from . import errors
from .config import Settings
from .kernel import EventCallback, Kernel, KernelLimits, SandboxLost, validate_timeout
from .results import DoneEvent, ErrorInfo, ExecutionResult, ExecutionStatus, OutputEvent
from .sandbox.base import Sandbox, SandboxBackend, SandboxSpec


class SessionStatus(StrEnum):
    STARTING = "starting"
    READY = "ready"
    CLOSED = "closed"


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


def kernel_limits(settings: Settings) -> KernelLimits:
    return KernelLimits(
        start_timeout=settings.kernel_start_timeout,
        interrupt_grace=settings.interrupt_grace,
        output_limit_chars=settings.output_limit_chars,
        max_display_outputs=settings.max_display_outputs,
        memory_limit_mb=settings.memory_limit_mb,
    )


class Session:
    """A live kernel in its own sandbox. Executions run one at a time, in arrival order."""

    def __init__(
        self,
        thread_id: str,
        backend: SandboxBackend,
        spec: SandboxSpec,
        settings: Settings,
    ) -> None:
        self.id = f"sess_{uuid.uuid4().hex}"
        self.thread_id = thread_id
        self.created_at = int(time.time())
        self.last_active_at = self.created_at
        self.status = SessionStatus.STARTING
        self._backend = backend
        self._spec = spec
        self._settings = settings
        self._sandbox: Sandbox | None = None
        self._kernel: Kernel | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Session {self.id} thread={self.thread_id!r} {self.status}>"

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise errors.SessionClosed(f"session {self.id} has no sandbox")
        return self._sandbox

    async def start(self) -> None:
        sandbox = await self._backend.create(self._spec)
        try:
            kernel = Kernel(sandbox, kernel_limits(self._settings))
            await kernel.start()
        except BaseException:
            await sandbox.destroy()
            raise
        self._sandbox, self._kernel = sandbox, kernel
        self.status = SessionStatus.READY

    def _check_open(self) -> Kernel:
        if self.status is SessionStatus.CLOSED or self._kernel is None:
            raise errors.SessionClosed(f"session {self.id} is closed")
        return self._kernel

    async def execute(
        self,
        code: str,
        timeout: float | None = None,
        on_event: EventCallback | None = None,
    ) -> ExecutionResult:
        """Run ``code``; ``on_event`` receives stdout, stderr, display, result and error live."""
        if not isinstance(code, str):
            raise errors.InvalidRequest(f"code must be a string, not {type(code).__name__}")
        seconds = validate_timeout(
            timeout, self._settings.default_timeout, self._settings.max_timeout
        )
        self._check_open()
        async with self._lock:
            kernel = self._check_open()
            self.last_active_at = int(time.time())
            try:
                return await kernel.execute(code, seconds, on_event)
            except SandboxLost:
                return await self._replace_sandbox()
            finally:
                self.last_active_at = int(time.time())

    async def stream(
        self, code: str, timeout: float | None = None
    ) -> AsyncIterator[OutputEvent | DoneEvent]:
        """Yield output events while ``code`` runs, then one DoneEvent with the result."""
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
                task.cancel()
                await self.interrupt()

    async def _replace_sandbox(self) -> ExecutionResult:
        """The container vanished under us: start over in a new one."""
        old = self._sandbox
        self._sandbox = self._kernel = None
        if old is not None:
            await old.destroy()
        await self.start()
        return ExecutionResult(
            status=ExecutionStatus.CRASHED,
            error=ErrorInfo(
                name="SandboxLost",
                value="the sandbox container stopped unexpectedly; a new one was started and "
                "everything in it (variables, files in /mnt/data) was lost",
            ),
            state_lost=True,
        )

    async def interrupt(self) -> None:
        await self._check_open().interrupt()

    async def restart(self) -> None:
        """A fresh kernel: variables go, files in /mnt/data stay."""
        kernel = self._check_open()
        async with self._lock:
            try:
                await kernel.restart()
            except SandboxLost:
                await self._replace_sandbox()

    async def close(self) -> None:
        if self.status is SessionStatus.CLOSED:
            return
        self.status = SessionStatus.CLOSED
        kernel, sandbox = self._kernel, self._sandbox
        self._kernel = self._sandbox = None
        if kernel is not None:
            await kernel.shutdown()
        if sandbox is not None:
            await sandbox.destroy()


class SessionManager:
    """Owns every live session; one per thread id."""

    def __init__(
        self, backend: SandboxBackend, settings: Settings, spec: SandboxSpec
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._spec = spec
        self._by_id: dict[str, Session] = {}
        self._by_thread: dict[str, Session] = {}
        self._creating: dict[str, asyncio.Task[Session]] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._by_id)

    def list(self) -> list[Session]:
        return list(self._by_id.values())

    def get(self, session_id: str) -> Session:
        if not isinstance(session_id, str):
            raise errors.InvalidRequest("session id must be a string")
        try:
            return self._by_id[session_id]
        except KeyError:
            raise errors.SessionNotFound(f"no session with id {session_id!r}") from None

    async def get_or_create(self, thread_id: str | None = None) -> Session:
        if self._closed:
            raise errors.EngineError("the engine is closed")
        if thread_id is None:
            thread_id = f"thread_{uuid.uuid4().hex}"
        if not isinstance(thread_id, str) or not thread_id:
            raise errors.InvalidRequest("thread_id must be a non-empty string")
        if (existing := self._by_thread.get(thread_id)) is not None:
            return existing
        task = self._creating.get(thread_id)
        if task is None:
            task = asyncio.ensure_future(self._create(thread_id))
            self._creating[thread_id] = task
            task.add_done_callback(lambda _: self._creating.pop(thread_id, None))
        return await asyncio.shield(task)

    async def _create(self, thread_id: str) -> Session:
        session = Session(thread_id, self._backend, self._spec, self._settings)
        await session.start()
        self._by_id[session.id] = session
        self._by_thread[thread_id] = session
        return session

    async def close(self, session_id: str) -> None:
        session = self.get(session_id)
        self._by_id.pop(session.id, None)
        self._by_thread.pop(session.thread_id, None)
        await session.close()

    async def close_all(self) -> None:
        self._closed = True
        for task in list(self._creating.values()):
            try:
                await task
            except Exception:  # a failed start already cleaned up after itself
                pass
        sessions = list(self._by_id.values())
        self._by_id.clear()
        self._by_thread.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
