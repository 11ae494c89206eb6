"""An API replica's side of the cluster: ``ClusterHost`` (a ``SessionHost`` whose sessions live
on node agents), its session directory, and ``RemoteSession``, a session on another host with
``Session``'s public surface. Every call to a node runs under the engine's own deadline."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import IO, Any, Self

from pydantic import TypeAdapter

from .. import errors
from ..config import MB, Settings
from ..egress.policy import EgressPolicy
from ..files import FileObject, FileStore, Source
from ..kernel import EventCallback, validate_timeout
from ..names import check_filename
from ..paging import Page, page_list
from ..results import DoneEvent, ExecutionResult, OutputEvent
from ..runtime import SessionHost, open_files
from ..sessions import SessionFile, SessionInfo, SessionStatus
from ..store import Store
from ..store.records import SessionRows
from . import NAMESPACE
from .placement import NodeState, ranked
from .security import token_for
from .wire import NodeReport, Wire, info_in, raise_if_error

log = logging.getLogger(__name__)
AGENT_PREFIX = "node:"
_EVENT: TypeAdapter[OutputEvent] = TypeAdapter(OutputEvent)
_FILES: TypeAdapter[list[SessionFile]] = TypeAdapter(list[SessionFile])


def agent_name(node_id: str) -> str:
    return f"{AGENT_PREFIX}{node_id}"


class NodeLink:
    """One node agent as a replica calls it: every call bounded by the engine's deadline, cut
    short when the replica's reads of the node start failing (``lost``), and Ray's own
    failures said as NodeUnreachable."""

    def __init__(self, node_id: str, handle: Any, deadline: float) -> None:
        self.node_id = node_id
        self.handle = handle
        self.deadline = deadline
        self.lost: str | None = None
        """Why the last read of the node failed; None while it answers."""
        self.gone = False
        """Whether Ray said the node agent is gone (dead, or left the cluster), not merely
        slow to answer: only then may its live sessions continue elsewhere, since a node
        that is frozen or cut off may come back still running them."""
        self._lost = asyncio.Event()

    def mark(self, lost: str | None, *, gone: bool = False) -> None:
        self.lost = lost
        self.gone = lost is not None and (gone or self.gone)
        if lost is None:
            self._lost.clear()
        else:
            self._lost.set()

    async def call(self, method: str, *args: Any, extra: float = 0.0, probe: bool = False) -> Any:
        """``method``'s reply, its engine error raised here; ``extra``: seconds the work
        itself may take on top of the deadline; ``probe``: a read of the node's health, made
        even while it is taken for lost."""
        import ray

        if not probe:
            self._check()
        ref = getattr(self.handle, method).remote(*args)
        seconds = self.deadline + extra
        try:
            reply = await self._bounded(_resolve(ref), seconds, watch=not probe)
        except TimeoutError:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            raise self._unreachable(f"did not answer within {seconds:g} s") from None
        except asyncio.CancelledError:  # the caller gave up: so does the node (an interrupt)
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            raise
        except ray.exceptions.RayError as exc:
            raise self._said(exc) from exc
        return raise_if_error(reply)

    async def stream(self, method: str, *args: Any, seconds: float) -> AsyncGenerator[Any, None]:
        """The items of a streaming-generator method, all within ``seconds``; closing early
        cancels the method on the node (which interrupts what it runs)."""
        import ray

        self._check()
        generator = getattr(self.handle, method).options(num_returns="streaming").remote(*args)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        finished = False
        try:
            while True:
                try:
                    ref = await self._bounded(anext(generator), end - loop.time())
                    item = await self._bounded(_resolve(ref), end - loop.time())
                except StopAsyncIteration:
                    finished = True
                    return
                except TimeoutError:
                    raise self._unreachable(f"did not finish within {seconds:g} s") from None
                except ray.exceptions.RayError as exc:
                    raise self._said(exc) from exc
                yield raise_if_error(item)
        finally:
            if not finished:
                with contextlib.suppress(Exception):
                    ray.cancel(generator)

    async def _bounded(self, work: Awaitable[Any], seconds: float, *, watch: bool = True) -> Any:
        """``work``'s result within ``seconds`` (else TimeoutError); with ``watch``,
        NodeUnreachable as soon as the node is taken for lost, not when Ray notices."""
        task = asyncio.ensure_future(work)
        waits: set[asyncio.Future[Any]] = {task}
        if watch:
            waits.add(lost := asyncio.ensure_future(self._lost.wait()))
        try:
            done, _ = await asyncio.wait(
                waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits - {task}:
                waiting.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if watch and lost in done:
            self._check()
        raise TimeoutError

    def _said(self, exc: Exception) -> errors.EngineError:
        """A failure of Ray's, as the engine says it: the agent's own bug, or a node gone."""
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            return errors.EngineError(f"node {self.node_id} failed: {exc}")
        self.gone = True
        return self._unreachable(f"is gone ({type(exc).__name__})")

    def _check(self) -> None:
        if self.lost is not None:
            raise self._unreachable(f"stopped answering ({self.lost})")

    def _unreachable(self, what: str) -> errors.NodeUnreachable:
        return errors.NodeUnreachable(
            f"node {self.node_id} {what}; the sessions it holds cannot be reached, and what "
            "their kernels held may be lost"
        )


async def _resolve(ref: Any) -> Any:
    return await ref


class RemoteSession:
    """A session that lives on a node agent, with ``Session``'s public surface."""

    def __init__(
        self,
        link: NodeLink,
        info: SessionInfo,
        settings: Settings,
        files: FileStore | None = None,
        moving_from: str | None = None,
    ) -> None:
        """``files``: the shared file objects, through which uploads reach the node (by
        key, not as bytes in a Ray message); ``moving_from``: the lost node that held this
        live session, which ``link``'s node takes over at the first call."""
        self._link = link
        self._info = info
        self._settings = settings
        self._files = files
        self._moving_from = moving_from
        self._running = 0

    def __repr__(self) -> str:
        return f"<RemoteSession {self.id} on {self.node_id} {self.status}>"

    @property
    def node_id(self) -> str:
        return self._link.node_id

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def thread_id(self) -> str:
        return self._info.thread_id

    @property
    def owner(self) -> str:
        return self._info.owner

    @property
    def status(self) -> SessionStatus:
        return self._info.status

    @property
    def busy(self) -> bool:
        """Whether an execution started through this object is running."""
        return self._running > 0

    @property
    def info(self) -> SessionInfo:
        return self._info

    async def _remote(self, method: str, *args: Any, extra: float = 0.0) -> Any:
        """A call to the session's node, which first takes the session over if it moves."""
        await self._arrive()
        return await self._link.call(method, *args, extra=extra)

    async def _arrive(self) -> None:
        if (lost := self._moving_from) is None:
            return
        why = f"its node {lost} is gone"
        reply = await self._link.call(
            "take_over",
            self.id,
            self.owner,
            lost,
            why,
            extra=self._settings.kernel_start_timeout + self._settings.max_file_mb / 10,
        )
        self._moving_from = None
        self._info = info_in(reply)

    async def _call(self, method: str, *args: Any, extra: float = 0.0) -> Any:
        return await self._remote("call", self.id, self.owner, method, *args, extra=extra)

    async def _info_call(self, method: str, *args: Any, extra: float = 0.0) -> SessionInfo:
        self._info = info_in(await self._call(method, *args, extra=extra))
        return self._info

    async def wait_idle(self) -> None:
        await self._info_call("wait_idle", extra=self._settings.max_timeout)

    def keepalive(self) -> SessionInfo:
        raise self._not_yet("keepalive")

    def extend(self, seconds: int) -> SessionInfo:
        raise self._not_yet("extending a session")

    async def pause(self) -> SessionInfo:
        return await self._info_call("pause", extra=2 * self._settings.pause_timeout)

    async def resume(self) -> SessionInfo:
        return await self._info_call("resume", extra=2 * self._settings.pause_timeout)

    async def execute(
        self,
        code: str,
        timeout: float | None = None,
        on_event: EventCallback | None = None,
        *,
        queue_timeout: float | None = None,
    ) -> ExecutionResult:
        if on_event is None:  # nothing to stream: one call
            seconds = self._budget(timeout)
            self._running += 1
            try:
                reply = await self._remote("run", self.id, self.owner, code, timeout, extra=seconds)
            finally:
                self._running -= 1
            return ExecutionResult.model_validate(reply)
        result: ExecutionResult | None = None
        async for event in self.stream(code, timeout):
            if isinstance(event, DoneEvent):
                result = event.result
            elif on_event is not None and (waiting := on_event(event)) is not None:
                await waiting
        if result is None:
            raise errors.NodeUnreachable(f"node {self.node_id} ended the stream without a result")
        return result

    async def stream(
        self, code: str, timeout: float | None = None
    ) -> AsyncGenerator[OutputEvent | DoneEvent, None]:
        """Output events as the node sends them (a Ray streaming generator), then the result."""
        if not isinstance(code, str):
            raise errors.InvalidRequest(f"code must be a string, not {type(code).__name__}")
        seconds = validate_timeout(
            timeout, self._settings.default_timeout, self._settings.max_timeout
        )
        budget = self._budget(seconds) + self._settings.cluster_call_timeout
        await self._arrive()
        self._running += 1
        try:
            items = self._link.stream("execute", self.id, self.owner, code, seconds, seconds=budget)
            async with contextlib.aclosing(items):
                async for item in items:
                    if item.get("type") == "done":
                        yield DoneEvent.model_validate(item)
                    else:
                        yield _EVENT.validate_python(item)
        finally:
            self._running -= 1

    def _budget(self, timeout: float | None) -> float:
        """What an execution may take on its node: its timeout, and the timeout ladder
        (interrupt, then restart) that may run past it."""
        seconds = validate_timeout(
            timeout, self._settings.default_timeout, self._settings.max_timeout
        )
        return seconds + 2 * self._settings.interrupt_grace

    async def interrupt(self) -> None:
        await self._info_call("interrupt")

    async def restart(self) -> None:
        await self._info_call("restart", extra=self._settings.kernel_start_timeout)

    async def upload(self, name: str, data: Source) -> SessionFile:
        if self._files is not None:  # the bytes go to the shared blob store, the node reads them
            obj = await self._files.create(data, check_filename(name), owner=self.owner)
            try:
                return await self.add_file(obj.id, name)
            except errors.EngineError:  # the node refused it: no file object left behind
                await asyncio.to_thread(self._files.delete, obj.id, self.owner)
                raise
        content = await _collect(data, self._settings.max_file_mb * MB)
        reply = await self._remote(
            "upload", self.id, self.owner, name, content, extra=len(content) / MB
        )
        return SessionFile.model_validate(reply)

    async def add_file(
        self, file_id: str, name: str | None = None, *, path: str | None = None
    ) -> SessionFile:
        reply = await self._remote("add_file", self.id, self.owner, file_id, name, path)
        return SessionFile.model_validate(reply)

    def keep_output(self, file_id: str) -> FileObject:
        raise self._not_yet("keeping an output")

    def keep_outputs(self, file_ids: Iterable[str]) -> None:
        raise self._not_yet("keeping outputs")

    async def list_files(self) -> list[SessionFile]:
        return _FILES.validate_python(await self._call("list_files"))

    async def open_file(self, path: str) -> IO[bytes]:
        if self._files is None:
            return io.BytesIO(await self.read_file(path))
        # The node exports the file to the shared blob store (or names its unchanged export).
        file_id = await self._remote(
            "file_key", self.id, self.owner, path, extra=self._settings.max_file_mb / 10
        )
        return await asyncio.to_thread(self._files.open_blob, file_id, self.owner)

    async def read_file(self, path: str) -> bytes:
        if self._files is not None:
            with await self.open_file(path) as f:
                return await asyncio.to_thread(f.read)
        reply = await self._remote(
            "read_file", self.id, self.owner, path, extra=self._settings.max_file_mb / 10
        )
        if not isinstance(reply, bytes):
            raise errors.EngineError(f"node {self.node_id} sent no file content")
        return reply

    async def remove_file(self, path: str) -> None:
        await self._call("remove_file", path)

    async def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        await self._remote("close_session", self.id, self.owner, status.value, extra=30.0)
        self._info = self._info.model_copy(update={"status": status})
        self._info.owner = self.owner or ""

    def _not_yet(self, what: str) -> errors.InvalidRequest:
        return errors.InvalidRequest(f"{what} is not available through a cluster yet")


