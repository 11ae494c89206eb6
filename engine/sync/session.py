"""Blocking faces of Session and SessionManager."""

from __future__ import annotations

import builtins
from collections.abc import Generator, Iterable, Mapping
from typing import IO, Any

from ..egress.policy import EgressPolicy
from ..files import FileObject, Source
from ..kernel import EventCallback
from ..results import DoneEvent, ExecutionResult, OutputEvent
from ..sandbox.base import Sandbox, SandboxSpec
from ..sessions import Session, SessionFile, SessionInfo, SessionManager, SessionStatus
from .portal import Portal
from .twin import Twin, blocking, on_loop


class SyncSession:
    """A live kernel in its own sandbox (see ``Session``); every method blocks."""

    def __init__(self, session: Session, portal: Portal) -> None:
        self._session = session
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._session)

    @property
    def session(self) -> Session:
        """The async session underneath."""
        return self._session

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def thread_id(self) -> str:
        return self._session.thread_id

    @property
    def owner(self) -> str:
        return self._session.owner

    @property
    def status(self) -> SessionStatus:
        return self._session.status

    @property
    def busy(self) -> bool:
        return self._session.busy

    @property
    def info(self) -> SessionInfo:
        return self._session.info

    @property
    def sandbox(self) -> Sandbox:
        """The backend's sandbox: an async object, for low-level use on the engine's loop."""
        return self._session.sandbox

    @property
    def spec(self) -> SandboxSpec:
        return self._session.spec

    @property
    def deadline(self) -> int:
        """The hard deadline, in seconds since the epoch."""
        return self._session.deadline

    @property
    def last_active(self) -> float:
        return self._session.last_active

    @property
    def idle_expired(self) -> bool:
        return self._session.idle_expired

    def wait_idle(self) -> None:
        """Return once every execution queued so far has finished."""
        self._portal.run(self._session.wait_idle)

    def touch(self) -> None:
        """Any activity resets the idle timeout."""
        self._portal.run_sync(self._session.touch)

    def keepalive(self) -> SessionInfo:
        return self._portal.run_sync(self._session.keepalive)

    def extend(self, seconds: int) -> SessionInfo:
        """Push the hard deadline out by ``seconds`` (and count as activity)."""
        return self._portal.run_sync(self._session.extend, seconds)

    def expire_in(self, seconds: int) -> SessionInfo:
        """End it ``seconds`` from now, busy or idle."""
        return self._portal.run_sync(self._session.expire_in, seconds)

    @property
    def paused_until(self) -> int | None:
        """While paused: when it stops being kept."""
        return self._session.paused_until

    def pause(self) -> SessionInfo:
        """Save its variables and files, then remove its sandbox (any use resumes it)."""
        return self._portal.run(self._session.pause)

    def resume(self) -> SessionInfo:
        """Start it again from the warm pool, with its variables and files back."""
        return self._portal.run(self._session.resume)

    def start(self, file_ids: Iterable[str] = ()) -> None:
        self._portal.run(self._session.start, file_ids)

    def execute(
        self,
        code: str,
        timeout: float | None = None,
        on_event: EventCallback | None = None,
        *,
        queue_timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; ``on_event`` receives stdout, stderr, display, result and error live
        (called on the engine's thread).

        Waits its turn behind earlier executions; ``queue_timeout`` bounds that wait.
        """
        return self._portal.run(
            self._session.execute, code, timeout, on_event, queue_timeout=queue_timeout
        )

    def stream(
        self, code: str, timeout: float | None = None
    ) -> Generator[OutputEvent | DoneEvent, None, None]:
        """Yield output events while ``code`` runs, then one DoneEvent with the result.

        Closing the iterator early interrupts the execution.
        """
        return self._portal.iterate(self._session.stream(code, timeout))

    def interrupt(self) -> None:
        self._portal.run(self._session.interrupt)

    def restart(self) -> None:
        """A fresh kernel: variables go, files in /mnt/data stay."""
        self._portal.run(self._session.restart)

    def upload(self, name: str, data: Source) -> SessionFile:
        """Place raw bytes at /mnt/data/<name>; they also become a file object."""
        return self._portal.run(self._session.upload, name, data)

    def add_file(
        self, file_id: str, name: str | None = None, *, path: str | None = None
    ) -> SessionFile:
        """Place an existing file object at /mnt/data/<name> (its own filename by default), or
        at ``path``, a path below /mnt/data whose folders are made as needed."""
        return self._portal.run(self._session.add_file, file_id, name, path=path)

    def list_files(self) -> list[SessionFile]:
        return self._portal.run(self._session.list_files)

    def keep_output(self, file_id: str) -> FileObject:
        """Promote an output of this session: it outlives the session (until deleted)."""
        return self._portal.run_sync(self._session.keep_output, file_id)

    def keep_outputs(self, file_ids: Iterable[str]) -> None:
        self._portal.run_sync(self._session.keep_outputs, list(file_ids))

    def open_file(self, path: str) -> IO[bytes]:
        """Open /mnt/data/<path> for reading; symlinks and special files are refused."""
        return self._portal.run(self._session.open_file, path)

    def read_file(self, path: str) -> bytes:
        return self._portal.run(self._session.read_file, path)

    def remove_file(self, path: str) -> None:
        self._portal.run(self._session.remove_file, path)

    def close(self, status: SessionStatus = SessionStatus.CLOSED) -> None:
        """End the session and remove its sandbox. Its thread gets a new session next time."""
        self._portal.run(self._session.close, status)


class SyncSessions(Twin[SessionManager]):
    """Every live session of the engine (see ``SessionManager``); every method blocks.

    The manager's own lifecycle (``start``, ``recover``, ``close_all``) is run by
    ``SyncEngine.start`` and ``SyncEngine.close``.
    """

    def __len__(self) -> int:
        return len(self._face)

    def _wrap(self, session: Session) -> SyncSession:
        return SyncSession(session, self._portal)

    def get_or_create(
        self,
        thread_id: str | None = None,
        *,
        owner: str = "",
        file_ids: Iterable[str] = (),
        idle_timeout: int | None = None,
        ttl: int | None = None,
        memory_limit_mb: int | None = None,
        network_policy: EgressPolicy | Mapping[str, Any] | None = None,
    ) -> SyncSession:
        session = self._portal.run(
            self._face.get_or_create,
            thread_id,
            owner=owner,
            file_ids=file_ids,
            idle_timeout=idle_timeout,
            ttl=ttl,
            memory_limit_mb=memory_limit_mb,
            network_policy=network_policy,
        )
        return self._wrap(session)

    info = on_loop(SessionManager.info)
    committed = on_loop(SessionManager.committed)
    list = on_loop(SessionManager.list)
    close = blocking(SessionManager.close)
    reap = blocking(SessionManager.reap)

    def get(self, session_id: str, owner: str | None = None) -> SyncSession:
        """A live session. Closed or expired ones raise SessionClosed; unknown ones NotFound."""
        return self._wrap(self._portal.run_sync(self._face.get, session_id, owner))

    def by_thread(self, thread_id: str, owner: str = "") -> SyncSession | None:
        """The live session of a thread, if there is one."""
        session = self._portal.run_sync(self._face.by_thread, thread_id, owner)
        return None if session is None else self._wrap(session)

    def live(self) -> builtins.list[SyncSession]:
        return [self._wrap(s) for s in self._portal.run_sync(self._face.live)]
