"""OpenAI-compatible Containers: ``/v1/containers`` and their files.

A container is a session of the caller's tenant: the container id is the session id. Each create
starts a fresh session with a container's thread id (``engine/faces.py``); sessions made any
other way show their thread id as the name. A container's files are what is in its /mnt/data;
each one's id is the file object known for that path, or ``cfile_<hash of the path>`` when there
is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from .. import errors
from ..egress.policy import MAX_DOMAINS, MAX_SECRETS
from ..files import guess_mime_type
from ..paging import MAX_LIMIT, Deleted, Page, page_list
from ..services import Engine
from ..sessions import Session, SessionFile, SessionInfo, SessionStatus
from ..sessions.models import container_file_id
from ..thread_ids import MAX_CONTAINER_NAME, container_name, container_thread_id
from .auth import Tenant
from .deps import (
    ContainerDep,
    ContainerInfoDep,
    EngineDep,
    ExpiresAfter,
    FileBodyDep,
    Paging,
    PagingDep,
    file_body_doc,
    parse_memory,
    stream_file,
)

router = APIRouter(prefix="/v1/containers", tags=["openai containers"])


class DomainSecret(BaseModel):
    domain: str
    name: str
    value: str


class NetworkPolicy(BaseModel):
    type: Literal["disabled", "allowlist"] = "disabled"
    allowed_domains: list[str] | None = Field(default=None, max_length=MAX_DOMAINS)
    domain_secrets: list[DomainSecret] | None = Field(default=None, max_length=MAX_SECRETS)


class ShownDomainSecret(BaseModel):
    domain: str
    name: str
    """Its value is never shown."""


class ShownNetworkPolicy(BaseModel):
    type: Literal["disabled", "allowlist"] = "disabled"
    allowed_domains: list[str] | None = None
    domain_secrets: list[ShownDomainSecret] | None = None


class CreateContainer(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_CONTAINER_NAME)
    file_ids: list[str] = Field(default_factory=list, max_length=100)
    expires_after: ExpiresAfter | None = None
    memory_limit: str | int | None = None
    """"1g", "4g", ... up to the engine's ``max_memory_limit_mb``; also "512m" or MB."""
    network_policy: NetworkPolicy | None = None
    skills: list[dict[str, Any]] = Field(default_factory=list)


class Container(BaseModel):
    id: str
    object: Literal["container"] = "container"
    name: str
    created_at: int
    status: Literal["running", "expired"]
    last_active_at: int
    expires_after: ExpiresAfter
    expires_at: int
    """Not in OpenAI's object: when the sandbox ends unless it is used (or its deadline)."""
    memory_limit: str | None = None
    network_policy: ShownNetworkPolicy = Field(default_factory=ShownNetworkPolicy)


class AddContainerFile(BaseModel):
    file_id: str


class ContainerFile(BaseModel):
    id: str
    object: Literal["container.file"] = "container.file"
    bytes: int
    container_id: str
    created_at: int
    path: str
    source: Literal["user", "assistant"]


# --- containers ---


@router.post("", response_model=Container)
async def create_container(body: CreateContainer, engine: EngineDep, tenant: Tenant) -> Container:
    _check_supported(body)
    session = await engine.session(
        container_thread_id(body.name),
        owner=tenant,
        file_ids=body.file_ids,
        idle_timeout=_idle_timeout(body, engine.settings.max_session_lifetime),
        memory_limit_mb=parse_memory(body.memory_limit, engine.settings.max_memory_limit_mb),
        network_policy=body.network_policy.model_dump(exclude_none=True)
        if body.network_policy
        else None,
    )
    return _container(session.info, session)


def _check_supported(body: CreateContainer) -> None:
    if body.skills:
        raise errors.InvalidRequest("skills are not supported")


def _idle_timeout(body: CreateContainer, max_lifetime: int) -> int | None:
    if body.expires_after is None:
        return None
    most = max_lifetime // 60
    if body.expires_after.minutes > most:
        raise errors.InvalidRequest(f"expires_after.minutes must be from 1 to {most}")
    return body.expires_after.minutes * 60


@router.get("", response_model=Page[Container])
async def list_containers(
    paging: PagingDep, engine: EngineDep, tenant: Tenant, name: str | None = None
) -> Page[Container]:
    def wanted(info: SessionInfo) -> bool:
        return info.status is not SessionStatus.CLOSED and (
            name is None or container_name(info.thread_id) == name
        )

    infos, has_more = _filtered_sessions(engine, tenant, wanted, paging)
    live = {s.id: s for s in engine.sessions.live()}
    return Page[Container].of([_container(i, live.get(i.id)) for i in infos], has_more)


@router.get("/{container_id}", response_model=Container)
async def retrieve_container(info: ContainerInfoDep, engine: EngineDep) -> Container:
    live = {s.id: s for s in engine.sessions.live()}
    return _container(info, live.get(info.id))


@router.delete("/{container_id}", response_model=Deleted)
async def delete_container(info: ContainerInfoDep, engine: EngineDep, tenant: Tenant) -> Deleted:
    await engine.sessions.close(info.id, tenant)
    return Deleted(id=info.id, object="container.deleted")


