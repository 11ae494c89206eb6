"""The container a response's code runs in: a session of the caller's tenant.

An explicit container id must name a live container of the tenant: another tenant's is not
found, an expired one is a 400, as in OpenAI. In auto mode a chain of responses (or a
conversation) keeps its container; when it has expired, the next turn continues in a fresh one
with the files restored, and says that the variables were lost, where OpenAI fails with
"Container is expired".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .. import errors
from ..runtime import Runtime
from ..sandbox.base import DATA_MOUNT
from ..sessions import Session
from ..thread_ids import container_thread_id
from .tools import CodeTool

AUTO_IDLE = 20 * 60
"""Auto containers end after 20 idle minutes, as OpenAI's do."""
FRESH_NOTE = (
    "The earlier container of this conversation had expired, so this code runs in a fresh "
    "container: its files were restored to /mnt/data, but variables and imports from earlier "
    "turns are gone."
)


@dataclass
class Placement:
    session: Session
    fresh_after_expiry: bool = False


def check_explicit(engine: Runtime, owner: str, container_id: str) -> None:
    """Before anything runs: an explicit container must be the tenant's and live."""
    try:
        engine.get_session(container_id, owner)
    except errors.SessionClosed:
        raise errors.InvalidRequest(f"Container is expired: {container_id}") from None
    except errors.NotFound:
        raise errors.NotFound(f"Container with id '{container_id}' not found.") from None


async def place(
    engine: Runtime,
    owner: str,
    tool: CodeTool,
    previous: str | None,
    files: dict[str, str],
    input_files: list[str],
) -> Placement:
    """The session to run in, with the tool's and the input's files in /mnt/data."""
    if tool.container_id is not None:
        check_explicit(engine, owner, tool.container_id)
        session = engine.get_session(tool.container_id, owner)
        await _add_missing(engine, session, [*tool.file_ids, *input_files])
        return Placement(session)
    if previous is not None:
        kept: Session | None = None
        with contextlib.suppress(errors.EngineError):  # expired, closed or deleted: start anew
            kept = engine.get_session(previous, owner)
        if kept is not None and kept.spec.egress == tool.network_policy:
            await _add_missing(engine, kept, [*tool.file_ids, *input_files])
            return Placement(kept)
    idle = min(AUTO_IDLE, engine.settings.max_session_lifetime)
    session = await engine.session(
        container_thread_id("auto"),
        owner=owner,
        idle_timeout=idle,
        memory_limit_mb=tool.memory_limit_mb,
        network_policy=tool.network_policy,
    )
    for path, file_id in files.items():  # what the expired container held, where it was
        with contextlib.suppress(errors.NotFound, errors.InvalidRequest):
            await session.add_file(file_id, path=path)
    await _add_missing(engine, session, [*tool.file_ids, *input_files])
    return Placement(session, fresh_after_expiry=previous is not None)


async def _add_missing(engine: Runtime, session: Session, file_ids: list[str]) -> None:
    """Place the files not there yet; one the code has since changed is not put back over."""
    if not file_ids:
        return
    listed = await session.list_files()
    present = {f.file_id for f in listed} | {f.filename for f in listed}
    for file_id in dict.fromkeys(file_ids):
        if (
            file_id not in present
            and engine.files.retrieve(file_id, session.owner).filename not in present
        ):
            await session.add_file(file_id)


async def snapshot(session: Session) -> dict[str, str]:
    """The files in the container that are file objects (path below /mnt/data -> id), to
    restore later in the same folders: same-named files in two folders stay apart."""
    prefix = f"{DATA_MOUNT}/"
    with contextlib.suppress(errors.EngineError):
        return {
            f.path.removeprefix(prefix): f.file_id for f in await session.list_files() if f.file_id
        }
    return {}
