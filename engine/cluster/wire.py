"""What crosses Ray between a replica and a node agent: plain data only (dicts of JSON types,
bytes), never engine objects, so that both ends may run different processes and versions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .. import errors
from ..sessions import SessionInfo

Wire = dict[str, Any]


def info_out(info: SessionInfo) -> Wire:
    """A session's info with its owner, which its JSON form leaves out on purpose."""
    return {**info.model_dump(mode="json"), "owner": info.owner}


def info_in(data: Wire) -> SessionInfo:
    info = SessionInfo.model_validate(data)
    info.owner = data.get("owner", "")
    return info


def error_out(exc: errors.EngineError) -> Wire:
    return {"error": type(exc).__name__, "message": str(exc)}


def raise_if_error(reply: Any) -> Any:
    """A node agent answers an engine error as ``error_out``'s dict: raise it here as the same
    class (by name, among the engine's own), or as EngineError if the name is unknown."""
    if isinstance(reply, dict) and set(reply) == {"error", "message"}:
        cls = getattr(errors, str(reply["error"]), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.EngineError)):
            cls = errors.EngineError
        exc = cls.__new__(cls)
        Exception.__init__(exc, str(reply["message"]))
        raise exc
    return reply


class NodeReport(BaseModel):
    """What a node agent says about its host; the replicas place sessions by it."""

    node_id: str
    address: str = ""
    pid: int = 0
    """The node agent's process."""
    docker_ok: bool
    docker_error: str | None = None
    capacity: int
    sessions: int
    draining: bool = False
    infos: list[Wire] = Field(default_factory=list)
    """The info (``info_out``) of each of its live and paused sessions."""

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.sessions)