async def _collect(data: Source, cap: int) -> bytes:
    """An upload's bytes, refused past ``cap``: it crosses to the node in one message."""
    if isinstance(data, bytes):
        chunks: Iterable[bytes] = [data]
    elif isinstance(data, AsyncIterable):
        chunks = [chunk async for chunk in data]
    elif hasattr(data, "read"):
        chunks = [await asyncio.to_thread(data.read, cap + 1)]
    else:
        chunks = data
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > cap:
            raise errors.PayloadTooLarge(f"the upload is larger than {cap // MB} MB")
    return bytes(out)


class NodeRegistry:
    """The node agents a replica knows, and what each last reported, read every
    ``cluster_poll_interval`` seconds."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.links: dict[str, NodeLink] = {}
        self.states: dict[str, NodeState] = {}
        self.reported = asyncio.Event()

    def link(self, node_id: str) -> NodeLink:
        if (link := self.links.get(node_id)) is None:
            raise errors.NodeUnreachable(f"node {node_id} is not part of the cluster (any more)")
        return link

    async def refresh(self) -> None:
        import ray

        names = await asyncio.to_thread(ray.util.list_named_actors)
        present = {n[len(AGENT_PREFIX) :] for n in names if n.startswith(AGENT_PREFIX)}
        for node_id in present - set(self.links):
            handle = await asyncio.to_thread(ray.get_actor, agent_name(node_id), NAMESPACE)
            self.links[node_id] = NodeLink(node_id, handle, self._settings.cluster_call_timeout)
            self.states[node_id] = NodeState(node_id)
        for node_id in set(self.links) - present:
            self.states[node_id].error = "its node agent has left the cluster"
            self.links[node_id].mark(self.states[node_id].error, gone=True)
        await asyncio.gather(*(self._read(self.links[n]) for n in present))
        self.reported.set()

    async def _read(self, link: NodeLink) -> None:
        state = self.states[link.node_id]
        asked = time.time()
        try:
            reply = await link.call("report_data", probe=True)
        except errors.EngineError as exc:
            state.error = str(exc)
            link.mark("the replica's last read of its health went unanswered")
            return
        link.mark(None)
        state.report = NodeReport.model_validate(reply)
        state.error, state.seen_at = None, asked

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the poll must outlive any one failure
                log.exception("reading the cluster's nodes failed")
            await asyncio.sleep(self._settings.cluster_poll_interval)


class ClusterSessions:
    """The sessions of every node, as one session manager: a replica finds a session's node
    in what the nodes report (and in what it created itself meanwhile), and, on a shared
    store (``rows``), in the session's row, which names its node.

    On a shared store, a session whose node is lost is taken up by the healthy node with the
    most room: a paused one resumes there from its snapshot in the shared blob store; a live
    one continues there in a new sandbox with the files its executions exported, its
    variables lost (said in its notice)."""

    def __init__(
        self,
        nodes: NodeRegistry,
        settings: Settings,
        rows: SessionRows | None = None,
        files: FileStore | None = None,
    ) -> None:
        self._nodes = nodes
        self._settings = settings
        self._rows = rows
        self._files = files
        self._moves: dict[str, str] = {}
        """Live sessions of lost nodes, by id: the lost node, which the next use moves from."""
        self._made: dict[str, tuple[str, SessionInfo, float]] = {}
        """Sessions this replica created or closed (with when) since their nodes reported."""

    def _known(self) -> dict[str, tuple[str, SessionInfo]]:
        known: dict[str, tuple[str, SessionInfo]] = {}
        # A lost node's last report first: what a node that answers says wins.
        states = sorted(self._nodes.states.items(), key=lambda item: item[1].error is None)
        for node_id, state in states:
            if state.report is not None:
                for data in state.report.infos:
                    known[data["id"]] = (node_id, info_in(data))
        for session_id, (node_id, info, when) in list(self._made.items()):
            read = self._nodes.states.get(node_id)
            if read is not None and read.seen_at is not None and read.seen_at > when:
                del self._made[session_id]  # the node has reported since: its word wins
            else:
                known[session_id] = (node_id, info)
        for session_id, (node_id, info) in known.items():
            node = self._nodes.states.get(node_id)
            if node is not None and node.error is not None:
                lost = info.model_copy(update={"notice": _lost_notice(node_id, node.error)})
                lost.owner = info.owner
                known[session_id] = (node_id, lost)
        return known

    def __len__(self) -> int:
        return len(self._known())

    def _session(self, node_id: str, info: SessionInfo) -> RemoteSession:
        if node_id not in self._nodes.links:
            raise errors.NodeUnreachable(
                f"node {node_id or '?'} of session {info.id} is not part of the cluster (any "
                "more); what its kernel held may be lost"
            )
        link, moving_from = self._nodes.link(node_id), self._moves.pop(info.id, None)
        return RemoteSession(link, info, self._settings, self._files, moving_from)

    async def get_or_create(
        self,
        thread_id: str | None = None,
        *,
        owner: str = "",
        file_ids: Iterable[str] = (),
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
        network_policy: EgressPolicy | Mapping[str, Any] | None = None,
    ) -> RemoteSession:
        kind = (
            network_policy.get("type")
            if isinstance(network_policy, Mapping)
            else getattr(network_policy, "type", "disabled")
        )
        if kind != "disabled":
            raise errors.InvalidRequest(
                "network_policy: egress is not available through a cluster yet; only "
                '{"type": "disabled"} is served'
            )
        if thread_id is not None and (existing := self.by_thread(thread_id, owner)) is not None:
            return existing
        options: Wire = {
            "owner": owner,
            "file_ids": list(file_ids),
            "idle_timeout": idle_timeout,
            "ttl": ttl,
            "memory_limit_mb": memory_limit_mb,
        }
        refusals: list[str] = []
        for node in ranked(list(self._nodes.states.values())):
            link = self._nodes.link(node.node_id)
            try:
                reply = await link.call(
                    "create", thread_id, options, extra=self._settings.kernel_start_timeout
                )
            except (errors.LimitExceeded, errors.BackendUnavailable) as exc:
                if isinstance(exc, errors.QuotaExceeded):
                    raise  # the tenant's, not the node's
                refusals.append(f"{node.node_id}: {exc}")
                continue
            info = info_in(reply)
            self._made[info.id] = (node.node_id, info, time.time())
            if node.report is not None:  # until the node's next report says so itself
                node.report.sessions += 1
            return self._session(node.node_id, info)
        raise errors.ClusterFull(f"no node could take the session: {'; '.join(refusals)}")

    def _find(self, session_id: str, owner: str | None) -> tuple[str, SessionInfo]:
        found = self._known().get(session_id)
        if self._rows is not None and (found is None or self._lost(found[0])):
            found = self._stored(session_id) or found
        if found is None or (owner is not None and found[1].owner != owner):
            raise errors.SessionNotFound(f"no session with id {session_id!r}")
        return found

    def _lost(self, node_id: str) -> bool:
        state = self._nodes.states.get(node_id)
        return state is None or state.error is not None

    def _stored(self, session_id: str) -> tuple[str, SessionInfo] | None:
        """The session as its row in the shared store says, on the node that holds it; a
        paused one whose node is lost, on the healthy node with the most room."""
        assert self._rows is not None
        row = self._rows.lookup(session_id)
        if row is None:
            return None
        info = SessionInfo.from_row(row)
        info.owner = row["owner"]
        node_id = str(row.get("node_id") or "")
        if not self._lost(node_id) or info.status not in (
            SessionStatus.PAUSED,
            SessionStatus.ACTIVE,
        ):
            return node_id, info
        try:
            target = ranked(list(self._nodes.states.values()))[0].node_id
        except errors.ClusterFull:
            target = None
        if info.status is SessionStatus.PAUSED and target is not None:
            return target, info  # the node that uses it resumes it from its snapshot
        state = self._nodes.states.get(node_id)
        why = state.error if state is not None and state.error else "it is not in the cluster"
        lost = info.model_copy(update={"notice": _lost_notice(node_id, why)})
        lost.owner = info.owner
        link = self._nodes.links.get(node_id)
        if target is None or info.status is SessionStatus.PAUSED or (link and not link.gone):
            return node_id, lost
        self._moves[session_id] = node_id  # its next use continues it on the target
        return target, lost

    def get(self, session_id: str, owner: str | None = None) -> RemoteSession:
        node_id, info = self._find(session_id, owner)
        if info.status in (SessionStatus.CLOSED, SessionStatus.EXPIRED):
            raise errors.SessionClosed(f"session {session_id} is {info.status.value}")
        return self._session(node_id, info)

    def by_thread(self, thread_id: str, owner: str = "") -> RemoteSession | None:
        for node_id, info in self._known().values():
            if info.thread_id == thread_id and info.owner == owner and _open(info):
                return self._session(node_id, info)
        return None

    def info(self, session_id: str, owner: str | None = None) -> SessionInfo:
        return self._find(session_id, owner)[1]

    def list(
        self,
        owner: str | None = None,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        live_only: bool = False,
    ) -> Page[SessionInfo]:
        infos = [
            info
            for _, info in self._known().values()
            if (owner is None or info.owner == owner)
            and (not live_only or info.status is SessionStatus.ACTIVE)
        ]
        infos.sort(key=lambda i: (i.created_at, i.id))
        return page_list(infos, limit=limit, order=order, after=after, before=before)

    def live(self) -> Sequence[RemoteSession]:
        return [self._session(n, i) for n, i in self._known().values() if _open(i)]

    def node_of(self, session_id: str) -> str:
        return self._find(session_id, None)[0]

    async def close(
        self,
        session_id: str,
        owner: str | None = None,
        status: SessionStatus = SessionStatus.CLOSED,
    ) -> None:
        try:
            session = self.get(session_id, owner)
        except errors.SessionClosed:
            return
        await session.close(status)
        self._made[session_id] = (session.node_id, session.info, time.time())


def _lost_notice(node_id: str, error: str) -> str:
    return (
        f"this session's node {node_id} does not answer ({error}); what its kernel held may be lost"
    )


def _open(info: SessionInfo) -> bool:
    return info.status not in (SessionStatus.CLOSED, SessionStatus.EXPIRED)


class ClusterHost(SessionHost[RemoteSession]):
    """An API replica of a cluster: ``sessions`` are on node agents, reached through Ray at
    ``address`` with this host's token (``security.token_for``)."""

    def __init__(self, address: str, settings: Settings | None = None) -> None:
        self.address = address
        self.settings = settings or Settings()
        self.nodes = NodeRegistry(self.settings)
        url = self.settings.database_url
        # On a shared store, sessions' rows say which node holds each.
        self.store = Store(self.settings.data_dir / "engine.db", url) if url else None
        rows = self.store.session_rows if self.store is not None else None
        # With shared blobs too, uploads go to the node by key.
        files = None
        if self.store is not None and self.settings.files_url:
            files = open_files(self.settings, self.store)
        self._sessions = ClusterSessions(self.nodes, self.settings, rows, files)
        self._poll: asyncio.Task[None] | None = None

    @property
    def sessions(self) -> ClusterSessions:
        return self._sessions

    async def start(self) -> Self:
        connect(self.address, self.settings)
        self._poll = asyncio.create_task(self.nodes.poll_forever(), name="cluster-nodes")
        await asyncio.wait_for(self.nodes.reported.wait(), self.settings.cluster_call_timeout + 5)
        return self

    async def close(self) -> None:
        import ray

        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        if self.store is not None:
            self.store.close()
        ray.shutdown()

    def status(self) -> list[NodeState]:
        return sorted(self.nodes.states.values(), key=lambda s: s.node_id)


def connect(address: str, settings: Settings) -> None:
    """Join the cluster at ``address`` as a driver, with the token; ClusterTokenMissing if
    there is none (a cluster never runs without one)."""
    token = token_for(settings.data_dir)
    if "ray" in sys.modules and os.environ.get("RAY_AUTH_MODE") != "token":
        # Ray reads its auth settings once, as it is imported.
        raise errors.EngineError(
            "ray was imported before the cluster's token was set: connect before importing ray, "
            "or set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH in the environment"
        )
    token.apply()
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
