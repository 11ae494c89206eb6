"""The session tables: one row per session, one per file a session exported or was given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import errors
from ..egress.policy import DISABLED, EgressPolicy
from ..paging import page_query
from ..sandbox.base import FileEntry
from ..store import Row, Store
from .models import SessionInfo, SessionStatus


class SessionRecords:
    """Sessions as rows of the store (``Store.session_rows``), and back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rows = store.session_rows

    # --- sessions ---

    def insert(
        self,
        info: SessionInfo,
        deadline: int,
        *,
        engine_owner: str | None = None,
        memory_limit_mb: int | None = None,
        network_policy: EgressPolicy = DISABLED,
    ) -> None:
        """A new session's row; ``expires_at`` stores the hard deadline, ``engine_owner`` the
        lease (lease.PRIMARY or a guest's) of the engine process that runs it."""
        row = info.model_dump(mode="json", exclude={"object", "notice", "network_policy"})
        self._rows.add(
            {
                **row,
                "owner": info.owner,
                "expires_at": deadline,
                "engine_owner": engine_owner,
                "memory_limit_mb": memory_limit_mb,
                "network_policy": network_policy.to_json() if network_policy.enabled else None,
            },
        )

    def update(self, session_id: str, fields: dict[str, Any]) -> None:
        self._rows.update(session_id, **fields)

    def owned(self, session_id: str, owner: str | None) -> SessionInfo:
        """The stored session; another owner's is reported like one that never existed."""
        missing = errors.SessionNotFound(f"no session with id {session_id!r}")
        return SessionInfo.from_row(self._rows.owned(session_id, owner, missing))

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
        return self._rows.by_sandbox(sandbox_id)

    def unfinished(self, engine_owners: Sequence[str | None]) -> list[Row]:
        """Sessions still active or starting that these engine owners ran (``None`` in the list
        stands for rows from before owners were recorded)."""
        return self._rows.unfinished(
            (SessionStatus.ACTIVE.value, SessionStatus.STARTING.value), engine_owners
        )

    def row(self, session_id: str) -> Row:
        return self._rows.owned(session_id, None, errors.SessionNotFound(session_id))

    def paused_of_thread(self, owner: str, thread_id: str) -> Row | None:
        return self._rows.in_status(SessionStatus.PAUSED.value, owner, thread_id)

    def paused_due(self, now: int) -> list[Row]:
        """Paused sessions whose keeping time or hard deadline has come."""
        return self._rows.due(SessionStatus.PAUSED.value, "paused_until", now)

    def ids_in_status(self, status: SessionStatus, *, held_here: bool = False) -> list[str]:
        """``held_here``: only those whose row names this engine's cluster node."""
        return self._rows.ids_in_status(status.value, held_here=held_here)

    def take(self, session_id: str, previous_node: str) -> bool:
        """Claim a live session of a node that is gone; False if another engine took it."""
        return self._rows.take(session_id, previous_node)

    def claim(self, session_id: str) -> None:
        """The session's row names this engine (and its node) as the one that holds it."""
        self._rows.claim(session_id)

    def ended_with_outputs(self) -> list[str]:
        """Sessions that ended with outputs still bound to them (a crash between the two)."""
        return self._rows.with_outputs((SessionStatus.CLOSED.value, SessionStatus.EXPIRED.value))

    def expire(self, session_id: str, notice: str | None = None) -> None:
        fields: dict[str, Any] = {"status": SessionStatus.EXPIRED.value, "running_since": None}
        if notice is not None:
            fields["notice"] = notice
        self._rows.update(session_id, **fields)

    def set_running(self, session_id: str, since: float | None) -> None:
        """Whether an execution is running: a later process reports it as interrupted."""
        self._rows.update(session_id, running_since=since)

    # --- session_files ---

    def remember_file(self, session_id: str, entry: FileEntry, file_id: str) -> None:
        self._rows.remember_file(
            {
                "session_id": session_id,
                "path": entry.path,
                "file_id": file_id,
                "size": entry.size,
                "mtime_ns": entry.mtime_ns,
            }
        )

    def files(self, session_id: str) -> list[Row]:
        return self._rows.files(session_id)
