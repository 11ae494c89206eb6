"""The exception hierarchy every layer raises, and ``LastError``: the error an API object
reports it ended with (a run's, a vector store file's)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

Code = TypeVar("Code")


class LastError(BaseModel, Generic[Code]):
    """``last_error``: a code (of those ``Code`` allows) and a message."""

    code: Code
    message: str


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """A validation failure's first problem: where (a dotted path, "" for the whole) and what."""
    problem = exc.errors()[0]
    return ".".join(str(p) for p in problem["loc"]), problem["msg"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "engine_error"


class InvalidRequest(EngineError, ValueError):
    """An argument has the wrong type or value."""

    code = "invalid_request"


class ConversationLocked(InvalidRequest):
    """A response of the conversation is still running (OpenAI answers 400 too)."""

    code = "conversation_locked"
    param = "conversation"


class NotFound(EngineError, LookupError):
    code = "not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class SessionClosed(EngineError):
    """The session was closed or expired; open a new one."""

    code = "session_closed"


class SandboxError(EngineError):
    """The sandbox backend failed (Docker unreachable, container gone, ...)."""

    code = "sandbox_error"


class BackendUnavailable(SandboxError):
    code = "backend_unavailable"


class SandboxUnavailable(SandboxError):
    """A sandbox could not be made or is gone before it was used (a missing volume, Docker
    refusing the container): try again later."""

    code = "sandbox_unavailable"


class SnapshotCorrupt(EngineError):
    """A paused session's saved namespace is missing or does not match its checksum."""

    code = "snapshot_corrupt"


class DataFolderInUse(EngineError):
    """Another engine process holds the data folder's lease (``engine.lock``)."""

    code = "data_folder_in_use"


class ClusterFull(BackendUnavailable):
    """No healthy, non-draining node of the cluster has a free slot (HTTP 503)."""

    code = "cluster_full"


class NodeUnreachable(BackendUnavailable):
    """A session's node agent did not answer within the engine's deadline, or is gone; what
    its kernel held is lost (HTTP 503)."""

    code = "node_unreachable"


class ImageNotFound(SandboxError):
    code = "image_not_found"


class KernelStartError(SandboxError):
    code = "kernel_start_failed"


class SandboxLost(SandboxError):
    """The sandbox itself is gone (container removed or stopped from outside)."""

    code = "sandbox_lost"
    out_of_memory = False
    """Whether the OOM killer took it (under gVisor it ends the whole sandbox)."""


class ImageBuildError(EngineError):
    code = "image_build_failed"


class FileNotFound(NotFound):
    code = "file_not_found"


class LimitExceeded(EngineError):
    """A cap was hit: file size, file count, bytes per session, live sessions."""

    code = "limit_exceeded"


class QuotaExceeded(LimitExceeded):
    """A tenant's quota is used up: file objects (count or bytes), live sessions, or the memory
    its live sessions commit. ``setting`` names the variable that raises it (HTTP 403)."""

    code = "quota_exceeded"

    def __init__(self, what: str, limit: int, unit: str, setting: str) -> None:
        self.limit, self.setting = limit, setting
        super().__init__(
            f"quota exceeded: {what}; this tenant's limit is {limit}{unit} (setting {setting})"
        )


class SessionBusy(EngineError):
    """The session is running another execution and the caller would not wait longer."""

    code = "session_busy"


class PayloadTooLarge(LimitExceeded):
    """A file or body is bigger than its cap, or a session's /mnt/data is full."""

    code = "payload_too_large"


class StorageFull(EngineError):
    """The engine's own data folder (file objects, the database) has no room left."""

    code = "storage_full"


class RunLocked(InvalidRequest):
    """A thread already has an active run."""

    code = "thread_locked"


class AccessDenied(EngineError):
    """A credential was presented for a resource but is not its own (a sandbox's token)."""

    code = "access_denied"


class Conflict(EngineError):
    """The resource is not in a state that allows this (a sandbox that is already paused)."""

    code = "conflict"


class SandboxFileError(EngineError):
    """A file operation inside a sandbox failed; ``reason`` says why in Connect's words
    (``not_found``, ``already_exists``, ``permission_denied``, ``invalid_argument``)."""

    code = "sandbox_file_error"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelError(EngineError):
    """The model endpoint failed or answered something unusable."""

    code = "model_error"


class APIError(Exception):
    """An HTTP-level error raised by the API layer itself (auth, body limits)."""

    def __init__(self, status: int, message: str, type_: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


class BodyTooLarge(Exception):
    """A request body grew past its cap while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
