"""The Jupyter protocol: execute, interrupt and restart one kernel, giving ExecutionResults."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from .. import errors
from ..provisioner import KernelRecord, adopt_kernel, kernel_record, new_kernel_manager
from ..results import ErrorInfo, ExecutionResult, ExecutionStatus
from ..sandbox.base import Sandbox
from .channels import KernelChannels
from .output import Collector, EventCallback, KernelLimits
from .wire import ChannelBroken, WireLimits

log = logging.getLogger(__name__)
# How long the engine waits for output before it asks whether the kernel is still alive.
INTERRUPT_REPEAT = 1.0
LIVENESS_INTERVAL = 0.5
RESPONSE_GRACE = 30.0
"""How long a live kernel may take to say anything about a request before it counts as broken."""
STATE_LOST = (
    "The kernel was restarted: its state (variables, imports) was lost. Files in /mnt/data "
    "were kept."
)


class Kernel:
    """One IPython kernel running inside a sandbox."""

    def __init__(self, sandbox: Sandbox, limits: KernelLimits | None = None) -> None:
        self.sandbox = sandbox
        self.limits = limits or KernelLimits()
        self._wire = WireLimits(self.limits.max_message_bytes, self.limits.receive_budget_bytes)
        self._km: AsyncKernelManager = new_kernel_manager(sandbox, self.limits.start_timeout)
        self._channels: KernelChannels | None = None
        self._oom_baseline = 0
        self._closing = False
        # A restart still running after a timeout already returned its result.
        self._restarting: asyncio.Task[None] | None = None
        self._starting = False
        """An execution is under way whose code has not started running yet."""
        self._interrupt_due: float | None = None
        """When to interrupt the running code (again), for an interrupt asked before it started;
        infinity until it starts."""

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._start(), self.limits.start_timeout)
        except TimeoutError as exc:
            raise errors.KernelStartError(
                f"the kernel was not ready within {self.limits.start_timeout:g} s"
            ) from exc

    async def _start(self, *, interrupt_first: bool = False) -> None:
        if not self._km.has_kernel:
            await self._km.start_kernel()
        # Interrupts go out on the manager's Session too: two counters would hand out the same
        # msg_id, and the interrupt's idle would end our execution.
        channels = KernelChannels(self._km.session, self._wire)
        try:
            await channels.open(self._km.get_connection_info())
            if interrupt_first:
                await channels.send("control", "interrupt_request")
            await self._wait_ready(channels)
        except ChannelBroken as exc:
            channels.close()
            raise errors.KernelStartError(f"the kernel's channels failed: {exc.reason}") from exc
        except BaseException:
            channels.close()
            raise
        self._channels = channels

    @property
    def record(self) -> KernelRecord | None:
        """What a later engine process needs to reconnect to this kernel."""
        return None if self._restarting is not None else kernel_record(self._km)

    async def adopt(self, record: KernelRecord, timeout: float, *, busy: bool = False) -> bool:
        """Reconnect to the kernel an earlier engine process started in this sandbox.

        ``busy``: an execution was running when that process stopped; it is interrupted
        (never re-run). A kernel that does not then answer ``kernel_info`` within ``timeout``
        is restarted in the same sandbox (files stay). True if the kernel kept its state.
        Endpoints that fail verification raise KernelStartError: never connect to those.
        """
        await adopt_kernel(self._km, record)
        try:
            await asyncio.wait_for(self._start(interrupt_first=busy), timeout)
            return True
        except (TimeoutError, errors.KernelStartError) as exc:
            log.warning("re-adopted kernel did not answer (%s): restarting it", exc or "timeout")
        await self._restart()
        return False

    async def _wait_ready(self, channels: KernelChannels) -> None:
        """A kernel_info reply proves the shell channel; an idle status for it proves iopub
        (whose subscription takes effect some time after connecting)."""
        loop = asyncio.get_running_loop()
        while True:
            msg_id = await channels.send("shell", "kernel_info_request")
            if await _reply(channels, msg_id, 1.0) is None:
                if not await self._km.is_alive():
                    raise errors.KernelStartError("the kernel died while starting")
                continue
            deadline = loop.time() + 0.5
            while (remaining := deadline - loop.time()) > 0:
                msg = await channels.recv("iopub", remaining, parent=msg_id)
                if msg is not None and _is_idle(msg, msg_id):
                    return

    async def restart(self) -> None:
        """A fresh kernel in the same sandbox: every sandbox process ends, files stay."""
        if self._restarting is not None:
            await self._restarted()
        else:
            await self._restart()

    async def _restart(self) -> None:
        self._drop_channels()
        if not await self.sandbox.is_running():
            raise errors.SandboxLost("the sandbox container is gone")
        try:
            await asyncio.wait_for(self._km.restart_kernel(now=True), self.limits.start_timeout)
        except TimeoutError as exc:
            raise errors.KernelStartError("the kernel did not restart in time") from exc
        await self.start()

    def _drop_channels(self) -> None:
        if self._channels is not None:
            self._channels.close()
            self._channels = None

    @property
    def oom_kills_seen(self) -> int:
        """The sandbox's OOM kill count when this kernel last looked."""
        return self._oom_baseline

    async def _restarted(self) -> None:
        """Wait for a background restart; it raises here, to whoever waits first, if it failed."""
        task = self._restarting
        if task is None:
            return
        try:
            await asyncio.shield(task)
        finally:
            if task.done():
                self._restarting = None

    async def interrupt(self) -> None:
        """Ask the kernel to raise KeyboardInterrupt (over the control channel: ipykernel
        signals itself); a restarting kernel runs nothing. An execution whose code has not
        started yet is interrupted as it starts: an idle kernel ignores the signal."""
        if self._starting:
            self._interrupt_due = math.inf
            return
        await self._send_interrupt()

    async def _send_interrupt(self) -> None:
        if self._restarting is None and self._channels is not None:
            try:
                await self._channels.send("control", "interrupt_request")
            except ChannelBroken as exc:
                log.warning("could not interrupt the kernel: %s", exc.reason)

    async def shutdown(self) -> None:
        """Stop for good. An execution still running returns what it collected until now."""
        self._closing = True
        if self._restarting is not None:
            self._restarting.cancel()
            await asyncio.gather(self._restarting, return_exceptions=True)
            self._restarting = None
        self._drop_channels()
        await self._km.cleanup_resources()

    async def execute(
        self,
        code: str,
        timeout: float,
        on_event: EventCallback | None = None,
        *,
        internal: bool = False,
    ) -> ExecutionResult:
        """Run ``code``. An ``internal`` execution (the engine's own) leaves no trace in the
        kernel's history, execution count or ``_``."""
        self._starting = True
        try:
            return await self._execute_started(code, timeout, on_event, internal)
        finally:
            self._starting = False
            self._interrupt_due = None

    async def _execute_started(
        self, code: str, timeout: float, on_event: EventCallback | None, internal: bool
    ) -> ExecutionResult:
        await self._restarted()
        if self._channels is None:
            raise errors.SessionClosed("the kernel is not running")
        channels = self._channels
        started = time.perf_counter()
        collector = Collector(self.limits, on_event)
        try:
            return await self._execute(channels, code, timeout, collector, started, internal)
        except ChannelBroken as exc:
            if self._closing:
                collector.error = ErrorInfo(
                    name="Cancelled",
                    value="the kernel was shut down while this execution ran; the output "
                    "produced until then is kept",
                )
                return collector.finish(ExecutionStatus.CANCELLED, started)
            return await self._on_broken(collector, started, exc)

    async def _execute(
        self,
        channels: KernelChannels,
        code: str,
        timeout: float,
        collector: Collector,
        started: float,
        internal: bool = False,
    ) -> ExecutionResult:
        await _drain_shell(channels)
        content = {
            "code": code,
            "silent": internal,
            "store_history": not internal,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg_id = await channels.send("shell", "execute_request", content)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        deadline = sent + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return await self._on_timeout(channels, msg_id, collector, started, timeout)
            idle = await self._next(channels, msg_id, collector, min(remaining, LIVENESS_INTERVAL))
            if self._interrupt_due is not None and loop.time() >= self._interrupt_due and not idle:
                # Repeated until the code stops: one that lands before the cell's own code
                # runs is lost.
                await self._send_interrupt()
                self._interrupt_due = loop.time() + INTERRUPT_REPEAT
            if idle is None:
                if not await self._km.is_alive():
                    return await self._on_crash(collector, started)
                if not collector.heard and loop.time() - sent > RESPONSE_GRACE:
                    raise ChannelBroken(
                        f"the kernel did not respond within {RESPONSE_GRACE:g} s although its "
                        "process was alive (its own machinery is broken)"
                    )
            elif idle:
                break
        # Code that ran published execute_input; only a request without it can have been
        # aborted, and only then is its reply (which trails the idle status) worth the wait.
        if (
            not collector.ran
            and await _reply_status(channels, msg_id) == "aborted"
            and collector.error is None
        ):
            collector.error = ErrorInfo(
                name="ExecutionAborted",
                value="the kernel aborted this execution without running it",
            )
        if self._interrupt_due is not None and collector.error is None:
            # The signal can land before the cell's own code, which then ends without a word.
            collector.error = ErrorInfo(
                name="KeyboardInterrupt",
                value="interrupted as it started: its code may not have run",
            )
        status = ExecutionStatus.ERROR if collector.error else ExecutionStatus.OK
        return collector.finish(status, started)

    async def _next(
        self, channels: KernelChannels, msg_id: str, collector: Collector, timeout: float
    ) -> bool | None:
        """Handle one iopub message: True once the kernel went idle, None if none came."""
        msg = await channels.recv("iopub", timeout, parent=msg_id)
        if msg is None:
            return None
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        collector.heard = True
        if msg["msg_type"] == "status":
            return _is_idle(msg, msg_id)
        if self._starting:  # execute_input, published just before the code runs, or later
            self._starting = False
            if self._interrupt_due is not None:
                self._interrupt_due = 0.0
        await collector.handle(msg)
        return False

    async def _on_timeout(
        self,
        channels: KernelChannels,
        msg_id: str,
        collector: Collector,
        started: float,
        timeout: float,
    ) -> ExecutionResult:
        await self._send_interrupt()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.interrupt_grace
        while (remaining := deadline - loop.time()) > 0:
            if await self._next(channels, msg_id, collector, min(remaining, 0.1)):
                collector.error = ErrorInfo(
                    name="TimeoutError",
                    value=f"execution exceeded the {timeout:g} s timeout and was interrupted",
                    traceback=collector.error.traceback if collector.error else [],
                )
                return collector.finish(ExecutionStatus.TIMEOUT, started)
        await self._restart_in_background()
        collector.error = ErrorInfo(
            name="TimeoutError",
            value=f"execution exceeded the {timeout:g} s timeout and did not stop when "
            "interrupted; the kernel was restarted and its state (variables, imports) was "
            "lost. Files in /mnt/data were kept.",
        )
        return collector.finish(ExecutionStatus.TIMEOUT, started, state_lost=True)

    async def _restart_in_background(self) -> None:
        """The code stops now; the caller need not wait for the new kernel, the next call will."""
        self._drop_channels()
        await self.sandbox.kill_all()
        self._restarting = asyncio.ensure_future(self._restart())

    async def _on_broken(
        self, collector: Collector, started: float, exc: ChannelBroken
    ) -> ExecutionResult:
        """A channel the kernel broke (a message over the cap, a socket it closed, silence):
        its process may live on, but it cannot be trusted to answer again."""
        if await self._dies_soon():  # a dying kernel's sockets close before it is reaped
            return await self._on_crash(collector, started)
        log.warning("kernel of sandbox %s restarted: %s", self.sandbox.id, exc.reason)
        await self._restart_in_background()
        collector.error = ErrorInfo(
            name="MessageTooLarge" if exc.oversize is not None else "KernelBroken",
            value=f"{exc.reason}. {STATE_LOST}",
        )
        return collector.finish(ExecutionStatus.CRASHED, started, state_lost=True)

    async def _dies_soon(self, seconds: float = 1.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while await self._km.is_alive():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _on_crash(self, collector: Collector, started: float) -> ExecutionResult:
        code = await self._km.provisioner.poll() if self._km.provisioner else None
        oom_kills = await self.sandbox.oom_kills()
        if oom_kills > self._oom_baseline:
            self._oom_baseline = oom_kills
            name = "OutOfMemory"
            reason = (
                f"out of memory: the kernel was killed when the sandbox went over its "
                f"{self.limits.memory_limit_mb} MB memory limit (files in /mnt/data, /tmp and "
                "/dev/shm count toward it)"
            )
        else:
            name = "KernelDied"
            reason = f"the kernel died unexpectedly ({_describe_exit(code)})"
        try:
            await self.restart()
        except errors.SandboxLost as exc:
            lost = errors.SandboxLost(f"the sandbox is gone: {reason}")
            lost.out_of_memory = name == "OutOfMemory"
            raise lost from exc
        collector.error = ErrorInfo(
            name=name,
            value=f"{reason}. A new kernel was started: earlier state (variables, imports) "
            "was lost. Files in /mnt/data were kept.",
        )
        return collector.finish(ExecutionStatus.CRASHED, started, state_lost=True)


def _describe_exit(code: int | None) -> str:
    if code is None or code < 0:
        return "exit status unknown"
    if code > 128:
        return f"killed by signal {code - 128}"
    return f"exit code {code}"


def _is_idle(msg: dict[str, Any], msg_id: str) -> bool:
    content = msg["content"]
    return (
        msg["parent_header"].get("msg_id") == msg_id
        and msg["msg_type"] == "status"
        and isinstance(content, dict)
        and content.get("execution_state") == "idle"
    )


async def _reply(channels: KernelChannels, msg_id: str, timeout: float) -> dict[str, Any] | None:
    """The shell reply to ``msg_id`` within ``timeout`` seconds, skipping others."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        reply = await channels.recv("shell", remaining, parent=msg_id)
        if reply is None:
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    return None


async def _reply_status(channels: KernelChannels, msg_id: str) -> str | None:
    """The execute_reply's status. The kernel sends it before the idle status, but on the shell
    socket (in ipykernel 7, from another thread), so it may trail the idle by a little."""
    reply = await _reply(channels, msg_id, LIVENESS_INTERVAL)
    content = reply["content"] if reply is not None else None
    status = content.get("status") if isinstance(content, dict) else None
    return status if isinstance(status, str) else None


async def _drain_shell(channels: KernelChannels) -> None:
    """Replies to earlier executions that ended without reading theirs (most do), unread."""
    while await channels.recv("shell", 0, parent="") is not None:
        pass


def validate_timeout(timeout: object, default: float, maximum: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise errors.InvalidRequest(f"timeout must be a number of seconds, not {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise errors.InvalidRequest(f"timeout must be a positive finite number, not {timeout!r}")
    if timeout > maximum:
        raise errors.InvalidRequest(f"timeout may be at most {maximum:g} s, not {timeout:g}")
    return float(timeout)
