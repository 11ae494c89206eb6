"""Where a session runs: the sandbox and the kernel in it, taken warm from the pool, started
cold, adopted from an earlier engine process, or let go of."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from .. import errors
from ..errors import SandboxLost
from ..kernel import Kernel
from ..provisioner import KernelRecord
from ..sandbox.base import SESSION_LABEL, Sandbox, SandboxSpec
from .context import SessionContext, kernel_limits


class Placement:
    """One session's sandbox and kernel, while it has them."""

    def __init__(self, session_id: str, ctx: SessionContext, spec: SandboxSpec) -> None:
        self._session_id = session_id
        self._ctx = ctx
        self._spec = spec
        self.sandbox: Sandbox | None = None
        self.kernel: Kernel | None = None

    def live_sandbox(self) -> Sandbox:
        if self.sandbox is None:
            raise errors.SessionClosed(f"session {self._session_id} has no sandbox")
        return self.sandbox

    @property
    def record(self) -> KernelRecord | None:
        """What a later engine process needs to adopt the kernel."""
        return self.kernel.record if self.kernel is not None else None

    def _new_kernel(self, sandbox: Sandbox) -> Kernel:
        return Kernel(sandbox, kernel_limits(self._ctx.settings, self._spec.memory_limit_mb))

    async def start(self, deadline: Callable[[], float], *, resume: bool = False) -> None:
        """Move into a warm sandbox from the pool (for a ``resume``, first from the one whose
        kernels have the stack imported) if it is still alive, else start one cold, which
        stops itself at ``deadline()`` unless the session moves that on."""
        pools = [self._ctx.resume_pool, self._ctx.pool] if resume else [self._ctx.pool]
        for pool in pools:
            if pool is not None and pool.spec == self._spec:
                warm = await pool.acquire_live()
                if warm is not None:
                    self.sandbox, self.kernel = warm.sandbox, warm.kernel
                    return
        spec = self._spec
        if spec.egress.enabled:
            spec = dataclasses.replace(
                spec, labels={**spec.labels, SESSION_LABEL: self._session_id}
            )
        sandbox = await self._ctx.backend.create(spec, deadline())
        try:
            kernel = self._new_kernel(sandbox)
            await kernel.start()
        except BaseException:
            with contextlib.suppress(errors.EngineError):
                await sandbox.destroy()
            raise
        self.sandbox, self.kernel = sandbox, kernel

    async def adopt(
        self, sandbox: Sandbox, record: KernelRecord, timeout: float, *, busy: bool
    ) -> bool:
        """Move into the sandbox an earlier engine process left running, and connect to its
        kernel; False if the kernel did not answer and was restarted (its variables are lost)."""
        kernel = self._new_kernel(sandbox)
        try:
            kept = await kernel.adopt(record, timeout, busy=busy)
        except BaseException:
            with contextlib.suppress(Exception):
                await kernel.shutdown()
            raise
        self.sandbox, self.kernel = sandbox, kernel
        return kept

    async def abandon(self, cause: SandboxLost | None) -> bool:
        """Let go of a sandbox lost under an execution and remove it. True if it ran out of
        memory."""
        old = self.sandbox
        seen = self.kernel.oom_kills_seen if self.kernel is not None else 0
        self.sandbox = self.kernel = None
        # Under gVisor the OOM killer ends the whole sandbox, not just the kernel.
        oom = cause is not None and cause.out_of_memory
        if old is not None:
            with contextlib.suppress(errors.EngineError):
                oom = oom or await old.oom_kills() > seen
            with contextlib.suppress(errors.EngineError):  # the backend retries it later
                await old.destroy()
        return oom

    async def detach(self) -> None:
        """Let go without removing anything: the kernel process keeps running."""
        kernel, self.kernel, self.sandbox = self.kernel, None, None
        if kernel is not None:
            await kernel.shutdown()  # closes the channels only

    async def remove(self) -> None:
        """Shut the kernel down and remove the sandbox."""
        kernel, sandbox = self.kernel, self.sandbox
        self.kernel = None
        try:
            if kernel is not None:
                await kernel.shutdown()
            if sandbox is not None:
                await sandbox.destroy()
        finally:
            self.sandbox = None
