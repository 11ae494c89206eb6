"""ZeroMQ's wire protocol (ZMTP 3.0, NULL security), spoken by the engine to one kernel socket.

Why not libzmq: its ``MAXMSGSIZE`` caps each *frame*, and it holds a multipart message whole
until its last frame arrives, whatever the high-water marks. A kernel that sends one message of
many frames under the cap makes libzmq buffer it without end (measured: 400 frames of 1 MB with
``MAXMSGSIZE`` 2 MB and ``RCVHWM`` 1 took 400 MB). Here the engine reads a frame's size before
its body, so that a message over the cap is refused before anything is allocated, and bytes are
only read when the engine asks for a message: a kernel cannot push more than the socket buffers
into the engine. Large messages also take a permit from a receive budget shared by every kernel
of the process, so the memory used for receiving stays bounded whatever the number of kernels.
A kernel holds at most one permit (its channels share one gate), waits for it a bounded time,
and gives it back within one deadline counted from taking it: a kernel that stops halfway
through a message, or leaves a finished one unread, cannot keep what other kernels need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import weakref
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SMALL = 1024 * 1024
"""Messages up to this size need no permit: a busy kernel's ordinary traffic never waits."""
FRAME_OVERHEAD = 64
"""Bytes charged per frame on top of its body: what a frame costs as a Python object."""
MAX_FRAMES = 4096
STALL_SECONDS = 10.0
"""How long a large message may hold a permit, from taking it to the engine taking the whole
message (every frame, every header between them): over IPC 64 MB take well under a second."""
PERMIT_WAIT_SECONDS = 2 * STALL_SECONDS
"""How long a large message may wait for a permit. Every permit comes back within STALL_SECONDS
(plus the decoding), so a wait this long means the engine is saturated: the message is refused."""
SEND_SECONDS = 10.0
_GREETING_SIZE = 64
_MORE, _LONG, _COMMAND = 1, 2, 4


class ChannelBroken(Exception):
    """The connection to the kernel is unusable; ``reason`` says why, for the result."""

    def __init__(self, reason: str, *, oversize: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.oversize = oversize
        """The size of the refused message, when the kernel sent one over the cap."""


@dataclass(frozen=True)
class WireLimits:
    max_message_bytes: int
    receive_budget_bytes: int


class ReceiveBudget:
    """Permits for large messages being received or decoded, shared by one event loop's kernels.

    Each large message holds one permit (``max_message_bytes`` worth) from its first large frame
    until it is decoded, so at most ``budget // max_message_bytes`` of them exist at once. One
    permit per message means no two messages can each hold part of what the other waits for.
    """

    def __init__(self, permits: int) -> None:
        self.permits = permits
        self._sem = asyncio.Semaphore(permits)

    async def acquire(self) -> None:
        await self._sem.acquire()

    def release(self) -> None:
        self._sem.release()

    @property
    def available(self) -> int:
        """Permits free right now (for tests and diagnostics)."""
        return self._sem._value


class PermitGate:
    """One kernel's way to the shared budget: its channels (shell, iopub, control) share one
    gate, so that the kernel holds at most one permit whatever the number of its channels."""

    def __init__(self, budget: ReceiveBudget) -> None:
        self.budget = budget
        self._lock = asyncio.Lock()

    async def acquire(self, timeout: float) -> bool:
        """Take the kernel's permit within ``timeout`` seconds; False if it did not come."""
        try:
            async with asyncio.timeout(timeout):
                await self._lock.acquire()
                try:
                    await self.budget.acquire()
                except BaseException:
                    self._lock.release()
                    raise
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        self.budget.release()
        self._lock.release()


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReceiveBudget] = (
    weakref.WeakKeyDictionary()
)


