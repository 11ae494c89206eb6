"""What a session looks like from outside: its status, its public info, the files it holds."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, Field

from ..egress.policy import EgressPolicy
from ..sandbox.base import DATA_MOUNT, FileEntry


class SessionOptions(TypedDict, total=False):
    """A new session's options: its ``owner`` (tenant, "" by default); ``file_ids``, placed
    under /mnt/data; ``idle_timeout`` and ``ttl`` (seconds) and ``memory_limit_mb``, which
    override the engine's defaults; ``network_policy`` (``egress.EgressPolicy`` or its JSON
    shape), ``disabled`` unless given, checked against ``SANDBOX_EGRESS_ALLOWED_DOMAINS``."""

    owner: str
    file_ids: Iterable[str]
    idle_timeout: int | None
    ttl: int | None
    memory_limit_mb: int | None
    network_policy: EgressPolicy | Mapping[str, Any] | None


class SessionStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    PAUSED = "paused"
    """Its variables and files are saved and its sandbox is gone; any use resumes it."""
    CLOSED = "closed"
    EXPIRED = "expired"


class SessionInfo(BaseModel):
    id: str
    object: Literal["session"] = "session"
    thread_id: str
    status: SessionStatus
    created_at: int
    last_active_at: int
    expires_at: int
    """When the session ends unless there is activity or an extension: the earlier of its hard
    deadline and ``last_active_at + idle_timeout``."""
    idle_timeout: int
    notice: str | None = None
    """What happened to the session that its next execution result will also say: the engine
    restarted under a running execution, or its sandbox could not be re-adopted."""
    network_policy: dict[str, Any] = Field(default_factory=lambda: {"type": "disabled"})
    """Where its sandbox may connect (``egress.EgressPolicy.public``: no secret values)."""
    owner: str = Field(default="", exclude=True)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SessionInfo:
        """The stored row keeps the hard deadline in ``expires_at``; the info shows the earlier
        of that and the idle deadline, or, for a paused session, when it stops being kept."""
        if row["status"] == SessionStatus.PAUSED.value and row.get("paused_until") is not None:
            expires = row["paused_until"]
        else:
            expires = min(row["expires_at"], row["last_active_at"] + row["idle_timeout"])
        policy = EgressPolicy.from_json(row.get("network_policy")).public()
        return cls.model_validate({**row, "expires_at": expires, "network_policy": policy})


class SessionFile(BaseModel):
    """A file in a session's /mnt/data."""

    path: str
    filename: str
    bytes: int
    modified_at: int
    file_id: str | None = None
    """The file object it came from or was exported to, while its content is unchanged."""

    @classmethod
    def of(cls, entry: FileEntry, file_id: str | None = None) -> SessionFile:
        return cls(
            path=f"{DATA_MOUNT}/{entry.path}",
            filename=posixpath.basename(entry.path),
            bytes=entry.size,
            modified_at=entry.mtime_ns // 1_000_000_000,
            file_id=file_id,
        )


def container_file_id(session_id: str, path: str) -> str:
    """The id a session's file has in the Containers API when no file object names it."""
    digest = hashlib.sha256(f"{session_id}:{path}".encode()).hexdigest()
    return f"cfile_{digest[:32]}"
