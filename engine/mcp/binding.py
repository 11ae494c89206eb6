"""Which sandbox an MCP tool call acts on, in both protocol eras.

A 2026-07-28 client has no MCP session: it mints sandbox ids with ``create_session`` and passes
one to every tool. A handshake-era client (2025 revisions, ``Mcp-Session-Id``) that passes no id
gets one sandbox for its MCP session, closed when the client ends it or by the idle timeout. Over
stdio the process is the connection: one sandbox for the life of the process.

Sandboxes are engine sessions owned by the caller's tenant; the thread id says which MCP role
made them, so that an id the MCP face never issued is refused like an unknown one.
"""

from __future__ import annotations

from .. import errors
from ..runtime import Runtime
from ..sessions import Session
from ..thread_ids import made_by_mcp, mcp_connection_thread_id, mcp_minted_thread_id


class SessionBinding:
    def __init__(self, engine: Runtime, idle_timeout: int) -> None:
        self.engine = engine
        self.idle_timeout = idle_timeout

    async def mint(self, tenant: str) -> Session:
        return await self.engine.session(
            mcp_minted_thread_id(), owner=tenant, idle_timeout=self.idle_timeout
        )

    def issued(self, tenant: str, session_id: str) -> Session:
        """A live sandbox this face issued to ``tenant``; anything else is "not found"."""
        if not isinstance(session_id, str) or not session_id.strip():
            raise errors.InvalidRequest("session_id must be a non-empty string")
        try:
            session = self.engine.sessions.get(session_id, tenant)
        except errors.NotFound:
            raise errors.SessionNotFound(
                f"no sandbox with id {session_id!r}: call create_session for one"
            ) from None
        if not made_by_mcp(session.thread_id):
            raise errors.SessionNotFound(
                f"no sandbox with id {session_id!r}: call create_session for one"
            )
        return session

    async def for_connection(self, tenant: str, connection_id: str) -> Session:
        """The sandbox of one MCP session (created on its first use)."""
        return await self.engine.session(
            mcp_connection_thread_id(connection_id), owner=tenant, idle_timeout=self.idle_timeout
        )

    async def end_connection(self, tenant: str, connection_id: str) -> None:
        """The MCP session ended: its sandbox goes too (minted ones stay until closed)."""
        session = self.engine.sessions.by_thread(mcp_connection_thread_id(connection_id), tenant)
        if session is not None:
            await self.engine.sessions.close(session.id, tenant)
