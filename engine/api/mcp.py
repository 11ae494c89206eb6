"""MCP over streamable HTTP at ``/mcp``, under the service's API keys, plus the signed upload
route that ``upload_file`` hands out for files too large to send inline.

The SDK's session manager runs inside the app's lifespan (Starlette does not run a mounted
app's lifespan). The Host and Origin checks are the service's own (``hosts.HostGuard``, the
same list as every route, with Origin checked on every method as MCP asks), in place of the
SDK's guard. SSE responses, not ``json_response``: JSON mode would drop
the progress notifications of long runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Request
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ..config import Settings
from ..mcp import TENANT_SCOPE_KEY, SandboxTools, UploadSigner, build_server
from ..services import Engine
from ..sessions import SessionFile
from .auth import KeyRing, Tenant, tenant_of
from .deps import EngineDep, FileBodyDep, file_body_doc
from .errors import error_body, send_json


class McpEndpoint:
    """The ASGI app at ``/mcp``: a key check, then the SDK's session manager."""

    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        self.settings = settings
        self.keys = keys
        self.signer = UploadSigner()
        self.tools: SandboxTools | None = None
        self._manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def serve(self, engine: Engine) -> AsyncIterator[None]:
        self.tools = SandboxTools(engine.runtime, signer=self.signer)
        server = build_server(self.tools)
        # Its private low-level server is what the manager drives (as streamable_http_app does).
        manager = StreamableHTTPSessionManager(
            app=server._lowlevel_server,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            session_idle_timeout=self.settings.mcp_idle_timeout,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    def route(self) -> Route:
        return Route(
            "/mcp", endpoint=self, methods=["GET", "POST", "DELETE"], include_in_schema=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._manager is None or self.tools is None:
            await send_json(send, 503, error_body("MCP is not running", "server_error"))
            return
        tenant = tenant_of(self.keys, Headers(scope=scope))
        if tenant is None:
            await send_json(
                send,
                401,
                error_body(
                    "missing or invalid API key", "invalid_request_error", "invalid_api_key"
                ),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        scope = {**scope, TENANT_SCOPE_KEY: tenant}
        # The SDK binds each MCP session to the credential that opened it.
        scope["user"] = AuthenticatedUser(
            AccessToken(token="", client_id=tenant or "local", scopes=[])
        )
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self._manager.handle_request(scope, receive, watch)
        connection = dict(scope["headers"]).get(b"mcp-session-id")
        if scope["method"] == "DELETE" and connection and status < 400:
            await self.tools.binding.end_connection(tenant, connection.decode("latin-1"))


router = APIRouter(tags=["mcp"])


@router.post(
    "/v1/mcp/uploads/{token}",
    summary="Upload a file through a signed URL from the MCP upload_file tool",
    openapi_extra=file_body_doc(),
)
async def upload(
    token: Annotated[str, Path(description="The token in the URL upload_file returned.")],
    request: Request,
    engine: EngineDep,
    tenant: Tenant,
    body: FileBodyDep,
) -> SessionFile:
    endpoint: McpEndpoint = request.app.state.mcp
    grant = endpoint.signer.verify(token, tenant)
    _, data = body.file()
    session = engine.get_session(grant.session_id, tenant)
    return await session.upload(grant.filename, data)