def shared_budget(limits: WireLimits) -> ReceiveBudget:
    """The running loop's budget (the engine's kernels share one loop, hence one budget)."""
    loop = asyncio.get_running_loop()
    budget = _BUDGETS.get(loop)
    if budget is None:
        permits = max(1, limits.receive_budget_bytes // max(1, limits.max_message_bytes))
        budget = _BUDGETS[loop] = ReceiveBudget(permits)
    return budget


def loop_budget() -> ReceiveBudget | None:
    """The running loop's budget, if a kernel has made it (for diagnostics and the bench)."""
    return _BUDGETS.get(asyncio.get_running_loop())


class Message:
    """A received message's frames; ``release`` gives its permit back once it is decoded."""

    def __init__(self, frames: list[bytes], gate: PermitGate | None) -> None:
        self.frames = frames
        self._gate = gate
        self.expiry: asyncio.TimerHandle | None = None
        """Drops the message if the engine has not taken it by the end of its deadline."""

    def claim(self) -> Message:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        return self

    def release(self) -> None:
        self.claim()
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()


@dataclass(eq=False)
class Connection:
    """One client connection, as a DEALER (shell, control) or a SUB (iopub)."""

    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter
    name: str
    _limits: WireLimits
    _gate: PermitGate
    _pending: asyncio.Task[Message] | None = field(init=False, default=None)
    broken: ChannelBroken | None = field(init=False, default=None)

    @classmethod
    async def open(
        cls,
        address: str,
        socket_type: str,
        name: str,
        limits: WireLimits,
        *,
        identity: bytes = b"",
        timeout: float = 10.0,
        budget: ReceiveBudget | None = None,
        gate: PermitGate | None = None,
    ) -> Connection:
        """Connect to ``ipc://path`` or ``tcp://host:port`` and complete the handshake.

        Connections to one kernel pass the same ``gate``; without one, the connection gets its
        own gate to ``budget`` (the loop's shared budget by default).
        """
        async with asyncio.timeout(timeout):
            if address.startswith("ipc://"):
                reader, writer = await asyncio.open_unix_connection(address[6:])
            elif address.startswith("tcp://"):
                host, _, port = address[6:].rpartition(":")
                reader, writer = await asyncio.open_connection(host, int(port))
            else:
                raise ChannelBroken(f"unsupported kernel address {address!r}")
            if gate is None:
                gate = PermitGate(budget or shared_budget(limits))
            conn = cls(reader, writer, name, limits, gate)
            try:
                await conn._handshake(socket_type, identity)
            except BaseException:
                conn.close()
                raise
        return conn

    async def _handshake(self, socket_type: str, identity: bytes) -> None:
        greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0")
        self._writer.write(greeting.ljust(_GREETING_SIZE, b"\0"))
        props = _property(b"Socket-Type", socket_type.encode())
        if socket_type == "DEALER":
            props += _property(b"Identity", identity)
        self._write_frame(b"\x05READY" + props, command=True)
        await self._writer.drain()
        peer = await self._reader.readexactly(_GREETING_SIZE)
        if peer[0] != 0xFF or peer[9] & 1 != 1 or peer[10] < 3 or peer[12:16] != b"NULL":
            raise ChannelBroken(f"the kernel's {self.name} socket does not speak ZMTP 3 / NULL")
        flags, size = await self._header()
        if not flags & _COMMAND or size > SMALL:
            raise ChannelBroken(f"the kernel's {self.name} socket sent no READY")
        body = await self._reader.readexactly(size)
        if not body.startswith(b"\x05READY"):
            raise ChannelBroken(f"the kernel's {self.name} socket refused the connection")
        if socket_type == "SUB":
            self._write_frame(b"\x01")  # ZMTP 3.0 subscription to every topic
            await self._writer.drain()

    def _write_frame(self, body: bytes, *, more: bool = False, command: bool = False) -> None:
        self._writer.write(b"".join(_frame(body, more=more, command=command)))

    async def send(self, frames: list[bytes]) -> None:
        """Send one multipart message; a kernel that stops reading breaks the channel."""
        self._check()
        last = len(frames) - 1
        # One write, so one system call (and one wake-up of the kernel) for the whole message.
        self._writer.write(
            b"".join([part for i, f in enumerate(frames) for part in _frame(f, more=i < last)])
        )
        transport = self._writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            return  # all of it went out at once: nothing to wait for
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await self._writer.drain()
        except (TimeoutError, OSError) as exc:
            self._break(ChannelBroken(f"the kernel stopped reading its {self.name} channel"))
            raise self.broken from exc  # type: ignore[misc]

    async def recv(self, timeout: float) -> Message | None:
        """The next message, or None if none came within ``timeout`` seconds.

        A message still arriving when the timeout ends keeps arriving; the next call gets it.
        """
        self._check()
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._read_message())
        pending = self._pending
        if not pending.done():
            if timeout <= 0:
                return None  # only what has already arrived: no trip through the event loop
            await asyncio.wait({pending}, timeout=timeout)
            if not pending.done():
                return None
        self._pending = None
        exc = asyncio.CancelledError() if pending.cancelled() else pending.exception()
        if exc is not None:
            broken = exc if isinstance(exc, ChannelBroken) else _lost(self.name, exc)
            self._break(broken)
            raise broken from exc
        return pending.result().claim()

    def _drop_unclaimed(self, pending: asyncio.Task[Message]) -> None:
        """A large message finished but not taken within its deadline gives its permit back.

        It arrived when nothing asked for it (a read left pending between executions), so it
        answers no request; the channel stays usable, at a message boundary.
        """
        if self._pending is not pending:
            return
        self._pending = None
        message = pending.result()
        message.release()
        log.warning(
            "dropped a %d-frame message the kernel sent on its %s channel: it was not taken "
            "within %g s of its permit",
            len(message.frames),
            self.name,
            STALL_SECONDS,
        )

    async def _header(self) -> tuple[int, int]:
        head = await self._reader.readexactly(2)
        flags = head[0]
        if flags & _LONG:
            rest = await self._reader.readexactly(7)
            (size,) = struct.unpack(">Q", head[1:] + rest)
        else:
            size = head[1]
        return flags, size

    async def _read_message(self) -> Message:
        frames: list[bytes] = []
        total = 0
        permit: PermitGate | None = None
        cap = self._limits.max_message_bytes
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        try:
            # No deadline until a permit is taken; from then on one deadline covers every read.
            async with asyncio.timeout(None) as stall:
                while True:
                    flags, size = await self._header()
                    if flags & _COMMAND:  # a PING or the like: not part of any message
                        if size > SMALL:
                            raise ChannelBroken(f"the kernel sent a {size}-byte command")
                        await self._reader.readexactly(size)
                        continue
                    total += size + FRAME_OVERHEAD
                    if total > cap or len(frames) >= MAX_FRAMES:
                        raise ChannelBroken(
                            f"the kernel sent a message larger than {_mb(cap)} on its "
                            f"{self.name} channel",
                            oversize=total,
                        )
                    if total > SMALL and permit is None:
                        if not await self._gate.acquire(PERMIT_WAIT_SECONDS):
                            raise ChannelBroken(
                                f"the engine had no room to receive a message of over "
                                f"{_mb(SMALL)} on the kernel's {self.name} channel within "
                                f"{PERMIT_WAIT_SECONDS:g} s",
                                oversize=total,
                            )
                        permit = self._gate
                        deadline = loop.time() + STALL_SECONDS
                        stall.reschedule(deadline)
                    if permit is None:
                        frames.append(await self._reader.readexactly(size))
                    else:
                        frames.append(await _read_large(self._reader, size))
                    if not flags & _MORE:
                        break
        except BaseException as exc:
            if permit is not None:
                permit.release()
            if isinstance(exc, TimeoutError):
                raise ChannelBroken(
                    f"the kernel stalled in the middle of a large message on its {self.name} "
                    f"channel (over {STALL_SECONDS:g} s)"
                ) from None
            raise
        message = Message(frames, permit)
        if deadline is not None:
            task = asyncio.current_task()
            assert task is not None
            message.expiry = loop.call_at(deadline, self._drop_unclaimed, task)
        return message

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def _break(self, reason: ChannelBroken) -> None:
        if self.broken is None:
            self.broken = reason
        self._close_transport()

    def _close_transport(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()

    def close(self) -> None:
        """Close the connection; a ``recv`` waiting on it ends with ChannelBroken."""
        pending, self._pending = self._pending, None
        if pending is not None:
            if not pending.done():
                pending.cancel()
            elif not pending.cancelled() and pending.exception() is None:
                pending.result().release()
        self._break(ChannelBroken(f"the engine closed the {self.name} channel"))


async def _read_large(reader: asyncio.StreamReader, size: int) -> bytes:
    """A frame body read into one buffer, so that it is never held twice while it arrives."""
    buf = bytearray(size)
    view = memoryview(buf)
    pos = 0
    while pos < size:
        chunk = await reader.read(min(size - pos, SMALL))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", size)
        view[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    view.release()
    return buf  # type: ignore[return-value]  # bytes-like: the decoder only reads it


def _frame(body: bytes, *, more: bool = False, command: bool = False) -> tuple[bytes, bytes]:
    """A frame's header and body."""
    flags = (_MORE if more else 0) | (_COMMAND if command else 0)
    if len(body) > 255:
        return struct.pack(">BQ", flags | _LONG, len(body)), body
    return struct.pack(">BB", flags, len(body)), body


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def _lost(name: str, exc: BaseException) -> ChannelBroken:
    if isinstance(exc, asyncio.CancelledError):
        return ChannelBroken(f"the engine closed the {name} channel")
    if isinstance(exc, asyncio.IncompleteReadError | ConnectionError | OSError):
        return ChannelBroken(f"the kernel closed its {name} channel")
    return ChannelBroken(f"the {name} channel failed: {type(exc).__name__}: {exc}"[:300])


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"
