"""The node agent: one async Ray actor per sandbox host, ``node:<node id>`` in the
``sandbox-engine`` namespace. It wraps an ordinary single-host ``Runtime`` (this host's Docker,
warm pool and re-adoption); the sessions, their kernels and their output export live here,
next to Docker. Its methods take and return plain data (``wire``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import errors
from ..config import Settings
from ..runtime import Runtime
from ..sessions import Session, SessionRecords, SessionStatus
from ..sessions.session import SessionControl
from .wire import NodeReport, Wire, error_out, info_out

log = logging.getLogger(__name__)
T = TypeVar("T")
DOCKER_CHECK_SECONDS = 5.0


class NodeAgent:
    """Serves one host's sessions to the cluster's API replicas."""

    def __init__(self, node_id: str, overrides: dict[str, Any] | None = None) -> None:
        """``overrides``: settings this node differs by (its data folder, its Docker socket);
        the rest comes from the node's environment, as for a single-host engine."""
        self.node_id = node_id
        update = {**_settings_update(overrides or {}), "cluster_node_id": node_id}
        self.settings = Settings().model_copy(update=update)
        self.runtime = Runtime(self.settings, exclusive=True)
        self._records = SessionRecords(self.runtime.store)
        self.draining = False
        self._started = False

    async def start(self) -> Wire:
        """Start the runtime (re-adopting what this node's last agent left); idempotent."""
        if not self._started:
            await self.runtime.start()
            self._started = True
        return (await self.report()).model_dump(mode="json")

    async def stop(self) -> None:
        """Close the runtime, leaving its sandboxes for the next agent on this host."""
        if self._started:
            self._started = False
            await self.runtime.close()

    # --- what the replicas read ---

    async def report(self) -> NodeReport:
        docker_error: str | None = None
        try:
            await asyncio.wait_for(
                self.runtime.backend.check(self.runtime.image), DOCKER_CHECK_SECONDS
            )
        except (errors.EngineError, TimeoutError) as exc:
            docker_error = str(exc) or "the Docker engine did not answer in time"
        manager = self.runtime.sessions
        paused = self._records.ids_in_status(SessionStatus.PAUSED, held_here=True)
        return NodeReport(
            node_id=self.node_id,
            address=socket.gethostname(),
            pid=os.getpid(),
            docker_ok=docker_error is None,
            docker_error=docker_error,
            capacity=self.settings.max_sessions,
            sessions=len(manager),
            draining=self.draining,
            infos=[info_out(s.info) for s in manager.live()]
            + [info_out(manager.info(i)) for i in paused],
        )

    async def report_data(self) -> Wire:
        return (await self.report()).model_dump(mode="json")

    async def drain(self, draining: bool = True) -> None:
        self.draining = draining

    # --- sessions ---

    async def create(self, thread_id: str | None, options: Wire) -> Wire:
        if self.draining:
            return error_out(errors.SandboxUnavailable(f"node {self.node_id} is draining"))
        return await self._answer(
            lambda: self._create(thread_id, options),
        )

    async def _create(self, thread_id: str | None, options: Wire) -> Wire:
        session = await self.runtime.sessions.get_or_create(thread_id, **options)
        return info_out(session.info)

    async def info(self, session_id: str, owner: str | None) -> Wire:
        return await self._answer(lambda: _now(info_out(self._get(session_id, owner).info)))

    async def call(self, session_id: str, owner: str | None, method: str, *args: Any) -> Any:
        """One of the session's methods that answer plain data (``SessionInfo`` as a dict)."""
        if method not in _CALLS:
            return error_out(errors.InvalidRequest(f"unknown session method {method!r}"))
        return await self._answer(lambda: self._call(session_id, owner, method, args))

    async def _call(
        self, session_id: str, owner: str | None, method: str, args: tuple[Any, ...]
    ) -> Any:
        session = self._get(session_id, owner)
        result = getattr(session, method)(*args)
        if asyncio.iscoroutine(result):
            result = await result
        if method in ("interrupt", "restart", "wait_idle"):
            return info_out(session.info)
        if method in ("list_files",):
            return [f.model_dump(mode="json") for f in result]
        if hasattr(result, "model_dump"):
            if method in ("pause", "resume", "keepalive", "extend"):
                return info_out(result)
            return result.model_dump(mode="json")
        return result

    async def execute(
        self, session_id: str, owner: str | None, code: str, timeout: float | None
    ) -> AsyncGenerator[Wire, None]:
        """A Ray streaming generator: each output event as it comes, then ``done`` with the
        result (or the engine's error as ``error_out``'s dict)."""
        try:
            session = self._get(session_id, owner)
            async for event in session.stream(code, timeout):
                yield event.model_dump(mode="json")
        except errors.EngineError as exc:
            yield error_out(exc)

    async def run(
        self, session_id: str, owner: str | None, code: str, timeout: float | None
    ) -> Wire:
        """``execute`` in one reply: the result only (one Ray call, not a stream)."""

        async def run() -> Wire:
            result = await self._get(session_id, owner).execute(code, timeout)
            return result.model_dump(mode="json")

        return await self._answer(run)

    async def upload(self, session_id: str, owner: str | None, name: str, data: bytes) -> Wire:
        async def upload() -> Wire:
            file = await self._get(session_id, owner).upload(name, data)
            return file.model_dump(mode="json")

        return await self._answer(upload)

    async def add_file(
        self, session_id: str, owner: str | None, file_id: str, name: str | None, path: str | None
    ) -> Wire:
        async def add() -> Wire:
            file = await self._get(session_id, owner).add_file(file_id, name, path=path)
            return file.model_dump(mode="json")

        return await self._answer(add)

    async def read_file(self, session_id: str, owner: str | None, path: str) -> bytes | Wire:
        return await self._answer(lambda: self._get(session_id, owner).read_file(path))

    async def file_key(self, session_id: str, owner: str | None, path: str) -> str | Wire:
        """The file object that holds a file of the session, which the replica reads from
        the shared blob store."""
        return await self._answer(
            lambda: SessionControl(self._get(session_id, owner)).file_object(path)
        )

    async def close_session(self, session_id: str, owner: str | None, status: str) -> Wire | None:
        return await self._answer(
            lambda: self.runtime.sessions.close(session_id, owner, SessionStatus(status))
        )

    async def take_over(self, session_id: str, owner: str | None, node: str, why: str) -> Wire:
        """Continue here a live session of ``node``, which the replica found gone."""

        async def take() -> Wire:
            session = await self.runtime.sessions.take_over(session_id, owner, node, why)
            return info_out(session.info)

        return await self._answer(take)

    def _get(self, session_id: str, owner: str | None) -> Session:
        return self.runtime.sessions.get(session_id, owner)

    async def _answer(self, work: Callable[[], Awaitable[T]]) -> T | Wire:
        try:
            return await work()
        except errors.EngineError as exc:
            return error_out(exc)


_CALLS = frozenset(
    {
        "pause",
        "resume",
        "interrupt",
        "restart",
        "keepalive",
        "extend",
        "list_files",
        "remove_file",
        "keep_output",
        "keep_outputs",
        "wait_idle",
    }
)


async def _now(value: T) -> T:
    return value


def _settings_update(overrides: dict[str, Any]) -> dict[str, Any]:
    update = dict(overrides)
    if "data_dir" in update:
        update["data_dir"] = Path(update["data_dir"])
    return update
