"""The MCP server: tools over a tenant's sandboxes, a resource template for their files, and
instructions for the model. Transport-free: engine/api/mcp.py serves it over streamable HTTP,
``sandbox-engine mcp`` over stdio."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import IO, Annotated, TypeVar
from urllib.parse import quote

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, ToolAnnotations
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from .. import errors
from ..config import MB, Settings
from ..delegation import through
from ..results import ExecutionResult, OutputEvent, StreamEvent
from ..runtime import Runtime
from ..sessions import Session
from .binding import SessionBinding
from .render import FILE_TEMPLATE, ExecuteOutput, file_uri, render
from .uploads import UploadSigner

TENANT_SCOPE_KEY = "sandbox_engine.tenant"
"""Where engine/api/mcp.py leaves the authenticated tenant in the ASGI scope."""
MAX_CODE_CHARS = 1_000_000
INLINE_UPLOAD_BYTES = 2 * 1024 * 1024
"""Largest inline upload: its base64 must fit the transport's 4 MiB body cap."""
PROGRESS_EVERY = 0.25
T = TypeVar("T")

INSTRUCTIONS = """\
Sandbox Engine runs Python 3 code in an isolated Jupyter kernel, one per sandbox.

State: a sandbox keeps variables, imports and files between `execute` calls until it is \
restarted (variables go, files stay) or closed (everything goes). Over a stateful MCP session \
(or stdio) the tools act on your connection's own sandbox when you pass no `session_id`; \
otherwise call `create_session` once and pass its `session_id` to every tool.

Files: the working folder is /mnt/data. Put inputs there with `upload_file`; anything the code \
writes there comes back as a resource link (`sandbox://<session_id>/files/<path>`) that you can \
read as a resource. Figures (matplotlib `plt.show()`, display of images) come back as PNG images.

Installed: numpy, pandas, scipy, matplotlib, pillow, openpyxl, python-docx, python-pptx, pypdf. \
No network access: pip install and downloads fail; work with what is installed and uploaded. \
Each call has a timeout (seconds, default {default_timeout:g}, at most {max_timeout:g}); a \
cancelled call interrupts the code.
"""

RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
ENDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
SessionArg = Annotated[
    str | None,
    Field(description="A sandbox id from create_session; omit to use this connection's own."),
]


class SessionOut(BaseModel):
    session_id: str
    status: str
    expires_at: int


class FileInfo(BaseModel):
    path: str
    filename: str
    bytes: int
    uri: str
    file_id: str | None = None


class FilesOut(BaseModel):
    session_id: str
    files: list[FileInfo]


class UploadOut(BaseModel):
    session_id: str
    path: str | None = None
    bytes: int | None = None
    uri: str | None = None
    upload_url: str | None = Field(
        default=None,
        description="For large files: POST the file here as multipart/form-data, in a part "
        "named `file` (with your API key), before expires_at; it then appears at `path`.",
    )
    expires_at: int | None = None


class DoneOut(BaseModel):
    session_id: str
    done: str


