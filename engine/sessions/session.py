"""A session: one live kernel in its own sandbox, for one conversation thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from typing import IO, Any, Protocol

from .. import errors, metrics
from ..errors import SandboxLost
from ..files import FileObject, Source
from ..kernel import EventCallback, Kernel, validate_timeout
from ..names import check_text
from ..provisioner import KernelRecord
from ..results import DoneEvent, ErrorInfo, ExecutionResult, ExecutionStatus, OutputEvent
from ..sandbox.base import Sandbox, SandboxSpec
from .context import SessionContext
from .data import DataFolder
from .models import SessionFile, SessionInfo, SessionStatus
from .notices import Notices
from .outputs import OutputExport
from .pausing import Pausing
from .placement import Placement
from .snapshots import SnapshotMeta

log = logging.getLogger(__name__)
DEADLINE_SLACK = 10.0
"""Seconds, on top of two reaper ticks, by which a sandbox outlives its session's deadline:
while an engine runs, its reaper ends the session (and saves its files) before the sandbox
stops itself."""


class Roster(Protocol):
    """Who keeps the list of sessions (the manager), told of each move before its first await."""

    def ended(self, session: Session, status: SessionStatus) -> None:
        """The session is closing: its thread gets a new one."""

    def paused(self, session: Session) -> None:
        """The session no longer holds a sandbox."""

    def resuming(self, session: Session) -> None:
        """The session is about to hold a sandbox again; raise if limits forbid it."""


class Session:
    """A live kernel in its own sandbox. Executions run one at a time, in arrival order.

    Its parts: ``Placement`` (the sandbox and kernel it runs in), ``DataFolder`` (/mnt/data),
    ``OutputExport`` (what its code wrote, as file objects) and ``Notices`` (what the next
    result says happened in between). What the engine alone does to a session (re-adoption,
    starting over, keeping it across a stop) is ``SessionControl``'s.
    """

    def __init__(
        self,
        info: SessionInfo,
        deadline: int,
        ctx: SessionContext,
        spec: SandboxSpec,
        roster: Roster | None = None,
    ) -> None:
        self._info = info
        self.spec = spec
        self.deadline = deadline
        self.last_active = time.time()
        self._ctx = ctx
        self._settings = ctx.settings
        self._lock = asyncio.Lock()
        self._roster = roster
        self._saved: dict[str, Any] | None = None
        self._paused_at: int | None = None
        self._snapshot: SnapshotMeta | None = None
        self._placement = Placement(info.id, ctx, spec)
        self._outputs = OutputExport(
            info.id, info.owner, self._placement.live_sandbox, ctx.files, ctx.records, ctx.settings
        )
        self._notices = Notices(info)
        self._data = DataFolder(
            info.id, info.owner, ctx, self._placement, self._outputs, self._check_open, self.touch
        )
        self._pausing = Pausing(
            info.id, info.owner, ctx, self._placement, self._outputs, self._notices
        )

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
    def paused_until(self) -> int | None:
        """While paused: when it stops being kept."""
        if self._paused_at is None:
            return None
        return min(self.deadline, self._paused_at + self._settings.paused_ttl)

    @property
    def info(self) -> SessionInfo:
        info = self._info
        expires = self.paused_until if self._info.status is SessionStatus.PAUSED else None
        if expires is None:
            expires = min(self.deadline, info.last_active_at + info.idle_timeout)
        return info.model_copy(update={"expires_at": expires})

    @property
    def sandbox(self) -> Sandbox:
        return self._placement.live_sandbox()

    def _save(self) -> None:
        info = self._info
        record, snapshot = self._placement.record, self._snapshot
        row = {
            "status": info.status.value,
            "last_active_at": info.last_active_at,
            "expires_at": self.deadline,
            "idle_timeout": info.idle_timeout,
            "sandbox_id": sandbox.id if (sandbox := self._placement.sandbox) else None,
            "kernel": record,
            "notice": info.notice,
            "running_since": None,
            "paused_at": self._paused_at,
            "paused_until": self.paused_until,
            "snapshot": snapshot,
        }
        # Only this session writes its row: most executions change nothing in it (activity is
        # kept in whole seconds), so they skip the write.
        if row == self._saved:
            return
        stored = {
            "kernel": record.to_json() if record else None,
            "snapshot": snapshot.to_json() if snapshot else None,
        }
        self._ctx.records.update(self.id, {**row, **stored})
        self._saved = row

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

    async def _refresh_deadline(self) -> None:
        """Move the sandbox's own deadline to ``_sandbox_deadline`` (a file write if it moved)."""
        if (sandbox := self._placement.sandbox) is not None:
            await sandbox.set_deadline(self._sandbox_deadline())

    def keepalive(self) -> SessionInfo:
        self._check_usable()
        self.touch()
        self._save()
        return self.info

    def extend(self, seconds: int) -> SessionInfo:
        """Push the hard deadline out by ``seconds`` (and count as activity)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise errors.InvalidRequest("extend takes a positive whole number of seconds")
        self._check_usable()
        limit = self._info.created_at + self._settings.max_session_lifetime
        self.deadline = min(max(self.deadline, int(time.time())) + seconds, limit)
        self.touch()
        self._save()
        return self.info

    def expire_in(self, seconds: int) -> SessionInfo:
        """End it ``seconds`` from now, busy or idle (E2B's sandbox timeout): the hard deadline
        moves either way, and the idle timeout grows so that it does not come first."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise errors.InvalidRequest("the timeout is a positive whole number of seconds")
        self._check_usable()
        limit = self._info.created_at + self._settings.max_session_lifetime
        self.deadline = min(int(time.time()) + seconds, limit)
        self._info.idle_timeout = max(self._info.idle_timeout, seconds)
        self.touch()
        self._save()
        return self.info

    async def start(self, file_ids: Iterable[str] = ()) -> None:
        try:
            await self._placement.start(self._start_deadline)
            self._info.status = SessionStatus.ACTIVE
            self.touch()
            await self._refresh_deadline()  # a pooled sandbox still has the pool's
            self._save()
            for file_id in file_ids:
                await self.add_file(file_id)
        except (errors.SandboxLost, errors.KernelStartError) as exc:
            # A sandbox that cannot be made (or is gone before it is used): try again later.
            raise errors.SandboxUnavailable(f"could not make a sandbox: {exc}") from exc

    def _start_deadline(self) -> float:
        """A cold start is bounded by its own timeout, never cut short by the deadline;
        ``start`` sets the session's deadline once it is done."""
        return max(
            self._sandbox_deadline(),
            time.time() + self._settings.kernel_start_timeout + DEADLINE_SLACK,
        )

    def _check_open(self, status: SessionStatus = SessionStatus.ACTIVE) -> Kernel:
        """Its kernel, the session being in ``status`` (PAUSED: a resume started its kernel)."""
        kernel = self._placement.kernel
        if self._info.status is not status or kernel is None:
            raise errors.SessionClosed(f"session {self.id} is {self._info.status.value}")
        return kernel

    def _check_usable(self) -> None:
        """Active, or paused (any use resumes it)."""
        if self._info.status not in (SessionStatus.ACTIVE, SessionStatus.PAUSED):
            raise errors.SessionClosed(f"session {self.id} is {self._info.status.value}")

    # --- pause and resume ---

    async def pause(self) -> SessionInfo:
        """Save its variables and files, then remove its sandbox: it costs disk, not memory,
        until any use resumes it. Names that cannot be saved are listed in its notice."""
        self._check_usable()
        async with self._lock:
            if self._info.status is SessionStatus.ACTIVE:
                await self._pause_locked(self._check_open())
        return self.info

    async def _pause_locked(self, kernel: Kernel) -> None:
        saved = await self._pausing.save(kernel)
        for what in saved.lost:
            self._notices.add(f"paused without {what}")
        self._snapshot = saved.snapshot
        self._paused_at = int(time.time())
        self._info.status = SessionStatus.PAUSED
        if self._roster is not None:
            self._roster.paused(self)
        try:
            await self._placement.remove()
        finally:
            self._save()
        log.info("session %s paused (%s)", self.id, saved.snapshot or "files only")

    async def resume(self) -> SessionInfo:
        """Start it again from the warm pool, with its variables and files back."""
        self._check_usable()
        async with self._lock:
            await self._resident()
        return self.info

    async def _resident(self) -> Kernel:
        """Its kernel, resuming it first if it is paused; the caller holds the lock."""
        if self._info.status is SessionStatus.PAUSED:
            if self._roster is not None:
                self._roster.resuming(self)
            try:
                await self._placement.start(self._start_deadline, resume=True)
                await self._pausing.restore(self._check_open(SessionStatus.PAUSED), self._snapshot)
            except BaseException:
                with contextlib.suppress(errors.EngineError):
                    await self._placement.remove()
                if self._roster is not None:
                    self._roster.paused(self)
                raise
            self._snapshot = self._paused_at = None
            self._info.status = SessionStatus.ACTIVE
            self.touch()
            await self._refresh_deadline()
            self._save()
        return self._check_open()

    async def _awake(self) -> None:
        """Resume it if it is paused (what every use of its sandbox does first)."""
        self._check_usable()
        if self._info.status is SessionStatus.PAUSED:
            async with self._lock:
                await self._resident()

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
        self._check_usable()
        try:
            async with asyncio.timeout(queue_timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise errors.SessionBusy(
                f"session {self.id} is still running an earlier execution"
            ) from None
        marking: asyncio.Handle | None = None
        try:
            kernel = await self._resident()
            self.touch()
            # Written while the kernel runs the code rather than before it is sent: the request
            # goes out before the first wait, and this runs at that wait.
            marking = asyncio.get_running_loop().call_soon(self._mark_running)
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
                if self._placement.kernel is kernel:
                    await self._outputs.export(result)
                else:  # closed while it ran: what it produced until then, and why it stopped
                    result = self._cut_short(result)
            self._notices.deliver(result)
            asyncio.get_running_loop().call_soon(metrics.record_execution, result)
            return result
        finally:
            if marking is not None:
                marking.cancel()  # an execution that failed before its first wait sent nothing
            self.touch()
            # Saved once the result is on its way back: the write that clears the running mark
            # is no part of the round trip, and still comes before a next execution's mark.
            asyncio.get_running_loop().call_soon(self._save_after_execution)
            self._lock.release()

    def _save_after_execution(self) -> None:
        if self._info.status is not SessionStatus.ACTIVE:
            return  # closed or paused meanwhile: that wrote the row
        try:
            self._save()
        except errors.StorageFull as exc:  # the result matters more than last-active
            log.warning("session %s: not saved: %s", self.id, exc)

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
        if self._placement.kernel is kernel or (task is not None and task.cancelling()):
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
        self._check_usable()
        if self._info.status is SessionStatus.ACTIVE:  # a paused session runs nothing
            await self._check_open().interrupt()

    async def restart(self) -> None:
        """A fresh kernel: variables go, files in /mnt/data stay."""
        self._check_usable()
        async with self._lock:
            kernel = await self._resident()
            self.touch()
            try:
                await kernel.restart()
            except SandboxLost as exc:
                self._raise_if_closed_under(kernel, exc)
                await self._replace_sandbox(exc)

    async def _replace_sandbox(self, cause: SandboxLost | None = None) -> ExecutionResult:
        """The container vanished under us: start over in a new one."""
        self._outputs.forget()
        oom = await self._placement.abandon(cause)
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

    # --- /mnt/data ---

    async def upload(self, name: str, data: Source) -> SessionFile:
        """Place raw bytes at /mnt/data/<name>; they also become a file object."""
        await self._awake()
        return await self._data.upload(name, data)

    async def add_file(
        self, file_id: str, name: str | None = None, *, path: str | None = None
    ) -> SessionFile:
        """Place an existing file object at /mnt/data/<name> (its own filename by default), or
        at ``path``, a path below /mnt/data whose folders are made as needed."""
        await self._awake()
        return await self._data.add_file(file_id, name, path=path)

    def keep_output(self, file_id: str) -> FileObject:
        """Promote an output of this session: it outlives the session (until deleted)."""
        return self._data.keep_output(file_id)

    def keep_outputs(self, file_ids: Iterable[str]) -> None:
        """Promote those of ``file_ids`` that are this tenant's (what a message cites)."""
        self._data.keep_outputs(file_ids)

    async def list_files(self) -> list[SessionFile]:
        await self._awake()
        return await self._data.list_files()

    async def open_file(self, path: str) -> IO[bytes]:
        """Open /mnt/data/<path> for reading; symlinks and special files are refused."""
        await self._awake()
        return await self._data.open_file(path)

    async def read_file(self, path: str) -> bytes:
        await self._awake()
        return await self._data.read_file(path)

    async def remove_file(self, path: str) -> None:
        await self._awake()
        await self._data.remove_file(path)

    # --- the end ---

    async def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        """End the session and remove its sandbox. Its thread gets a new session next time."""
        if self._info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            return
        self._info.status = status
        self._snapshot = self._paused_at = None
        self._save()  # before the manager lets go: a reader must never see a stale 'active' row
        if self._roster is not None:
            self._roster.ended(self, status)  # the manager lets go before the first await
        try:
            await self._placement.remove()
        finally:
            self._save()  # its sandbox is gone
            self._ctx.snapshots.delete(self.id, self.owner)
            self._drop_outputs()

    def _drop_outputs(self) -> None:
        """Outputs live as long as their session, unless kept (docs/files-and-sessions.md)."""
        try:
            self._ctx.files.drop_session_outputs(self.id)
        except errors.EngineError as exc:
            log.warning("session %s: outputs not removed: %s", self.id, exc)


class SessionControl:
    """What the engine alone does to a session, never its callers: the manager's recovery
    re-adopts it in the sandbox an earlier engine process left running or starts it over, the
    reaper moves its sandbox's deadline, and a graceful stop that keeps sandboxes detaches it.
    A handle made on demand; the state is the session's."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def adopt(
        self, sandbox: Sandbox, record: KernelRecord, running_since: float | None
    ) -> None:
        """Continue in the sandbox an earlier engine process left running (re-verified by the
        backend); an execution it was running is interrupted and reported, never re-run."""
        s = self._session
        busy = running_since is not None
        kept = await s._placement.adopt(sandbox, record, s._settings.adopt_timeout, busy=busy)
        if running_since is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(running_since))
            s._notices.add(
                f"the engine restarted while an execution (started {when}) was running: it was "
                "interrupted and is not run again; its output after the restart is lost"
            )
        if not kept:
            s._notices.add(
                "the kernel did not answer after the engine restarted and was restarted: its "
                "variables were lost. Files in /mnt/data were kept.",
                state_lost=True,
            )
        s._outputs.restore()
        s._info.status = SessionStatus.ACTIVE
        s._save()

    def as_paused(self, paused_at: int, snapshot: SnapshotMeta | None) -> None:
        """Take up a paused session from its row (paused by an earlier process, or let go of
        while nobody held it)."""
        s = self._session
        s._paused_at, s._snapshot = paused_at, snapshot
        s._info.status = SessionStatus.PAUSED
        s._outputs.restore()

    async def file_object(self, path: str) -> str:
        """The id of a file object holding /mnt/data/<path> as it is now: how a cluster node
        hands a download to a replica, by key."""
        await self._session._awake()
        return await self._session._data.file_object(path)

    async def move_here(self, why: str) -> None:
        """Continue, in a fresh sandbox of this engine, a live session whose engine is gone:
        every file its executions exported is put back from its file object; its variables
        are lost."""
        s = self._session
        s._outputs.restore()
        await s.start()
        missed = await s._outputs.put_back()
        text = (
            f"{why}; the session continues on another node in a new sandbox: its variables "
            "were lost, and its files in /mnt/data were put back as its last execution left them"
        )
        if missed:
            text += f", but for {', '.join(sorted(missed))}"
        s._notices.add(text, state_lost=True)
        s._save()

    async def start_over(self, why: str) -> None:
        """Continue in a fresh sandbox after recovery found the old one unusable."""
        s = self._session
        s._outputs.forget()
        s._notices.add(
            f"{why}; the session continues in a new sandbox: its variables and files in "
            "/mnt/data were lost (files changed since the last execution were saved as file "
            "objects of this session)",
            state_lost=True,
        )
        await s.start()

    async def refresh_deadline(self) -> None:
        """Carry the session's activity to its sandbox's own deadline."""
        await self._session._refresh_deadline()

    async def detach(self) -> None:
        """Let go of the session without ending it: its sandbox and kernel keep running for the
        next engine process on this data folder to re-adopt (a graceful stop that keeps)."""
        s = self._session
        if s._info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            return
        if s._info.status is SessionStatus.ACTIVE and not s.busy:
            s._save()  # a running execution's mark stays: the next process reports it
        try:
            await s._refresh_deadline()  # the last word on when it stops with no engine
        except (errors.EngineError, OSError) as exc:
            log.warning("session %s: could not write its sandbox's deadline: %s", s.id, exc)
        s._info.status = SessionStatus.CLOSED  # in this process only; the row stays active
        await s._placement.detach()
