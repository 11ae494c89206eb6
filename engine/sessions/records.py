"""The session tables: one row per session, one per file a session exported or was given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import errors
from ..paging import page_query
from ..sandbox.base import FileEntry
from ..store import Row, Store
from .models import SessionInfo, SessionStatus


class SessionRecords:
    """Every SQL statement about sessions, kept in one place."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- sessions ---

    def insert(
        self,
        info: SessionInfo,
        deadline: int,
        *,
        engine_owner: str | None = None,
        memory_limit_mb: int | None = None,
    ) -> None:
        """A new session's row; ``expires_at`` stores the hard deadline, ``engine_owner`` the
        lease (lease.PRIMARY or a guest's) of the engine process that runs it."""
        row = info.model_dump(mode="json", exclude={"object", "notice"})
        self._store.insert(
            "sessions",
            {
                **row,
                "owner": info.owner,
                "expires_at": deadline,
                "engine_owner": engine_owner,
                "memory_limit_mb": memory_limit_mb,
            },
        )

    def update(self, session_id: str, fields: dict[str, Any]) -> None:
        self._store.update("sessions", "id", session_id, **fields)

    def owned(self, session_id: str, owner: str | None) -> SessionInfo:
        """The stored session; another owner's is reported like one that never existed."""
        missing = errors.SessionNotFound(f"no session with id {session_id!r}")
        return SessionInfo.from_row(self._store.owned("sessions", session_id, owner, missing))

    def page(
        self,
        filters: dict[str, Any],
        *,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> tuple[list[Row], bool]:
        # A session that stops being live while a client pages stays a valid cursor.
        return page_query(
            self._store,
            "sessions",
            filters,
            limit=limit,
            order=order,
            after=after,
            before=before,
            cursor_scope=("owner",),
        )

    def by_sandbox(self, sandbox_id: str) -> Row | None:
        return self._store.one("SELECT * FROM sessions WHERE sandbox_id = ?", (sandbox_id,))

    def unfinished(self, engine_owners: Sequence[str | None]) -> list[Row]:
        """Sessions still active or starting that these engine owners ran (``None`` in the list
        stands for rows from before owners were recorded)."""
        named = [o for o in engine_owners if o is not None]
        marks = ", ".join("?" for _ in named) or "NULL"
        legacy = " OR engine_owner IS NULL" if None in engine_owners else ""
        return self._store.all(
            "SELECT * FROM sessions WHERE status IN (?, ?) "
            f"AND (engine_owner IN ({marks}){legacy})",
            (SessionStatus.ACTIVE.value, SessionStatus.STARTING.value, *named),
        )

    def ended_with_outputs(self) -> list[str]:
        """Sessions that ended with outputs still bound to them (a crash between the two)."""
        rows = self._store.all(
            "SELECT DISTINCT f.session_id AS id FROM files f JOIN sessions s "
            "ON f.session_id = s.id WHERE f.expires_with_session = 1 AND s.status IN (?, ?)",
            (SessionStatus.CLOSED.value, SessionStatus.EXPIRED.value),
        )
        return [r["id"] for r in rows]

    def expire(self, session_id: str, notice: str | None = None) -> None:
        fields: dict[str, Any] = {"status": SessionStatus.EXPIRED.value, "running_since": None}
        if notice is not None:
            fields["notice"] = notice
        self._store.update("sessions", "id", session_id, **fields)

    def set_running(self, session_id: str, since: float | None) -> None:
        """Whether an execution is running: a later process reports it as interrupted."""
        self._store.update("sessions", "id", session_id, running_since=since)

    # --- session_files ---

    def remember_file(self, session_id: str, entry: FileEntry, file_id: str) -> None:
        self._store.insert(
            "session_files",
            {
                "session_id": session_id,
                "path": entry.path,
                "file_id": file_id,
                "size": entry.size,
                "mtime_ns": entry.mtime_ns,
            },
            replace=True,
        )

    def files(self, session_id: str) -> list[Row]:
        return self._store.all("SELECT * FROM session_files WHERE session_id = ?", (session_id,))