@dataclass(eq=False)
class SandboxTools:
    """The tools, bound to an engine. ``local_tenant`` set: stdio, every caller is that tenant
    and the process is one connection. Unset: HTTP, the tenant comes from the ASGI scope."""

    engine: Runtime
    _: KW_ONLY
    local_tenant: str | None = None
    signer: UploadSigner | None = None
    binding: SessionBinding = field(init=False)
    _process_connection: str = field(init=False, default_factory=lambda: uuid.uuid4().hex)

    settings = through[Settings]("engine.settings")

    def __post_init__(self) -> None:
        self.binding = SessionBinding(self.engine, self.settings.mcp_idle_timeout)

    # --- who is calling, and which sandbox ---

    def tenant(self, ctx: Context) -> str:
        if self.local_tenant is not None:
            return self.local_tenant
        request = ctx.request_context.request
        tenant = None if request is None else request.scope.get(TENANT_SCOPE_KEY)
        if not isinstance(tenant, str):
            raise ToolError("unauthenticated request")  # the ASGI layer lets none through
        return tenant

    def connection_id(self, ctx: Context) -> str | None:
        """The handshake-era MCP session (or the stdio process) this call belongs to."""
        if self.local_tenant is not None:
            return self._process_connection
        if ctx.request_context.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return None
        headers = ctx.headers or {}
        return headers.get("mcp-session-id")

    async def sandbox(self, ctx: Context, session_id: str | None) -> Session:
        tenant = self.tenant(ctx)
        if session_id is not None:
            return self.binding.issued(tenant, session_id)
        connection = self.connection_id(ctx)
        if connection is None:
            raise ToolError(
                "no session_id: this connection has no MCP session; call create_session and "
                "pass its session_id"
            )
        return await self.binding.for_connection(tenant, connection)

    # --- the tools ---

    async def create_session(self, ctx: Context) -> SessionOut:
        """Start a new sandbox (its own kernel and /mnt/data) and return its session_id."""
        session = await _guard(self.binding.mint(self.tenant(ctx)))
        return _session_out(session)

    async def execute(
        self,
        code: Annotated[str, Field(description="Python code to run in the kernel.")],
        ctx: Context,
        session_id: SessionArg = None,
        timeout: Annotated[
            float | None, Field(description="Seconds the code may run.", gt=0)
        ] = None,
    ) -> Annotated[CallToolResult, ExecuteOutput]:
        """Run Python code in the sandbox's kernel (state persists between calls). Returns
        stdout, stderr, the value of the last expression, any error with its traceback, figures
        as images and links to files written under /mnt/data. Progress notifications carry the
        latest output line; cancelling the call interrupts the code."""
        if len(code) > MAX_CODE_CHARS:
            raise ToolError(f"the code is longer than {MAX_CODE_CHARS} characters")
        session = await _guard(self.sandbox(ctx, session_id))
        progress = _Progress(ctx)
        try:
            result = await _guard(self._run(session, code, timeout, progress))
        finally:
            await progress.close()
        return render(session.id, result, self.settings.llm_tool_output_chars)

    async def _run(
        self, session: Session, code: str, timeout: float | None, progress: _Progress
    ) -> ExecutionResult:
        """A cancelled call (the client cancelled, or closed the stream) interrupts the kernel.
        The SDK cancels through anyio scopes, which re-cancel every await: the execution runs in
        a task of its own, cancelled once, so that it can settle the kernel before it ends."""
        task = asyncio.ensure_future(session.execute(code, timeout, progress.on_event))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task}, timeout=self.settings.interrupt_grace + 30)
            raise

    async def upload_file(
        self,
        filename: Annotated[str, Field(description="Name under /mnt/data, e.g. data.csv.")],
        ctx: Context,
        content_base64: Annotated[
            str | None, Field(description="The bytes, base64 (up to 2 MiB decoded).")
        ] = None,
        session_id: SessionArg = None,
    ) -> UploadOut:
        """Put a file into /mnt/data. Send small files inline as base64; omit content_base64
        to get a signed upload_url on the HTTP API for a large one."""
        session = await _guard(self.sandbox(ctx, session_id))
        if content_base64 is None:
            return self._upload_url(ctx, session, filename)
        if len(content_base64) > INLINE_UPLOAD_BYTES * 4 // 3 + 4:
            raise ToolError(
                f"inline uploads are limited to {INLINE_UPLOAD_BYTES} bytes: omit "
                "content_base64 to get an upload_url"
            )
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ToolError("content_base64 is not valid base64") from None
        entry = await _guard(session.upload(filename, data))
        return UploadOut(
            session_id=session.id,
            path=entry.path,
            bytes=entry.bytes,
            uri=file_uri(session.id, entry.path),
        )

    def _upload_url(self, ctx: Context, session: Session, filename: str) -> UploadOut:
        request = ctx.request_context.request if self.local_tenant is None else None
        if self.signer is None or request is None:
            raise ToolError("upload URLs need the HTTP service; send content_base64 instead")
        from ..names import check_filename

        name = _guard_sync(lambda: check_filename(filename))
        token, expires = self.signer.sign(session.id, session.owner, name)
        base = str(request.base_url).rstrip("/")
        return UploadOut(
            session_id=session.id,
            path=f"/mnt/data/{name}",
            upload_url=f"{base}/v1/mcp/uploads/{token}",
            expires_at=expires,
        )

    async def list_files(self, ctx: Context, session_id: SessionArg = None) -> FilesOut:
        """List the files under /mnt/data, each with a resource URI to read it."""
        session = await _guard(self.sandbox(ctx, session_id))
        files = await _guard(session.list_files())
        return FilesOut(
            session_id=session.id,
            files=[
                FileInfo(
                    path=f.path,
                    filename=f.filename,
                    bytes=f.bytes,
                    uri=file_uri(session.id, f.path),
                    file_id=f.file_id,
                )
                for f in files
            ],
        )

    async def interrupt(self, ctx: Context, session_id: SessionArg = None) -> DoneOut:
        """Interrupt the code running in the sandbox (KeyboardInterrupt); state is kept."""
        session = await _guard(self.sandbox(ctx, session_id))
        await _guard(session.interrupt())
        return DoneOut(session_id=session.id, done="interrupted")

    async def restart(self, ctx: Context, session_id: SessionArg = None) -> DoneOut:
        """Restart the kernel: variables and imports are lost, files in /mnt/data stay."""
        session = await _guard(self.sandbox(ctx, session_id))
        await _guard(session.restart())
        return DoneOut(session_id=session.id, done="restarted")

    async def close(self, ctx: Context, session_id: SessionArg = None) -> DoneOut:
        """Close the sandbox: its kernel, variables and files are gone."""
        session = await _guard(self.sandbox(ctx, session_id))
        await _guard(self.engine.sessions.close(session.id, session.owner))
        return DoneOut(session_id=session.id, done="closed")

    async def read_file(self, session_id: str, path: str, ctx: Context) -> bytes:
        """The file's bytes, up to ``mcp_max_read_mb``: its size is checked on the open file
        before reading, and the read stops one byte past the cap, so a file that grows between
        the two cannot get more into the engine."""
        cap = self.settings.mcp_max_read_mb * MB
        try:
            session = self.binding.issued(self.tenant(ctx), session_id)
            f = await session.open_file(path)
        except errors.EngineError as exc:
            raise ResourceError(str(exc)) from None
        with f:
            size = _size_of(f)
            if size > cap:
                raise ResourceError(self._too_big(ctx, session_id, path, f"is {size} bytes"))
            data = await asyncio.to_thread(f.read, cap + 1)
        if len(data) > cap:
            raise ResourceError(self._too_big(ctx, session_id, path, "grew while it was read"))
        return data

    def _too_big(self, ctx: Context, session_id: str, path: str, what: str) -> str:
        route = f"/v1/sessions/{session_id}/files/content?path={quote(path, safe='/')}"
        request = ctx.request_context.request if self.local_tenant is None else None
        if request is not None:
            where = f"GET {str(request.base_url).rstrip('/')}{route} (with your API key)"
        else:
            where = f"the HTTP API's GET {route}"
        return (
            f"/mnt/data/{path} {what}, over the {self.settings.mcp_max_read_mb} MB that an MCP "
            f"resource read returns (SANDBOX_MCP_MAX_READ_MB): download it with {where}, or "
            "have the code read or summarise it with `execute`"
        )


