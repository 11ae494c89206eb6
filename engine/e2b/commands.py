"""Commands (E2B's ``commands.run``, envd's ``process.Process``): processes started with
``docker exec`` inside the session's own sandbox, as the sandbox user, never on the host. Each
runs in a process group of its own, so that a signal reaches what it started too."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Literal

from .. import errors
from ..sandbox.base import CommandRun, OutputChunk, ProcessHandle, Sandbox
from .paths import sandbox_path

log = logging.getLogger(__name__)

OUTPUT_CAP = 16 * 1024 * 1024
"""Bytes of output kept from one command; the rest is dropped while it keeps running."""
EXIT_WAIT = 5.0
"""How long Docker may take to report the exit code of a command whose output has ended."""
# Prints its pid, which is its process group's id (docker exec may have made it a group leader
# already, and then setsid refuses), then becomes the command.
LAUNCHER = (
    "import os, sys\n"
    "try:\n    os.setsid()\nexcept PermissionError:\n    pass\n"
    "sys.stdout.write(f'{os.getpid()}\\n'); sys.stdout.flush()\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)
SIGNALLER = "import os, sys; os.killpg(int(sys.argv[1]), int(sys.argv[2]))"
SIGNALS = {"SIGNAL_SIGTERM": signal.SIGTERM, "SIGNAL_SIGKILL": signal.SIGKILL}


@dataclass(frozen=True)
class CommandEvent:
    kind: Literal["stdout", "stderr", "end"]
    data: bytes = b""
    exit_code: int = 0
    error: str | None = None

    @property
    def status(self) -> str:
        """envd's words for how a process ended."""
        if self.exit_code > 128:
            name = signal.Signals(self.exit_code - 128).name.removeprefix("SIG").lower()
            return f"signal: {name}"
        return f"exit status {self.exit_code}"


@dataclass
class Command:
    pid: int
    cmd: str
    args: list[str]
    envs: dict[str, str]
    cwd: str
    tag: str | None
    events: asyncio.Queue[CommandEvent] = field(default_factory=asyncio.Queue)
    listening: bool = True
    """False once the request that started it has gone: its output is drained and dropped."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, event: CommandEvent) -> None:
        if self.listening or event.kind == "end":
            self.events.put_nowait(event)

    async def next_event(self, timeout: float) -> CommandEvent | None:
        """Its next event, or None after ``timeout`` seconds without one; ``end`` is last."""
        try:
            return await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            return None

    def detach(self) -> None:
        """Nobody reads its output any more: it runs on in the background, output dropped."""
        self.listening = False
        while not self.events.empty():
            self.events.get_nowait()


class Commands:
    """The commands one sandbox runs."""

    def __init__(self) -> None:
        self._running: dict[int, Command] = {}
        self._pumps: set[asyncio.Task[None]] = set()

    def list(self) -> builtins.list[Command]:
        return list(self._running.values())

    async def start(
        self,
        sandbox: Sandbox,
        cmd: str,
        args: builtins.list[str],
        envs: dict[str, str],
        cwd: str | None,
        tag: str | None = None,
    ) -> Command:
        if not isinstance(cmd, str) or not cmd:
            raise errors.InvalidRequest("process.cmd is required")
        workdir = sandbox_path(cwd or "/home/user")
        argv = ["python3", "-c", LAUNCHER, cmd, *args]
        run = await sandbox.run_command(argv, envs, workdir, OUTPUT_CAP)
        pid, first = await _read_pid(run)
        command = Command(pid, cmd, list(args), dict(envs), cwd or workdir, tag)
        if pid == 0:  # the launcher failed before the command existed (a bad cwd, say)
            command.emit(CommandEvent("stderr", first))
            async for chunk in run.output:
                command.emit(CommandEvent("stderr", chunk.data))
            code = await _exit_code(sandbox, run.process)
            command.emit(CommandEvent("end", exit_code=code, error="the command did not start"))
            return command
        if first:
            command.emit(CommandEvent("stdout", first))
        self._running[pid] = command
        task = asyncio.ensure_future(self._pump(sandbox, run, command))
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)
        return command

    async def _pump(self, sandbox: Sandbox, run: CommandRun, command: Command) -> None:
        try:
            async for chunk in run.output:
                command.emit(CommandEvent(chunk.stream, chunk.data))
            code = await _exit_code(sandbox, run.process)
            command.emit(CommandEvent("end", exit_code=code))
        except Exception as exc:
            log.warning("command %s: %s", command.pid, exc)
            command.emit(CommandEvent("end", exit_code=-1, error=str(exc)))
        finally:
            self._running.pop(command.pid, None)
            command.ended.set()

    def find(self, pid: int | None = None, tag: str | None = None) -> Command:
        for command in self._running.values():
            if (pid is not None and command.pid == pid) or (tag is not None and command.tag == tag):
                return command
        which = f"pid {pid}" if pid is not None else f"tag {tag!r}"
        raise errors.NotFound(f"process with {which} not found")

    async def signal(self, sandbox: Sandbox, command: Command, name: str) -> None:
        sig = SIGNALS.get(name)
        if sig is None:
            raise errors.InvalidRequest(f"signal must be one of {', '.join(SIGNALS)}")
        argv = ["python3", "-c", SIGNALLER, str(command.pid), str(int(sig))]
        run = await sandbox.run_command(argv, {}, "/", 4096)
        async for _ in run.output:
            pass
        if await _exit_code(sandbox, run.process) != 0:
            raise errors.NotFound(f"process {command.pid} not found")

    async def close(self) -> None:
        for task in list(self._pumps):
            task.cancel()
        for task in list(self._pumps):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _read_pid(run: CommandRun) -> tuple[int, bytes]:
    """The launcher's first line, and whatever of the command's stdout came with it."""
    head = b""
    async for chunk in run.output:
        if chunk.stream == "stderr":
            return 0, head + chunk.data
        head += chunk.data
        line, newline, rest = head.partition(b"\n")
        if newline:
            return (int(line), rest) if line.isdigit() else (0, head)
    return 0, head


async def _exit_code(sandbox: Sandbox, process: ProcessHandle) -> int:
    deadline = time.monotonic() + EXIT_WAIT
    delay = 0.005
    while (code := await sandbox.exit_code(process)) is None:
        if time.monotonic() > deadline:
            return -1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    return code


__all__ = ["Command", "CommandEvent", "Commands", "OutputChunk"]
