"""Azure dynamic sessions' JSON shapes: request bodies, execution results and file listings.

Pure translations between the engine's objects and the two Azure API shapes (see azure.py).
"""

from __future__ import annotations

import ast
import base64
import math
import posixpath
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from .. import errors
from ..files import guess_mime_type
from ..names import check_relative_path
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT
from ..sessions import SessionFile

FLAT_SHAPES_SINCE = "2024-10-02"
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif"}
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,300})(?:\.\d+)?(?:[eE][-+]?\d{1,4})?")
_NUMPY_SCALAR = re.compile(r"np\.(?:u?int|float)\d*\((.{1,400})\)|np\.(True|False)_")
MAX_LITERAL = 65_536


def lower_value(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class CodeExecution(BaseModel):
    """The execution request; Azure spells the enum values in any case."""

    codeInputType: Annotated[
        Literal["inline", "inlinebase64", "inlinetext"], BeforeValidator(lower_value)
    ] = "inline"
    executionType: Annotated[
        Literal["synchronous", "asynchronous"], BeforeValidator(lower_value)
    ] = "synchronous"
    code: str
    timeoutInSeconds: float | None = Field(default=None, gt=0)
    outputStreamsMaxLength: int | None = Field(default=None, ge=0)
    """Accepted and ignored: the engine's own output caps apply."""

    def source(self) -> str:
        if self.codeInputType != "inlinebase64":
            return self.code
        try:
            return base64.b64decode(self.code, validate=True).decode()
        except ValueError:
            raise errors.InvalidRequest(
                "code is not base64-encoded UTF-8, as codeInputType InlineBase64 says"
            ) from None


class PreviewExecution(BaseModel):
    properties: CodeExecution


def execution_resource(
    execution_id: str, identifier: str, body: CodeExecution, result: ExecutionResult
) -> dict[str, Any]:
    """The flat shape's execution resource, in its final state."""
    resource: dict[str, Any] = {
        "id": execution_id,
        "identifier": identifier,
        "executionType": body.executionType.capitalize(),
        "status": "Succeeded" if result.ok else "Failed",
        "result": {
            "stdout": result.stdout,
            "stderr": stderr_with_traceback(result),
            "executionResult": execution_value(result),
            "executionTimeInMilliseconds": round(result.duration_ms),
        },
    }
    if result.error is not None:
        resource["error"] = {
            "error": {
                "code": result.error.name,
                "message": f"{result.error.name}: {result.error.value}",
            }
        }
    return resource


def stderr_with_traceback(result: ExecutionResult) -> str:
    """The preview shape has no error field: the traceback is appended to stderr."""
    if result.error is None:
        return result.stderr
    text = "\n".join(result.error.traceback)
    summary = f"{result.error.name}: {result.error.value}"
    if summary not in text:
        text = f"{text}\n{summary}" if text else summary
    return f"{result.stderr}{text}\n"


def execution_value(result: ExecutionResult) -> Any:
    """An image as ``{"type": "image", "format", "base64_data"}``, else the last expression's
    value as JSON when it is a plain number, bool or str, else its text; "" when there is none."""
    bundles = [*([result.result] if result.result else []), *result.display]
    for bundle in bundles:
        for mime, fmt in IMAGE_FORMATS.items():
            if isinstance(bundle.get(mime), str):
                return {"type": "image", "format": fmt, "base64_data": bundle[mime]}
    text = result.text
    return "" if text is None else json_value(text)


def json_value(text: str) -> Any:
    if numpy := _NUMPY_SCALAR.fullmatch(text):  # numpy 2 reprs: np.int64(6), np.True_
        text = numpy.group(1) or numpy.group(2)
    if text in ("True", "False"):
        return text == "True"
    if _NUMBER.fullmatch(text):
        number = float(text) if any(c in text for c in ".eE") else int(text)
        return number if math.isfinite(number) else text
    if text[:1] in ("'", '"') and len(text) <= MAX_LITERAL:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, str):
            return value
    return text


def flat_shapes(api_version: str | None) -> bool:
    return api_version is not None and api_version[:10] >= FLAT_SHAPES_SINCE


def directory_of(path: str | None) -> str:
    """The ``path`` query parameter as a folder relative to /mnt/data ("" for /mnt/data)."""
    text = (path or "").strip().rstrip("/")
    if text in ("", DATA_MOUNT):
        return ""
    if text.startswith(f"{DATA_MOUNT}/"):
        text = text[len(DATA_MOUNT) + 1 :]
    elif text.startswith("/"):
        raise errors.InvalidRequest(f"path must be {DATA_MOUNT} or below it, not {path!r}")
    return "/".join(check_relative_path(text))


def join_path(path: str | None, name: str) -> str:
    folder = directory_of(path)
    return f"{folder}/{name}" if folder else name


def relative_path(f: SessionFile) -> str:
    return f.path.removeprefix(f"{DATA_MOUNT}/")


def iso_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preview_file(f: SessionFile, ref: int) -> dict[str, Any]:
    """``size`` is what LangChain and AutoGen read; newer Semantic Kernel reads ``sizeInBytes``
    and ``fullPath``."""
    return {
        "$id": str(ref),
        "properties": {
            "$id": str(ref + 1),
            "filename": relative_path(f),
            "size": f.bytes,
            "lastModifiedTime": iso_time(f.modified_at),
            "sizeInBytes": f.bytes,
            "fullPath": f.path,
        },
    }


def flat_file(f: SessionFile) -> dict[str, Any]:
    return {
        "name": f.filename,
        "type": "File",
        "contentType": guess_mime_type(f.filename),
        "sizeInBytes": f.bytes,
        "lastModifiedAt": iso_time(f.modified_at),
        "directory": posixpath.dirname(f.path),
    }


def listing(files: list[SessionFile], folder: str, recursive: bool) -> list[dict[str, Any]]:
    """Files in ``folder`` (all below it if ``recursive``), then its subfolders."""
    prefix = f"{folder}/" if folder else ""
    entries: list[dict[str, Any]] = []
    subfolders: dict[str, int] = {}
    for f in files:
        relative = relative_path(f)
        if not relative.startswith(prefix):
            continue
        child, _, rest = relative[len(prefix) :].partition("/")
        if rest and not recursive:
            subfolders[child] = max(subfolders.get(child, 0), f.modified_at)
        else:
            entries.append(flat_file(f))
    parent = posixpath.join(DATA_MOUNT, folder) if folder else DATA_MOUNT
    entries += [
        {
            "name": name,
            "type": "Directory",
            "lastModifiedAt": iso_time(modified),
            "directory": parent,
        }
        for name, modified in sorted(subfolders.items())
    ]
    return entries