def build_server(tools: SandboxTools) -> MCPServer:
    s = tools.settings
    server: MCPServer = MCPServer(
        "sandbox-engine",
        title="Sandbox Engine",
        version="0.1.0",
        log_level="WARNING",  # it configures logging only where nothing else did
        instructions=INSTRUCTIONS.format(
            default_timeout=s.default_timeout, max_timeout=s.max_timeout
        ),
    )
    server.add_tool(tools.create_session, title="New sandbox", annotations=RUNS)
    server.add_tool(tools.execute, title="Run Python", annotations=RUNS)
    server.add_tool(tools.upload_file, title="Upload a file", annotations=RUNS)
    server.add_tool(tools.list_files, title="List files", annotations=READS)
    server.add_tool(tools.interrupt, title="Interrupt", annotations=RUNS)
    server.add_tool(tools.restart, title="Restart the kernel", annotations=ENDS)
    server.add_tool(tools.close, title="Close the sandbox", annotations=ENDS)
    server.resource(
        FILE_TEMPLATE,
        name="sandbox-file",
        title="A file in a sandbox's /mnt/data",
        mime_type="application/octet-stream",
    )(tools.read_file)
    return server


class _Progress:
    """Sends the latest output line as a progress notification, at most every 0.25 s."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._line: str | None = None
        self._count = 0
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._send())

    def on_event(self, event: OutputEvent) -> None:
        if isinstance(event, StreamEvent):
            lines = [line for line in event.text.splitlines() if line.strip()]
            if lines:
                self._line = lines[-1][:500]
                self._count += 1
                self._wake.set()

    async def _send(self) -> None:
        sent = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(max(0.0, sent + PROGRESS_EVERY - time.monotonic()))
            sent = time.monotonic()
            with contextlib.suppress(Exception):  # a gone client must not fail the run
                await self._ctx.report_progress(self._count, None, self._line)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _size_of(f: IO[bytes]) -> int:
    return os.fstat(f.fileno()).st_size


def _session_out(session: Session) -> SessionOut:
    info = session.info
    return SessionOut(session_id=session.id, status=info.status.value, expires_at=info.expires_at)


async def _guard(step: Awaitable[T]) -> T:
    """The engine's refusals (unknown id, closed sandbox, limits) are error results."""
    try:
        return await step
    except errors.EngineError as exc:
        raise ToolError(str(exc)) from None


def _guard_sync(step: Callable[[], T]) -> T:
    try:
        return step()
    except errors.EngineError as exc:
        raise ToolError(str(exc)) from None


__all__ = ["INLINE_UPLOAD_BYTES", "TENANT_SCOPE_KEY", "SandboxTools", "build_server"]
