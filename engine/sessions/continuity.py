"""How a session carries on when its sandbox does not: it re-adopts the sandbox an earlier engine
process left running, starts over in a fresh one when recovery finds that unusable or the
container is lost under an execution, and tells the next result so. A part of Session, kept
apart from its executions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from .. import errors
from ..config import Settings
from ..errors import SandboxLost
from ..kernel import Kernel
from ..provisioner import KernelRecord
from ..results import ErrorInfo, ExecutionResult, ExecutionStatus
from ..sandbox.base import Sandbox, SandboxSpec
from .context import kernel_limits
from .models import SessionInfo, SessionStatus
from .outputs import OutputExport


class Continuity:
    """Session's methods for going on in another sandbox; Session provides the state they share."""

    spec: SandboxSpec
    _info: SessionInfo
    _settings: Settings
    _sandbox: Sandbox | None
    _kernel: Kernel | None
    _outputs: OutputExport
    _lost_state: bool

    async def start(self, file_ids: Iterable[str] = ()) -> None:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    async def adopt(
        self, sandbox: Sandbox, record: KernelRecord, running_since: float | None
    ) -> None:
        """Continue in the sandbox an earlier engine process left running (re-verified by the
        backend); an execution it was running is interrupted and reported, never re-run."""
        kernel = Kernel(sandbox, kernel_limits(self._settings, self.spec.memory_limit_mb))
        busy = running_since is not None
        try:
            kept = await kernel.adopt(record, self._settings.adopt_timeout, busy=busy)
        except BaseException:
            with contextlib.suppress(Exception):
                await kernel.shutdown()
            raise
        self._sandbox, self._kernel = sandbox, kernel
        if running_since is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(running_since))
            self._note(
                f"the engine restarted while an execution (started {when}) was running: it was "
                "interrupted and is not run again; its output after the restart is lost"
            )
        if not kept:
            self._lost_state = True
            self._note(
                "the kernel did not answer after the engine restarted and was restarted: its "
                "variables were lost. Files in /mnt/data were kept."
            )
        self._outputs.restore()
        self._info.status = SessionStatus.ACTIVE
        self._save()

    async def start_over(self, why: str) -> None:
        """Continue in a fresh sandbox after recovery found the old one unusable."""
        self._outputs.forget()
        self._lost_state = True
        self._note(
            f"{why}; the session continues in a new sandbox: its variables and files in "
            "/mnt/data were lost (files changed since the last execution were saved as file "
            "objects of this session)"
        )
        await self.start()

    def _note(self, text: str) -> None:
        """Something the next execution result (and the session's info until then) says."""
        notice = self._info.notice
        self._info.notice = text if not notice else f"{notice}. {text[0].upper()}{text[1:]}"

    def _deliver_notice(self, result: ExecutionResult) -> None:
        if self._info.notice is not None:
            result.notice, self._info.notice = self._info.notice, None
        if self._lost_state:
            result.state_lost, self._lost_state = True, False

    async def _replace_sandbox(self, cause: SandboxLost | None = None) -> ExecutionResult:
        """The container vanished under us: start over in a new one."""
        old = self._sandbox
        seen = self._kernel.oom_kills_seen if self._kernel is not None else 0
        self._sandbox = self._kernel = None
        self._outputs.forget()
        # Under gVisor the OOM killer ends the whole sandbox, not just the kernel.
        oom = cause is not None and cause.out_of_memory
        if old is not None:
            with contextlib.suppress(errors.EngineError):
                oom = oom or await old.oom_kills() > seen
            with contextlib.suppress(errors.EngineError):  # the backend retries it later
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
