"""Dependencies shared by the routers: the engine, a tenant's session or container, paging, and
the body of an upload."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile

from .. import errors
from ..config import Settings
from ..names import check_filename
from ..paging import MAX_LIMIT
from ..runtime import SessionHost
from ..services import Engine
from ..sessions import Session, SessionInfo, SessionStatus
from ..sessions.surface import SessionSurface
from .auth import Tenant

CHUNK = 1024 * 1024
MIN_MEMORY_MB = 64
M = TypeVar("M", bound=BaseModel)
_MEMORY = re.compile(r"([0-9]{1,9})([gm]?)b?")


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request.
async def engine(request: Request) -> Engine:
    value: Engine = request.app.state.engine
    return value


async def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def host(request: Request) -> SessionHost[SessionSurface]:
    """The engine, or a cluster's API replica (``serve --cluster``): what the native sessions
    API needs, and all a replica has."""
    value: SessionHost[SessionSurface] = request.app.state.engine
    return value


EngineDep = Annotated[Engine, Depends(engine)]


async def poll_after(response: Response) -> None:
    """How long the SDK's pollers (``create_and_poll``, ``poll``) wait before asking again."""
    response.headers["openai-poll-after-ms"] = "200"


PollAfter = Depends(poll_after)
"""For a route that clients poll: ``dependencies=[PollAfter]``."""


HostDep = Annotated[SessionHost[SessionSurface], Depends(host)]
SettingsDep = Annotated[Settings, Depends(settings)]


# --- a session, a container ---


async def session(
    session_id: Annotated[str, Path(description="A session id.")],
    engine: HostDep,
    tenant: Tenant,
) -> SessionSurface:
    return engine.get_session(session_id, tenant)


async def container_info(
    container_id: Annotated[str, Path(description="A container id (the id of its session).")],
    engine: EngineDep,
    tenant: Tenant,
) -> SessionInfo:
    """A container's session; a deleted (closed) one is gone, as in OpenAI."""
    info = engine.sessions.info(container_id, tenant)
    if info.status is SessionStatus.CLOSED:
        raise errors.SessionNotFound(f"no container with id {container_id!r}")
    return info


async def container(
    info: Annotated[SessionInfo, Depends(container_info)], engine: EngineDep, tenant: Tenant
) -> Session:
    """A container that still runs: its files can be read and written."""
    if info.status is SessionStatus.EXPIRED:
        raise errors.InvalidRequest(f"container {info.id} is expired")
    return engine.get_session(info.id, tenant)


SessionDep = Annotated[SessionSurface, Depends(session)]
ContainerInfoDep = Annotated[SessionInfo, Depends(container_info)]
ContainerDep = Annotated[Session, Depends(container)]


# --- paging ---


class Paging(BaseModel):
    """Cursor paging, the same on every list (see engine/paging.py for the rules)."""

    limit: int = Field(default=20, ge=1, le=MAX_LIMIT, description="Objects per page, 1-100.")
    order: Literal["asc", "desc"] = Field(
        default="desc", description="By creation time: `asc` oldest first, `desc` newest first."
    )
    after: str | None = Field(default=None, description="An object id: the page starts after it.")
    before: str | None = Field(default=None, description="An object id: the page ends before it.")

    def window(self) -> dict[str, Any]:
        """Keyword arguments for the library's lists (``page_query``, ``page_list``)."""
        return {
            "limit": min(self.limit, MAX_LIMIT),
            "order": self.order,
            "after": self.after,
            "before": self.before,
        }


class FilePaging(Paging):
    """OpenAI's Files list takes ``limit`` up to 10,000; a page here holds at most 100 (and
    ``has_more``), which the SDK's auto-pagination follows."""

    limit: int = Field(
        default=MAX_LIMIT, ge=1, le=10_000, description="Up to 10,000; pages hold at most 100."
    )


PagingDep = Annotated[Paging, Query()]
FilePagingDep = Annotated[FilePaging, Query()]


# --- the body of an upload ---


