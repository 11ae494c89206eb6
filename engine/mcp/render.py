"""An ExecutionResult as an MCP tool result: text for the model, figures as images, written
files as resource links, and the same facts as structured content."""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import quote

from mcp_types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from ..agent.tool_text import cut_middle
from ..kernel import strip_ansi
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT
from ..sessions.outputs import IMAGE_TYPES

SCHEME = "sandbox"
FILE_TEMPLATE = f"{SCHEME}://{{session_id}}/files/{{+path}}"


def file_uri(session_id: str, path: str) -> str:
    """``sandbox://<session>/files/<path below /mnt/data>``."""
    if path.startswith(DATA_MOUNT + "/"):
        path = path[len(DATA_MOUNT) + 1 :]
    return f"{SCHEME}://{session_id}/files/{quote(path, safe='/')}"


class ErrorOut(BaseModel):
    name: str
    value: str
    traceback: list[str] = Field(default_factory=list)


class FileOut(BaseModel):
    path: str
    filename: str
    uri: str
    mime_type: str
    bytes: int
    file_id: str


class ImageOut(BaseModel):
    mime_type: str
    bytes: int
    file_id: str | None = None


class ExecuteOutput(BaseModel):
    """What ``execute`` returns as structured content."""

    session_id: str
    status: Literal["ok", "error", "timeout", "crashed", "cancelled"]
    stdout: str
    stderr: str
    result: str | None = None
    error: ErrorOut | None = None
    files: list[FileOut] = Field(default_factory=list)
    images: list[ImageOut] = Field(default_factory=list)
    state_lost: bool = False
    notice: str | None = None


def render(session_id: str, result: ExecutionResult, text_limit: int) -> CallToolResult:
    images = [bundle for bundle in _bundles(result) if _image_mime(bundle)]
    image_files = [o for o in result.outputs if o.type == "image"]
    files = [o for o in result.outputs if o.type == "file" and o.path]
    out = ExecuteOutput(
        session_id=session_id,
        status=result.status.value,
        stdout=cut_middle(result.stdout, text_limit, "dropped"),
        stderr=cut_middle(result.stderr, text_limit, "dropped"),
        result=result.text,
        error=None
        if result.error is None
        else ErrorOut(
            name=result.error.name,
            value=result.error.value,
            traceback=[strip_ansi(line) for line in result.error.traceback],
        ),
        files=[
            FileOut(
                path=f.path or "",
                filename=f.filename,
                uri=file_uri(session_id, f.path or ""),
                mime_type=f.mime_type,
                bytes=f.bytes,
                file_id=f.file_id,
            )
            for f in files
        ],
        images=[
            ImageOut(
                mime_type=_image_mime(bundle) or "image/png",
                bytes=len(base64.b64decode(bundle[_image_mime(bundle) or ""], validate=False)),
                file_id=image_files[n].file_id if n < len(image_files) else None,
            )
            for n, bundle in enumerate(images)
        ],
        state_lost=result.state_lost,
        notice=result.notice,
    )
    content: list[ContentBlock] = [TextContent(type="text", text=_text(out, text_limit))]
    for bundle in images:
        mime = _image_mime(bundle) or "image/png"
        data = bundle[mime]
        if mime == "image/svg+xml" or not isinstance(data, str):
            continue  # an SVG is text, not an image block clients can show
        content.append(ImageContent(type="image", data=data.strip(), mime_type=mime))
    for f in out.files:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=f.uri,
                name=f.filename,
                mime_type=f.mime_type,
                size=f.bytes,
                description=f"{f.path} (file object {f.file_id})",
            )
        )
    return CallToolResult(
        content=content,
        structured_content=out.model_dump(mode="json"),
        is_error=not result.ok,
    )


def _bundles(result: ExecutionResult) -> list[dict[str, Any]]:
    return [*result.display, *([result.result] if result.result else [])]


def _image_mime(bundle: dict[str, Any]) -> str | None:
    return next((m for m in IMAGE_TYPES if m in bundle and m != "image/svg+xml"), None)


def _text(out: ExecuteOutput, limit: int) -> str:
    """The model's view: the streams, the value, the error, what was produced."""
    parts = []
    if out.notice:
        parts.append(f"[notice] {out.notice}")
    if out.stdout:
        parts.append(out.stdout.rstrip("\n"))
    if out.stderr:
        parts.append("[stderr]\n" + out.stderr.rstrip("\n"))
    if out.result is not None:
        parts.append(out.result)
    if out.error is not None:
        trace = "\n".join(out.error.traceback) or f"{out.error.name}: {out.error.value}"
        parts.append(f"[{out.status}] {trace}")
    elif out.status != "ok":
        parts.append(f"[{out.status}]")
    if out.images:
        parts.append(f"[{len(out.images)} image(s) attached]")
    for f in out.files:
        parts.append(f"[file] {f.path} ({f.bytes} bytes): {f.uri}")
    return cut_middle("\n".join(parts) or "(no output)", limit, "dropped")
