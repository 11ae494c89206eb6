"""The session manager: one live session per (owner, thread id), with lifetimes and limits,
the reaper that ends them, and re-adoption of what an earlier process left."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from .. import errors, metrics
from ..egress.policy import EgressPolicy, parse_cap, parse_policy
from ..lease import OWNER_LABEL, Lease
from ..names import check_text
from ..paging import Page
from ..sandbox.base import SandboxSpec
from ..store import Row
from .context import SessionContext
from .models import SessionInfo, SessionStatus
from .recovery import Recovery
from .session import Session, SessionControl
from .snapshots import SnapshotMeta

log = logging.getLogger(__name__)
PARALLEL_PAUSES = 4


class SessionManager:
    """Owns every live session: one per (owner, thread id), with lifetimes and limits.

    A live session holds a sandbox; a paused one lives in the store, and in memory only while
    someone holds its object, so that start-up and memory do not grow with their number."""

    def __init__(self, ctx: SessionContext, labels: dict[str, str], lease: Lease) -> None:
        self._ctx = ctx
        self._settings = ctx.settings
        self._records = ctx.records
        self._labels = labels
        self._lease = lease
        self._live: dict[str, Session] = {}
        self._paused: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
        self._pausing = asyncio.Semaphore(PARALLEL_PAUSES)
        self._roster = _Roster(self)
        self._by_thread: dict[tuple[str, str], Session] = {}
        self._creating: dict[tuple[str, str], asyncio.Task[Session]] = {}
        self._committing: dict[tuple[str, str], int] = {}
        """The memory limit (MB) of each session being created."""
        self._reaper: asyncio.Task[None] | None = None
        self._sweeping: asyncio.Task[int] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._live)

    async def start(self) -> None:
        await self.recover()
        self._reaper = asyncio.create_task(self._reap_forever(), name="session-reaper")

    async def recover(self) -> int:
        """After a restart: re-adopt this engine's live sessions; salvage what engines that are
        gone left, then remove it. Returns how many sessions continue."""
        started, swept_before = time.perf_counter(), time.time()
        home = {k: v for k, v in self._labels.items() if k != OWNER_LABEL}
        sessions = await Recovery(self._ctx, self._lease, home).run(self._restore)
        log.info(
            "recovered %d session(s) in %.3f s (as %s)",
            len(sessions),
            time.perf_counter() - started,
            self._lease.owner,
        )
        for session in sessions:
            self._live[session.id] = session
            self._by_thread[(session.owner, session.thread_id)] = session
        metrics.SESSIONS_LIVE.set(len(self._live))
        for ended in self._records.ended_with_outputs():
            self._ctx.files.drop_session_outputs(ended)
        # What a crash in mid-pause left is swept beside the first requests, not before them:
        # the paused may be many. What a pause of this process writes is newer than that.
        self._sweeping = asyncio.create_task(asyncio.to_thread(self._sweep_snapshots, swept_before))
        return len(sessions)

    def _sweep_snapshots(self, started: float) -> int:
        paused = self._records.ids_in_status(SessionStatus.PAUSED)
        return self._ctx.snapshots.sweep(set(paused), older_than=started)

    def _restore(self, row: Row) -> Session:
        """A session object for a stored row, not yet running anywhere."""
        info = SessionInfo.from_row({**row, "status": SessionStatus.STARTING.value})
        memory = row["memory_limit_mb"] or self._ctx.spec.memory_limit_mb
        egress = EgressPolicy.from_json(row.get("network_policy"))
        spec = dataclasses.replace(self._ctx.spec, memory_limit_mb=memory, egress=egress)
        session = Session(info, row["expires_at"], self._ctx, spec, roster=self._roster)
        session.last_active = float(row["last_active_at"])
        return session

    def _take_up_paused(self, row: Row) -> Session:
        """The object of a paused session (one object per session while anyone holds it)."""
        if (session := self._paused.get(row["id"])) is not None:
            return session
        session = self._restore(row)
        SessionControl(session).as_paused(row["paused_at"], SnapshotMeta.from_json(row["snapshot"]))
        self._paused[session.id] = session
        return session

    def _held(self, session_id: str) -> Session | None:
        return self._live.get(session_id) or self._paused.get(session_id)

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
    ) -> Session:
        if self._closed:
            raise errors.EngineError("the engine is closed")
        if thread_id is None:
            thread_id = f"thread_{uuid.uuid4().hex}"
        if not isinstance(thread_id, str) or not thread_id or len(thread_id) > 256:
            raise errors.InvalidRequest("thread_id must be a non-empty string (<= 256 chars)")
        check_text("thread_id", thread_id)
        file_ids = list(file_ids)
        if not all(isinstance(f, str) for f in file_ids):
            raise errors.InvalidRequest("file_ids must be a list of strings")
        for f in file_ids:
            self._ctx.files.retrieve(f, owner)
        idle = _check_seconds(
            "idle_timeout",
            idle_timeout,
            self._settings.idle_timeout,
            self._settings.max_session_lifetime,
        )
        life = _check_seconds(
            "ttl", ttl, self._settings.session_ttl, self._settings.max_session_lifetime
        )
        memory = _check_number(
            "memory_limit_mb",
            memory_limit_mb,
            self._settings.memory_limit_mb,
            64,
            self._settings.max_memory_limit_mb,
        )
        egress = parse_policy(network_policy, parse_cap(self._settings.egress_allowed_domains))
        spec = dataclasses.replace(self._ctx.spec, memory_limit_mb=memory, egress=egress)
        key = (owner, thread_id)
        if (existing := self.by_thread(thread_id, owner)) is not None:
            if network_policy is not None and existing.spec.egress != egress:
                raise errors.InvalidRequest(
                    f"thread {thread_id!r} already has a session with another network_policy"
                )
            for f in file_ids:
                await existing.add_file(f)
            return existing
        task = self._creating.get(key)
        if task is None:
            self._check_limits(owner, memory)
            task = asyncio.ensure_future(self._create(key, file_ids, idle, life, spec))
            self._creating[key] = task
            self._committing[key] = memory
            task.add_done_callback(lambda _: self._done_creating(key))
        return await asyncio.shield(task)

    def _done_creating(self, key: tuple[str, str]) -> None:
        self._creating.pop(key, None)
        self._committing.pop(key, None)

    def committed(self, owner: str) -> tuple[int, int]:
        """The live (and starting) sessions of ``owner``, and the MB of memory they commit."""
        live = [s.spec.memory_limit_mb for s in self._live.values() if s.owner == owner]
        starting = [mb for (o, _), mb in self._committing.items() if o == owner]
        return len(live) + len(starting), sum(live) + sum(starting)

    def _check_limits(self, owner: str, memory_mb: int) -> None:
        live = len(self._live) + len(self._creating)
        if live >= self._settings.max_sessions:
            raise errors.LimitExceeded(f"the engine already runs {live} sessions, its limit")
        count, committed = self.committed(owner)
        if count >= self._settings.max_sessions_per_owner:
            raise errors.QuotaExceeded(
                f"this tenant already has {count} live sessions",
                self._settings.max_sessions_per_owner,
                "",
                "SANDBOX_MAX_SESSIONS_PER_OWNER",
            )
        if committed + memory_mb > self._settings.max_memory_mb_per_owner:
            raise errors.QuotaExceeded(
                f"this tenant's live sessions commit {committed} MB of memory and this one asks "
                f"for {memory_mb} MB more",
                self._settings.max_memory_mb_per_owner,
                " MB",
                "SANDBOX_MAX_MEMORY_MB_PER_OWNER",
            )

    async def _create(
        self,
        key: tuple[str, str],
        file_ids: list[str],
        idle: int,
        life: int,
        spec: SandboxSpec,
    ) -> Session:
        owner, thread_id = key
        now = int(time.time())
        info = SessionInfo(
            id=f"sess_{uuid.uuid4().hex}",
            thread_id=thread_id,
            status=SessionStatus.STARTING,
            created_at=now,
            last_active_at=now,
            expires_at=now + min(life, idle),
            idle_timeout=idle,
            network_policy=spec.egress.public(),
            owner=owner,
        )
        self._records.insert(
            info,
            now + life,
            engine_owner=self._lease.owner,
            memory_limit_mb=spec.memory_limit_mb,
            network_policy=spec.egress,
        )
        session = Session(info, now + life, self._ctx, spec, roster=self._roster)
        try:
            await session.start(file_ids)
        except BaseException:
            await session.close(SessionStatus.CLOSED)
            raise
        self._live[session.id] = session
        self._by_thread[key] = session
        metrics.SESSIONS_CREATED.inc()
        metrics.SESSIONS_LIVE.set(len(self._live))
        return session

    def get(self, session_id: str, owner: str | None = None) -> Session:
        """A live or paused session (any use of a paused one resumes it). Closed or expired
        ones raise SessionClosed; unknown ones NotFound."""
        if not isinstance(session_id, str):
            raise errors.InvalidRequest("session id must be a string")
        session = self._held(session_id)
        if session is not None and (owner is None or session.owner == owner):
            return session
        info = self.info(session_id, owner)
        if info.status is SessionStatus.PAUSED:
            return self._take_up_paused(self._records.row(session_id))
        raise errors.SessionClosed(f"session {session_id} is {info.status.value}")

    async def take_over(self, session_id: str, owner: str | None, node: str, why: str) -> Session:
        """Continue here a live session of cluster node ``node``, which is gone: in a new
        sandbox, with the files its executions exported (``SessionControl.move_here``)."""
        session = self._held(session_id)
        if session is not None and (owner is None or session.owner == owner):
            return session  # a move asked twice
        row = self._records.row(session_id)
        if (owner is not None and row["owner"] != owner) or row["status"] != "active":
            raise errors.SessionClosed(f"session {session_id} is not a live session to move")
        self._check_limits(row["owner"], row["memory_limit_mb"] or self._ctx.spec.memory_limit_mb)
        if not self._records.take(session_id, node):
            raise errors.SessionClosed(f"session {session_id} was moved by another node")
        session = self._restore(row)
        try:
            await SessionControl(session).move_here(why)
        except errors.EngineError as exc:  # as in recovery: a session that cannot go on ends
            self._records.expire(session_id, f"{why}; it could not continue elsewhere: {exc}")
            raise
        self._live[session.id] = session
        self._by_thread[(session.owner, session.thread_id)] = session
        metrics.SESSIONS_LIVE.set(len(self._live))
        return session

    def by_thread(self, thread_id: str, owner: str = "") -> Session | None:
        """The live or paused session of a thread, if there is one."""
        if (session := self._by_thread.get((owner, thread_id))) is not None:
            return session
        row = self._records.paused_of_thread(owner, thread_id)
        return self._take_up_paused(row) if row is not None else None

    # --- what a session tells the manager (through its _Roster) ---

    def _ended(self, session: Session, status: SessionStatus) -> None:
        """A session is closing (through the manager or by itself): its thread gets a new one."""
        was_paused = self._paused.pop(session.id, None) is not None
        if self._live.get(session.id) is session:
            self._let_go(session)
        elif not was_paused:
            return  # it never started, or close_all already let go of everything
        metrics.SESSIONS_ENDED.labels(status.value).inc()

    def _now_paused(self, session: Session) -> None:
        if self._live.get(session.id) is session:
            self._let_go(session)
        self._paused[session.id] = session

    def _resuming(self, session: Session) -> None:
        if self._closed:
            raise errors.EngineError("the engine is closed")
        key = (session.owner, session.thread_id)
        if (other := self._by_thread.get(key)) is not None and other is not session:
            raise errors.SessionClosed(
                f"thread {session.thread_id!r} has gone on in session {other.id}"
            )
        self._check_limits(session.owner, session.spec.memory_limit_mb)
        self._records.claim(session.id)  # it may have been paused by another engine
        self._paused.pop(session.id, None)
        self._live[session.id] = session
        self._by_thread[key] = session
        metrics.SESSIONS_LIVE.set(len(self._live))

    def _let_go(self, session: Session) -> None:
        del self._live[session.id]
        self._by_thread.pop((session.owner, session.thread_id), None)
        metrics.SESSIONS_LIVE.set(len(self._live))

    def info(self, session_id: str, owner: str | None = None) -> SessionInfo:
        session = self._held(session_id)
        if session is not None and (owner is None or session.owner == owner):
            return session.info
        return self._records.owned(session_id, owner)

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
        filters: dict[str, Any] = {} if owner is None else {"owner": owner}
        if live_only:
            filters["status"] = SessionStatus.ACTIVE.value
        rows, has_more = self._records.page(
            filters, limit=limit, order=order, after=after, before=before
        )
        infos = [
            session.info if (session := self._held(r["id"])) else SessionInfo.from_row(r)
            for r in rows
        ]
        return Page[SessionInfo].of(infos, has_more)

    def live(self) -> builtins.list[Session]:
        return list(self._live.values())

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

    async def reap(self) -> int:
        """End every session whose time is up, and pause the idle ones (with auto-pause on).
        Returns how many ended."""
        now = time.time()
        ended = 0
        idle: list[Session] = []
        for session in list(self._live.values()):
            if now >= session.deadline:
                await session.close(SessionStatus.EXPIRED)
                ended += 1
            elif not session.busy and self._idle_for_pause(session, now):
                idle.append(session)
            elif session.idle_expired and not session.busy:
                await session.close(SessionStatus.EXPIRED)
                ended += 1
        await asyncio.gather(*(self._auto_pause(s) for s in idle))
        for row in self._records.paused_due(int(now)):
            if row["id"] in self._live:
                continue  # resumed meanwhile
            await self._take_up_paused(row).close(SessionStatus.EXPIRED)
            ended += 1
        return ended

    def _idle_for_pause(self, session: Session, now: float) -> bool:
        after = self._settings.auto_pause_after
        if after <= 0:
            return False
        return now >= session.last_active + min(after, session.info.idle_timeout)

    async def _auto_pause(self, session: Session) -> None:
        async with self._pausing:
            try:
                await session.pause()
            except errors.SessionClosed:
                pass
            except Exception:  # a pause that fails leaves the session as it was
                log.exception("session %s: auto-pause failed", session.id)
                if session.idle_expired:  # as it would have without auto-pause
                    await session.close(SessionStatus.EXPIRED)

    async def _refresh_deadlines(self) -> None:
        """Carry each live session's activity to its sandbox's own deadline."""
        sessions = list(self._live.values())
        results = await asyncio.gather(
            *(SessionControl(s).refresh_deadline() for s in sessions), return_exceptions=True
        )
        for session, result in zip(sessions, results, strict=True):
            if isinstance(result, Exception):
                log.warning(
                    "session %s: could not move its sandbox's deadline: %s", session.id, result
                )

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reaper_interval)
            try:
                await self.reap()
                await self._refresh_deadlines()
                for pool in (self._ctx.pool, self._ctx.resume_pool):
                    if pool is not None:
                        pool.tick()
            except Exception:  # the reaper must outlive any one failure
                log.exception("session reaper failed")

    async def close_all(self, *, keep: bool = False) -> None:
        """End every session, or with ``keep`` leave their sandboxes running for the next
        engine process on this data folder to re-adopt."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._sweeping is not None:
            with contextlib.suppress(Exception):
                await self._sweeping
        for task in list(self._creating.values()):
            with contextlib.suppress(Exception):  # a failed start cleaned up after itself
                await task
        sessions = list(self._live.values())
        self._live.clear()
        self._by_thread.clear()
        if keep:
            await asyncio.gather(
                *(SessionControl(s).detach() for s in sessions), return_exceptions=True
            )
        else:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


class _Roster:
    """The manager as its sessions see it (``session.Roster``)."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    def ended(self, session: Session, status: SessionStatus) -> None:
        self._manager._ended(session, status)

    def paused(self, session: Session) -> None:
        self._manager._now_paused(session)

    def resuming(self, session: Session) -> None:
        self._manager._resuming(session)


def _check_seconds(name: str, value: object, default: int, maximum: int) -> int:
    return _check_number(name, value, default, 1, maximum)


def _check_number(name: str, value: object, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise errors.InvalidRequest(f"{name} must be a whole number from {minimum} to {maximum}")
    return value
