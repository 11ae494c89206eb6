"""The Jupyter protocol: execute, interrupt and restart one kernel, giving ExecutionResults."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import queue
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager

from . import errors
from .provisioner import KernelRecord, adopt_kernel, kernel_record, new_kernel_manager
from .results import (
    CappedText,
    DisplayEvent,
    ErrorEvent,
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    OutputEvent,
    ResultEvent,
    StreamEvent,
)
from .sandbox.base import Sandbox

EventCallback = Callable[[OutputEvent], Awaitable[None] | None]

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# How long the engine waits for output before it asks whether the kernel is still alive.
LIVENESS_INTERVAL = 0.5


MALFORMED: dict[str, Any] = {"parent_header": {}, "msg_type": "malformed", "content": {}}
"""Stands for a message that failed its checks: it answers no request."""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class KernelLimits:
    start_timeout: float = 60.0
    interrupt_grace: float = 1.0
    output_limit_chars: int = 1_000_000
    max_display_outputs: int = 100
    max_display_bytes: int = 32 * 1024 * 1024
    memory_limit_mb: int = 1024


class _Collector:
    """Turns one execution's iopub messages into events and the result's fields."""

    def __init__(self, limits: KernelLimits, on_event: EventCallback | None) -> None:
        self.stdout = CappedText(limits.output_limit_chars)
        self.stderr = CappedText(limits.output_limit_chars)
        self.display: list[dict[str, Any]] = []
        self.dropped_displays = 0
        self.dropped_result = 0
        self.dropped_error = 0
        self.max_displays = limits.max_display_outputs
        self.display_budget = limits.max_display_bytes
        self.text_limit = limits.output_limit_chars
        self.result: dict[str, Any] | None = None
        self.error: ErrorInfo | None = None
        self.execution_count: int | None = None
        self._on_event = on_event

    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        event: OutputEvent | None = None
        if kind == "stream":
            text = str(content.get("text", ""))
            if content.get("name") == "stderr":
                self.stderr.write(text)
                event = StreamEvent(type="stderr", text=text)
            else:
                self.stdout.write(text)
                event = StreamEvent(type="stdout", text=text)
        elif kind in ("display_data", "update_display_data"):
            data = _bundle(content.get("data"))
            if len(self.display) >= self.max_displays or not self._fits(data):
                self.dropped_displays += 1
                return
            self.display.append(data)
            event = DisplayEvent(data=data, metadata=content.get("metadata", {}))
        elif kind == "execute_result":
            data = _bundle(content.get("data"))
            if not self._fits(data):
                text = self._capped(str(data.get("text/plain", "")))
                self.dropped_result = _bundle_size(data) - len(text)
                data = {"text/plain": text}
            self.result = data
            self.execution_count = content.get("execution_count", self.execution_count)
            event = ResultEvent(data=self.result or {}, execution_count=self.execution_count)
        elif kind == "execute_input":
            self.execution_count = content.get("execution_count")
        elif kind == "error":
            self.error = self._error(content)
            event = ErrorEvent(error=self.error)
        if event is not None and self._on_event is not None:
            ret = self._on_event(event)
            if inspect.isawaitable(ret):
                await ret

    def _fits(self, data: dict[str, Any]) -> bool:
        """Charge a bundle to the execution's display budget, if it fits."""
        size = _bundle_size(data)
        if size > self.display_budget:
            return False
        self.display_budget -= size
        return True

    def _capped(self, text: str) -> str:
        capped = CappedText(self.text_limit)
        capped.write(text)
        return capped.getvalue()

    def _error(self, content: dict[str, Any]) -> ErrorInfo:
        """An error whose value or traceback could be as big as the sandbox's memory: capped."""
        value = str(content.get("evalue", ""))
        traceback = [str(line) for line in content.get("traceback", [])]
        size = len(value) + sum(map(len, traceback))
        if len(value) > self.text_limit:
            value = self._capped(value)
        if sum(map(len, traceback)) > self.text_limit:
            traceback = [self._capped("\n".join(traceback))]
        self.dropped_error = max(0, size - len(value) - sum(map(len, traceback)))
        return ErrorInfo(
            name=str(content.get("ename", ""))[:200],
            value=value,
            traceback=[strip_ansi(line) for line in traceback],
        )

    def finish(
        self, status: ExecutionStatus, started: float, *, state_lost: bool = False
    ) -> ExecutionResult:
        dropped = {
            name: n
            for name, n in (
                ("stdout", self.stdout.dropped),
                ("stderr", self.stderr.dropped),
                ("display", self.dropped_displays),
                ("result", self.dropped_result),
                ("error", self.dropped_error),
            )
            if n
        }
        return ExecutionResult(
            status=status,
            stdout=self.stdout.getvalue(),
            stderr=self.stderr.getvalue(),
            result=self.result,
            display=self.display,
            error=self.error,
            execution_count=self.execution_count,
            duration_ms=(time.perf_counter() - started) * 1000,
            state_lost=state_lost,
            dropped=dropped,
        )


class Kernel:
    """One IPython kernel running inside a sandbox."""

    def __init__(self, sandbox: Sandbox, limits: KernelLimits | None = None) -> None:
        self.sandbox = sandbox
        self.limits = limits or KernelLimits()
        self._km: AsyncKernelManager = new_kernel_manager(sandbox, self.limits.start_timeout)
        self._client: AsyncKernelClient | None = None
        self._oom_baseline = 0
        # A restart still running after a timeout already returned its result.
        self._restarting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._start(), self.limits.start_timeout)
        except TimeoutError as exc:
            raise errors.KernelStartError(
                f"the kernel was not ready within {self.limits.start_timeout:g} s"
            ) from exc

    async def _start(self) -> None:
        if not self._km.has_kernel:
            await self._km.start_kernel()
        client: AsyncKernelClient = self._km.client()
        # The manager sends interrupt_request on a Session of its own with the same id: two
        # counters would hand out the same msg_id, and its idle would end our execution.
        client.session = self._km.session
        client.start_channels()
        try:
            await self._wait_ready(client)
        except BaseException:
            client.stop_channels()
            raise
        self._client = client

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
            if busy:
                await self._km.interrupt_kernel()
            await asyncio.wait_for(self._start(), timeout)
            return True
        except (TimeoutError, errors.KernelStartError, zmq.ZMQError) as exc:
            log.warning("re-adopted kernel did not answer (%s): restarting it", exc or "timeout")
        await self._restart()
        return False

    async def _wait_ready(self, client: AsyncKernelClient) -> None:
        """Like ``client.wait_for_ready`` but without its fixed 0.2 s iopub flush at the end."""
        while True:
            msg_id = client.kernel_info()
            try:
                await client.get_shell_msg(timeout=1.0)
            except queue.Empty:
                if not await self._km.is_alive():
                    raise errors.KernelStartError("the kernel died while starting") from None
                continue
            # The reply proves the shell channel; an idle status for it proves iopub too.
            try:
                while True:
                    msg = await client.get_iopub_msg(timeout=0.5)
                    if (
                        msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"
                    ):
                        return
            except queue.Empty:
                continue

    async def restart(self) -> None:
        """A fresh kernel in the same sandbox: every sandbox process ends, files stay."""
        if self._restarting is not None:
            await self._restarted()
        else:
            await self._restart()

    async def _restart(self) -> None:
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if not await self.sandbox.is_running():
            raise errors.SandboxLost("the sandbox container is gone")
        try:
            await asyncio.wait_for(self._km.restart_kernel(now=True), self.limits.start_timeout)
        except TimeoutError as exc:
            raise errors.KernelStartError("the kernel did not restart in time") from exc
        await self.start()

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
        if self._restarting is None:  # a restarting kernel runs nothing
            await self._km.interrupt_kernel()

    async def shutdown(self) -> None:
        if self._restarting is not None:
            self._restarting.cancel()
            await asyncio.gather(self._restarting, return_exceptions=True)
            self._restarting = None
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        await self._km.cleanup_resources()

    async def execute(
        self, code: str, timeout: float, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        await self._restarted()
        if self._client is None:
            raise errors.SessionClosed("the kernel is not running")
        client = self._client
        await _drain_shell(client)
        started = time.perf_counter()
        collector = _Collector(self.limits, on_event)
        msg_id = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return await self._on_timeout(client, msg_id, collector, started, timeout)
            idle = await self._next(client, msg_id, collector, min(remaining, LIVENESS_INTERVAL))
            if idle is None:
                if not await self._km.is_alive():
                    return await self._on_crash(collector, started)
            elif idle:
                break
        if await _reply_status(client, msg_id) == "aborted" and collector.error is None:
            collector.error = ErrorInfo(
                name="ExecutionAborted",
                value="the kernel aborted this execution without running it",
            )
        status = ExecutionStatus.ERROR if collector.error else ExecutionStatus.OK
        return collector.finish(status, started)

    @staticmethod
    async def _next(
        client: AsyncKernelClient, msg_id: str, collector: _Collector, timeout: float
    ) -> bool | None:
        """Handle one iopub message: True once the kernel went idle, None if none came."""
        msg = await _recv(client.iopub_channel, timeout)
        if msg is None:
            return None
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        if msg["msg_type"] == "status":
            return bool(msg["content"].get("execution_state") == "idle")
        await collector.handle(msg)
        return False

    async def _on_timeout(
        self,
        client: AsyncKernelClient,
        msg_id: str,
        collector: _Collector,
        started: float,
        timeout: float,
    ) -> ExecutionResult:
        await self.interrupt()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.interrupt_grace
        while (remaining := deadline - loop.time()) > 0:
            if await self._next(client, msg_id, collector, min(remaining, 0.1)):
                collector.error = ErrorInfo(
                    name="TimeoutError",
                    value=f"execution exceeded the {timeout:g} s timeout and was interrupted",
                    traceback=collector.error.traceback if collector.error else [],
                )
                return collector.finish(ExecutionStatus.TIMEOUT, started)
        # The code stops now; the caller need not wait for the new kernel, the next call will.
        client.stop_channels()
        self._client = None
        await self.sandbox.kill_all()
        self._restarting = asyncio.ensure_future(self._restart())
        collector.error = ErrorInfo(
            name="TimeoutError",
            value=f"execution exceeded the {timeout:g} s timeout and did not stop when "
            "interrupted; the kernel was restarted and its state (variables, imports) was "
            "lost. Files in /mnt/data were kept.",
        )
        return collector.finish(ExecutionStatus.TIMEOUT, started, state_lost=True)

    async def _on_crash(self, collector: _Collector, started: float) -> ExecutionResult:
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


def _bundle(value: object) -> dict[str, Any]:
    """The kernel is untrusted: a MIME bundle that is not a mapping counts as empty."""
    return value if isinstance(value, dict) else {}


def _bundle_size(data: dict[str, Any]) -> int:
    """Characters in a MIME bundle (base64 for images, JSON for structured types)."""
    return sum(
        len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in data.values()
    )


def _describe_exit(code: int | None) -> str:
    if code is None or code < 0:
        return "exit status unknown"
    if code > 128:
        return f"killed by signal {code - 128}"
    return f"exit code {code}"


async def _recv(channel: AsyncZMQSocketChannel, timeout: float) -> dict[str, Any] | None:
    """The next message of a channel, or None if none came within ``timeout`` seconds.

    Like ``channel.get_msg``, but a message that is already queued is taken without polling
    first: most of an execution's messages are, and each poll costs a round of the event loop.
    """
    socket = channel.socket
    assert socket is not None
    try:
        frames = await socket.recv_multipart(flags=zmq.NOBLOCK)
    except zmq.Again:
        if timeout <= 0 or not await socket.poll(int(timeout * 1000)):
            return None
        frames = await socket.recv_multipart()
    try:
        _, parts = channel.session.feed_identities(frames)
        return channel.session.deserialize(parts)
    except (ValueError, TypeError, KeyError) as exc:
        # Code in the kernel can write to its sockets; what fails the signature is not its reply.
        log.warning("dropped a malformed message from a kernel: %s", str(exc)[:200])
        return MALFORMED


async def _reply_status(client: AsyncKernelClient, msg_id: str) -> str | None:
    """The execute_reply's status. The kernel sends it before the idle status, but on the shell
    socket (in ipykernel 7, from another thread), so it may trail the idle by a little."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIVENESS_INTERVAL
    while (remaining := deadline - loop.time()) > 0:
        reply = await _recv(client.shell_channel, remaining)
        if reply is None:
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            status: str | None = reply["content"].get("status")
            return status
    return None


async def _drain_shell(client: AsyncKernelClient) -> None:
    """Replies to earlier executions that ended without reading theirs (timeouts, crashes)."""
    while await _recv(client.shell_channel, 0) is not None:
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
