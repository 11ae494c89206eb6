"""The kernel's shell, iopub and control channels, over capped connections (see ``wire``).

Only these three are connected. The engine never allows stdin, and it watches the kernel process
rather than its heartbeat, so the stdin and hb sockets get no peer: nothing the kernel sends on
them reaches the engine at all.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.session import Session

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
            _, parts = self.session.feed_identities(message.frames, copy=True)
            msg = self.session.deserialize(parts, content=False, copy=True)
            if parent is not None and _parent_id(msg) != parent:
                msg["content"] = {}
            else:
                msg["content"] = self.session.unpack(msg["content"])
            if not isinstance(msg.get("parent_header"), dict):
                msg["parent_header"] = {}
            return msg
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


def _parent_id(msg: dict[str, Any]) -> object:
    parent = msg.get("parent_header")
    return parent.get("msg_id") if isinstance(parent, dict) else None
