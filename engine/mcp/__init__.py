"""The MCP face: a stateful, isolated sandbox per MCP client (tools, file resources, sessions
in both protocol eras). engine/api/mcp.py serves it over HTTP; ``sandbox-engine mcp`` over stdio."""

from .server import INLINE_UPLOAD_BYTES, TENANT_SCOPE_KEY, SandboxTools, build_server
from .uploads import UploadGrant, UploadSigner

__all__ = [
    "INLINE_UPLOAD_BYTES",
    "TENANT_SCOPE_KEY",
    "SandboxTools",
    "UploadGrant",
    "UploadSigner",
    "build_server",
]