def _container(info: SessionInfo, session: Session | None) -> Container:
    memory = session.spec.memory_limit_mb if session is not None else None
    return Container(
        id=info.id,
        name=container_name(info.thread_id),
        created_at=info.created_at,
        status="expired" if info.status is SessionStatus.EXPIRED else "running",
        last_active_at=info.last_active_at,
        expires_after=ExpiresAfter(minutes=max(1, -(-info.idle_timeout // 60))),
        expires_at=info.expires_at,
        memory_limit=_memory(memory),
        network_policy=ShownNetworkPolicy.model_validate(info.network_policy),
    )


def _memory(mb: int | None) -> str | None:
    if mb is None:
        return None
    return f"{mb // 1024}g" if mb % 1024 == 0 else f"{mb}m"


def _filtered_sessions(
    engine: Engine, tenant: str, wanted: Callable[[SessionInfo], bool], paging: Paging
) -> tuple[list[SessionInfo], bool]:
    """One page of the tenant's sessions that pass ``wanted``, walking the library's pages
    (towards older ones from ``before`` when only ``before`` is given)."""
    limit, after, before = paging.limit, paging.after, paging.before
    backwards = before is not None and after is None
    found: list[SessionInfo] = []
    while len(found) <= limit:
        page = engine.sessions.list(
            tenant, limit=MAX_LIMIT, order=paging.order, after=after, before=before
        )
        kept = [info for info in page.data if wanted(info)]
        found = kept + found if backwards else found + kept
        if not page.has_more:
            break
        if backwards:
            before = page.first_id
        else:
            after = page.last_id
    return (found[-limit:] if backwards else found[:limit]), len(found) > limit


# --- container files ---


@router.post(
    "/{container_id}/files",
    response_model=ContainerFile,
    openapi_extra=file_body_doc(json_model=AddContainerFile),
)
async def create_container_file(
    session: ContainerDep, body: FileBodyDep, engine: EngineDep
) -> ContainerFile:
    """Multipart with a ``file`` part, or JSON ``{"file_id"}``: lands at /mnt/data/<filename>."""
    if body.upload is not None:
        added = await session.upload(*body.file())
    else:
        added = await session.add_file(body.json(AddContainerFile).file_id)
    for f in await _container_files(engine, session):
        if f.path == added.path:
            return f
    raise errors.FileNotFound(f"{added.path} vanished from container {session.id}")


@router.get("/{container_id}/files", response_model=Page[ContainerFile])
async def list_container_files(
    session: ContainerDep, paging: PagingDep, engine: EngineDep
) -> Page[ContainerFile]:
    return page_list(await _container_files(engine, session), **paging.window())


@router.get("/{container_id}/files/{file_id}", response_model=ContainerFile)
async def retrieve_container_file(
    file_id: str, session: ContainerDep, engine: EngineDep
) -> ContainerFile:
    return await _find(engine, session, file_id)


@router.get("/{container_id}/files/{file_id}/content")
async def container_file_content(
    file_id: str, session: ContainerDep, engine: EngineDep
) -> StreamingResponse:
    found = await _find(engine, session, file_id)
    f = await session.open_file(found.path)
    name = found.path.rsplit("/", 1)[-1]
    return stream_file(f, guess_mime_type(name), name)


@router.delete("/{container_id}/files/{file_id}", response_model=Deleted)
async def delete_container_file(file_id: str, session: ContainerDep, engine: EngineDep) -> Deleted:
    found = await _find(engine, session, file_id)
    await session.remove_file(found.path)
    return Deleted(id=file_id, object="container.file.deleted")


async def _find(engine: Engine, session: Session, file_id: str) -> ContainerFile:
    for f in await _container_files(engine, session):
        if f.id == file_id:
            return f
    raise errors.FileNotFound(f"no file {file_id!r} in container {session.id}")


async def _container_files(engine: Engine, session: Session) -> list[ContainerFile]:
    """The files in /mnt/data, oldest first."""
    files: list[ContainerFile] = []
    taken: set[str] = set()
    for entry in await session.list_files():
        files.append(_container_file(engine, session, entry, taken))
        taken.add(files[-1].id)
    files.sort(key=lambda f: (f.created_at, f.path))
    return files


def _container_file(
    engine: Engine, session: Session, entry: SessionFile, taken: set[str]
) -> ContainerFile:
    file_id = entry.file_id
    source: Literal["user", "assistant"] = "assistant"
    if file_id is not None:
        try:
            obj = engine.files.retrieve(file_id, session.owner)
        except errors.FileNotFound:  # the file object was deleted; the copy in the sandbox stays
            source = "user"
        else:
            wrote = obj.purpose == "assistants_output" and obj.session_id == session.id
            source = "assistant" if wrote else "user"
    if file_id is None or file_id in taken:  # one file object placed at two paths
        file_id = container_file_id(session.id, entry.path)
    size_and_path = entry.model_dump(include={"bytes", "path"})
    return ContainerFile(
        id=file_id,
        container_id=session.id,
        created_at=entry.modified_at,
        source=source,
        **size_and_path,
    )
