"""A session's face: which face of the service made it, as its thread id tells.

- native (``/v1/sessions``, the library) and Azure (``?identifier=``): the caller's own thread id,
  as given;
- OpenAI containers (``/v1/containers``, and the containers a response starts):
  ``container_<24 hex>/<name>``, so names need not be unique and survive restarts with the row;
- MCP: ``mcp:<hex>`` for a sandbox minted by ``create_session``, ``mcp-connection:<id>`` for the
  one bound to an MCP session (or a stdio process).
"""

from __future__ import annotations

import re
import uuid

MAX_THREAD_ID = 256
CONTAINER_PREFIX = "container_"
_CONTAINER = re.compile(r"container_[0-9a-f]{24}/(.+)", re.DOTALL)
MAX_CONTAINER_NAME = MAX_THREAD_ID - len(CONTAINER_PREFIX) - 25
MCP_MINTED = "mcp:"
MCP_CONNECTION = "mcp-connection:"


def container_thread_id(name: str) -> str:
    """A fresh container's thread id, for a container called ``name``."""
    return f"{CONTAINER_PREFIX}{uuid.uuid4().hex[:24]}/{name}"


def container_name(thread_id: str) -> str:
    """The name a session shows as a container: a container's own, else its thread id."""
    match = _CONTAINER.fullmatch(thread_id)
    return match.group(1) if match else thread_id


def mcp_minted_thread_id() -> str:
    return f"{MCP_MINTED}{uuid.uuid4().hex}"


def mcp_connection_thread_id(connection_id: str) -> str:
    return f"{MCP_CONNECTION}{connection_id}"


def made_by_mcp(thread_id: str) -> bool:
    return thread_id.startswith((MCP_MINTED, MCP_CONNECTION))
