"""A session: one live kernel in its own sandbox, for one conversation thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from .. import errors, metrics
from ..errors import SandboxLost
from ..kernel import EventCallback, Kernel, validate_timeout
from ..names import check_text
from ..provisioner import KernelRecord
from ..results import DoneEvent, ErrorInfo, ExecutionResult, ExecutionStatus, OutputEvent
from ..sandbox.base import Sandbox, SandboxSpec
from .context import SessionContext, kernel_limits
from .continuity import Continuity
from .data import DataFolder
from .models import SessionInfo, SessionStatus
from .outputs import OutputExport

log = logging.getLogger(__name__)
DEADLINE_SLACK = 10.0
"""Seconds, on top of two reaper ticks, by which a sandbox outlives its session's deadline:
while an engine runs, its reaper ends the session (and saves its files) before the sandbox
stops itself."""
OnClose = Callable[["Session", SessionStatus], None]


class Session(DataFolder, Continuity):
    """A live kernel in its own sandbox. Executions run one at a time, in arrival order."""

    def __init__(
        self,
        info: SessionInfo,
        deadline: int,
        ctx: SessionContext,
        spec: SandboxSpec,
        on_close: OnClose | None = None,
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
        self._outputs = OutputExport(
            info.id, info.owner, lambda: self.sandbox, ctx.files, ctx.records, ctx.settings
        )
        self._on_close = on_close
        self._input_count = 0
        self._input_bytes = 0
        self._saved: dict[str, Any] | None = None
        self._lost_state = False
        """The next result says state_lost: the session moved to a fresh sandbox at recovery."""

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
            "kernel": record.to_json() if (record := self._kernel_record()) else None,
            "notice": info.notice,
            "running_since": None,
        }
        # Only this session writes its row: most executions change nothing in it (activity is
        # kept in whole seconds), so they skip the write.
        if row == self._saved:
            return
        self._ctx.records.update(self.id, row)
        self._saved = row

    def _kernel_record(self) -> KernelRecord | None:
        return self._kernel.record if self._kernel is not None else None

    def touch(self) -> None:
        """Any activity resets the idle timeout."""
        self.last_active = time.time()
        self._info.last_active_at = int(self.last_active)

    @property
    def idle_expired(self) -> bool:
        return time.time() >= self.last_active + self._info.idle_timeout

    def _sandbox_deadline(self) -> float:
        """When the sandbox stops itself if no engine moves the time again: the session's end
        as known now (a running execution counts as activity), plus the reaper's slack."""
        active = time.time() if self.busy else self.last_active
        end = min(self.deadline, active + self._info.idle_timeout)
        return end + 2 * self._settings.reaper_interval + DEADLINE_SLACK

    async def refresh_deadline(self) -> None:
        """Move the sandbox's own deadline to ``_sandbox_deadline`` (a file write if it moved)."""
        if self._sandbox is not None:
            await self._sandbox.set_deadline(self._sandbox_deadline())

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
        try:
            sandbox, kernel = await self._new_sandbox()
            self._sandbox, self._kernel = sandbox, kernel
            self._info.status = SessionStatus.ACTIVE
            self.touch()
            await self.refresh_deadline()  # a pooled sandbox still has the pool's
            self._save()
            for file_id in file_ids:
                await self.add_file(file_id)
        except (errors.SandboxLost, errors.KernelStartError) as exc:
            # A sandbox that cannot be made (or is gone before it is used): try again later.
            raise errors.SandboxUnavailable(f"could not make a sandbox: {exc}") from exc

    async def _new_sandbox(self) -> tuple[Sandbox, Kernel]:
        """A warm sandbox from the pool if it is still alive, else a cold start."""
        pool = self._ctx.pool
        if pool is not None and pool.spec == self.spec:
            warm = await pool.acquire_live()
            if warm is not None:
                return warm.sandbox, warm.kernel
        # A start is bounded by its own timeout, never cut short by the deadline; ``start``
        # sets the session's deadline once it is done.
        deadline = max(
            self._sandbox_deadline(),
            time.time() + self._settings.kernel_start_timeout + DEADLINE_SLACK,
        )
        sandbox = await self._ctx.backend.create(self.spec, deadline)
        try:
            kernel = Kernel(sandbox, kernel_limits(self._settings, self.spec.memory_limit_mb))
            await kernel.start()
        except BaseException:
            with contextlib.suppress(errors.EngineError):
                await sandbox.destroy()
            raise
        return sandbox, kernel

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
            self._mark_running()
            try:
                result = await kernel.execute(code, seconds, on_event)
            except SandboxLost as exc:
                self._raise_if_closed_under(kernel, exc)  # closed, not lost: never restart it
                result = await self._replace_sandbox(exc)
            except asyncio.CancelledError as exc:
                self._raise_if_closed_under(kernel, exc)
                # The caller gave up: the code must stop before the next execution may start.
                # anyio cancels every await again, so wait through repeated cancellations.
                settling = asyncio.ensure_future(self._settle(kernel))
                while not settling.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(settling)
                raise
            except Exception as exc:
                self._raise_if_closed_under(kernel, exc)
                raise
            else:
                if self._kernel is kernel:
                    await self._outputs.export(result)
                else:  # closed while it ran: what it produced until then, and why it stopped
                    result = self._cut_short(result)
            self._deliver_notice(result)
            metrics.record_execution(result)
            return result
        finally:
            self.touch()
            if self._info.status is SessionStatus.ACTIVE:
                try:
                    self._save()
                except errors.StorageFull as exc:  # the result matters more than last-active
                    log.warning("session %s: not saved: %s", self.id, exc)
            self._lock.release()

    def _mark_running(self) -> None:
        """Stored, so that a later engine process can say this execution was interrupted;
        the ``_save`` at its end clears it."""
        try:
            self._ctx.records.set_running(self.id, time.time())
        except errors.StorageFull as exc:
            log.warning("session %s: not saved: %s", self.id, exc)
        self._saved = None

    def _cut_short(self, result: ExecutionResult) -> ExecutionResult:
        if result.status is not ExecutionStatus.CANCELLED:
            return result  # it had finished: nothing was lost but the file export
        error = ErrorInfo(
            name="SessionClosed",
            value=f"session {self.id} was closed while this execution ran; the output it "
            "produced until then is kept",
        )
        return result.model_copy(update={"error": error})

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

    # --- the end ---

    async def detach(self) -> None:
        """Let go of the session without ending it: its sandbox and kernel keep running for the
        next engine process on this data folder to re-adopt (a graceful stop that keeps)."""
        if self._info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            return
        if self._info.status is SessionStatus.ACTIVE and not self.busy:
            self._save()  # a running execution's mark stays: the next process reports it
        try:
            await self.refresh_deadline()  # the last word on when it stops with no engine
        except (errors.EngineError, OSError) as exc:
            log.warning("session %s: could not write its sandbox's deadline: %s", self.id, exc)
        kernel, self._kernel, self._sandbox = self._kernel, None, None
        self._info.status = SessionStatus.CLOSED  # in this process only; the row stays active
        if kernel is not None:
            await kernel.shutdown()  # closes the channels; the kernel process keeps running

    async def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        """End the session and remove its sandbox. Its thread gets a new session next time."""
        if self._info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            return
        self._info.status = status
        if self._on_close is not None:
            self._on_close(self, status)  # the manager lets go before the first await
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
            self._drop_outputs()

    def _drop_outputs(self) -> None:
        """Outputs live as long as their session, unless kept (docs/files-and-sessions.md)."""
        try:
            self._ctx.files.drop_session_outputs(self.id)
        except errors.EngineError as exc:
            log.warning("session %s: outputs not removed: %s", self.id, exc)