@dataclass
class FileBody:
    """A multipart upload (a ``file`` part, other form fields) or any other body (JSON that
    names a file object), parsed the same way on every upload route."""

    upload: UploadFile | None = None
    name: str | None = None
    """The checked file name: the ``name`` form field if sent, else the ``file`` part's name."""
    fields: Mapping[str, str] = field(default_factory=dict)
    raw: bytes = b""

    def file(self) -> tuple[str, IO[bytes]]:
        """The uploaded bytes and their name; a body that is not an upload is refused."""
        if self.upload is None or self.name is None:
            raise errors.InvalidRequest(
                "expected a multipart/form-data body with a `file` part that has a filename"
            )
        return self.name, self.upload.file

    def field(self, name: str) -> str:
        if name not in self.fields:
            raise errors.InvalidRequest(f"the multipart body needs a `{name}` field")
        return self.fields[name]

    def json(self, model: type[M]) -> M:
        """A JSON body, for routes that also take ``{"file_id"}`` instead of an upload."""
        try:
            return model.model_validate_json(self.raw)
        except ValidationError as exc:
            where, what = errors.first_problem(exc)
            raise errors.InvalidRequest(
                f'expected JSON {{"file_id"}} or a multipart upload: '
                f"{where + ': ' if where else ''}{what}"
            ) from None


async def file_body(request: Request) -> AsyncIterator[FileBody]:
    if not request.headers.get("content-type", "").startswith("multipart/"):
        yield FileBody(raw=await request.body())
        return
    async with request.form() as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise errors.InvalidRequest(
                "the multipart body needs a `file` part with a filename (Content-Disposition: "
                'form-data; name="file"; filename="data.csv")'
            )
        name = fields.get("name") or _part_filename(part)
        yield FileBody(upload=part, name=check_filename(name), fields=fields)


def _part_filename(part: UploadFile) -> str:
    """The part's filename as sent. Starlette decodes a name that is not UTF-8 as Latin-1, which
    would rename the file silently, so the raw header is read again."""
    disposition = next((v for k, v in part.headers.raw if k == b"content-disposition"), b"")
    raw = parse_options_header(disposition)[1].get(b"filename", b"")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidRequest(
            f"the file name {raw!r} of the `file` part is not valid UTF-8: send the name "
            "UTF-8 encoded"
        ) from None
    if not name.strip():
        raise errors.InvalidRequest("the `file` part has an empty filename: name the file")
    return name


FileBodyDep = Annotated[FileBody, Depends(file_body)]


def file_body_doc(
    fields: Mapping[str, str] | None = None, json_model: type[BaseModel] | None = None
) -> dict[str, Any]:
    """OpenAPI for a route that takes ``file_body``: a multipart ``file`` and its text
    ``fields`` (name -> description, required ones marked with a leading "*"), and, with
    ``json_model``, the JSON alternative."""
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary"}}
    required = ["file"]
    for name, description in (fields or {}).items():
        if name.startswith("*"):
            name = name[1:]
            required.append(name)
        properties[name] = {"type": "string", "description": description}
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {"type": "object", "required": required, "properties": properties}
        }
    }
    if json_model is not None:
        content["application/json"] = {"schema": json_model.model_json_schema()}
    return {"requestBody": {"required": True, "content": content}}


# --- values ---


class ExpiresAfter(BaseModel):
    """A sandbox's lifetime after its last activity (sessions, containers)."""

    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: int = Field(ge=1)


def parse_memory(value: str | int | None, maximum: int) -> int | None:
    """A memory limit in MB from "1g", "512m", "4G", "1gb" or a number of MB; the message of a
    refusal names ``memory_limit`` and the value sent."""
    if value is None:
        return None
    mb = _megabytes(value)
    if mb is None:
        raise errors.InvalidRequest(
            f"memory_limit must look like '1g' or '512m' (or a number of MB), not {value!r}"
        )
    if mb > maximum:
        raise errors.InvalidRequest(
            f"memory_limit {value!r} is above the maximum of {maximum} MB; send e.g. '1g' or '512m'"
        )
    if mb < MIN_MEMORY_MB:
        raise errors.InvalidRequest(
            f"memory_limit {value!r} is below the minimum of {MIN_MEMORY_MB} MB; "
            f"send e.g. '1g' or '512m'"
        )
    return mb


def _megabytes(value: str | int) -> int | None:
    if isinstance(value, int):
        return None if isinstance(value, bool) else value
    found = _MEMORY.fullmatch(value.strip().lower())
    if found is None:
        return None
    return int(found[1]) * (1024 if found[2] == "g" else 1)


# --- downloads ---


async def _chunks(f: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


def stream_file(f: IO[bytes], media_type: str, filename: str | None = None) -> StreamingResponse:
    headers = attachment(filename) if filename else {}
    return StreamingResponse(_chunks(f), media_type=media_type, headers=headers)


def attachment(filename: str) -> dict[str, str]:
    """A download's headers: saved under its name, never sniffed into a page by a browser."""
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }
