"""The kernel's shell, iopub and control channels, over capped connections (see ``wire``).

Only these three are connected. The engine never allows stdin, and it watches the kernel process
rather than its heartbeat, so the stdin and hb sockets get no peer: nothing the kernel sends on
them reaches the engine at all.
"""

from __future__ import annotations

import logging
from collections import deque
from hmac import compare_digest
from typing import Any, Literal

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.session import DELIM, Session

from ..logs import EveryInterval
from .wire import ChannelBroken, Connection, PermitGate, WireLimits, shared_budget

log = logging.getLogger(__name__)
Channel = Literal["shell", "iopub", "control"]
_SOCKET_TYPES: dict[Channel, str] = {"shell": "DEALER", "iopub": "SUB", "control": "DEALER"}
MALFORMED: dict[str, Any] = {"parent_header": {}, "msg_type": "malformed", "content": {}}
"""Stands for a message that failed its checks: it answers no request."""
DIGEST_HISTORY = 1024
"""Signatures remembered against replays. The kernel holds the key, so replay protection means
little here; jupyter_client's default (65,536) would keep megabytes per flooded kernel."""
_PARTS = 5
"""signature, header, parent header, metadata, content (buffers may follow)."""


def address(info: KernelConnectionInfo, channel: Channel) -> str:
    port = info[f"{channel}_port"]  # type: ignore[literal-required]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    return f"tcp://{info['ip']}:{port}"


class KernelChannels:
    """Requests go out signed by ``session``; replies and output come back decoded."""

    def __init__(self, session: Session, limits: WireLimits) -> None:
        session.digest_history_size = DIGEST_HISTORY
        self.session = session
        self.limits = limits
        self._conns: dict[Channel, Connection] = {}
        self._decoder = Decoder(session)
        self._malformed = EveryInterval(log, "dropped malformed message(s) from a kernel")

    async def open(self, info: KernelConnectionInfo, timeout: float = 10.0) -> None:
        gate = PermitGate(shared_budget(self.limits))  # one permit at most for the whole kernel
        try:
            for channel, socket_type in _SOCKET_TYPES.items():
                self._conns[channel] = await Connection.open(
                    address(info, channel),
                    socket_type,
                    channel,
                    self.limits,
                    identity=self.session.bsession,
                    timeout=timeout,
                    gate=gate,
                )
        except BaseException:
            self.close()
            raise

    @property
    def broken(self) -> ChannelBroken | None:
        """The first channel found broken, if any (a broken channel stays broken)."""
        for conn in self._conns.values():
            if conn.broken is not None:
                return conn.broken
        return None

    async def send(
        self, channel: Channel, msg_type: str, content: dict[str, Any] | None = None
    ) -> str:
        """Send a request; its msg_id."""
        msg = self.session.msg(msg_type, content or {})
        frames = self.session.serialize(msg)
        await self._conn(channel).send(frames)
        msg_id: str = msg["header"]["msg_id"]
        return msg_id

    async def recv(
        self, channel: Channel, timeout: float, parent: str | None = None
    ) -> dict[str, Any] | None:
        """The next message of ``channel``, or None if none came within ``timeout`` seconds.

        With ``parent``, the content of a message answering another request is not decoded:
        a kernel flooding with messages of its own costs the engine little.
        """
        message = await self._conn(channel).recv(timeout)
        if message is None:
            return None
        try:
            return self._decoder.decode(message.frames, parent)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Code in the kernel can write to its sockets; what fails the checks answers nothing.
            self._malformed.note(str(exc)[:200])
            return MALFORMED
        finally:
            message.release()

    def _conn(self, channel: Channel) -> Connection:
        conn = self._conns.get(channel)
        if conn is None:
            raise ChannelBroken(f"the {channel} channel is not connected")
        return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()


class Decoder:
    """Signed messages from one kernel, checked and decoded.

    What jupyter_client's ``Session.deserialize`` checks, checked the same way (a signature,
    valid, never seen before; five parts at least), minus what the engine never reads: the
    header's dates are left as text (parsing them was a tenth of the engine's time per
    message), and metadata and buffers are dropped.
    """

    def __init__(self, session: Session) -> None:
        self._auth = session.auth
        self._unpack = session.unpack
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()

    def decode(self, frames: list[bytes], parent: str | None) -> dict[str, Any]:
        """The message; with ``parent``, the content of one answering another request is not
        decoded. ValueError, TypeError, KeyError or AttributeError if it fails a check."""
        parts = frames[frames.index(DELIM) + 1 :]
        if len(parts) < _PARTS:
            raise TypeError(f"malformed message, must have at least {_PARTS} elements")
        if self._auth is not None:
            self._check_signature(parts)
        header = self._unpack(parts[1])
        parent_header = self._unpack(parts[2])
        if not isinstance(parent_header, dict):
            parent_header = {}
        answers = parent is None or parent_header.get("msg_id") == parent
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": parent_header,
            "content": self._unpack(parts[4]) if answers else {},
        }

    def _check_signature(self, parts: list[bytes]) -> None:
        signature = bytes(parts[0])
        if not signature:
            raise ValueError("unsigned message")
        if signature in self._seen:
            raise ValueError(f"duplicate signature: {signature!r}")
        auth = self._auth.copy()  # type: ignore[union-attr]
        for part in parts[1:_PARTS]:
            auth.update(part)
        if not compare_digest(signature, auth.hexdigest().encode()):
            raise ValueError(f"invalid signature: {signature!r}")
        self._seen.add(signature)
        self._order.append(signature)
        if len(self._order) > DIGEST_HISTORY:
            self._seen.discard(self._order.popleft())
