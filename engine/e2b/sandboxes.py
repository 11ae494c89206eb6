"""E2B sandboxes made of engine sessions: the sandbox is a session (its id is the session's),
and each extra code context is a session of its own, so that contexts share no interpreter,
no process and no memory (a namespace in one kernel would share all three)."""

from __future__ import annotations

import builtins
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..egress.policy import DISABLED, EgressPolicy, policy_from_e2b
from ..results import ExecutionResult, OutputEvent
from ..runtime import SessionHost
from ..sandbox.base import Sandbox
from ..sessions import Session, SessionStatus
from ..store import Store
from .filesystem import Filesystem
from .paths import sandbox_path
from .records import Context, E2BSandbox, SandboxRecords

TEMPLATES = ("code-interpreter-v1", "base")
ENVD_VERSION = "0.1.0"
"""The envd version we report. The SDKs gate newer features on it (octet-stream uploads at
0.5.7, file metadata at 0.6.2, closing stdin at 0.5.2, ...), none of which we serve."""
DEFAULT_CONTEXT = "default"
LANGUAGES = ("python", None)
MAX_LIST = 100


@dataclass(frozen=True)
class SandboxPage:
    sandboxes: list[tuple[E2BSandbox, Session]]
    next_token: str | None


class E2BSandboxes:
    """Create, find, time, pause and end E2B sandboxes; run code in their contexts."""

    def __init__(
        self, host: SessionHost[Session], store: Store, egress_cap: Sequence[str] = ()
    ) -> None:
        self._host = host
        self._records = SandboxRecords(store)
        self._egress_cap = list(egress_cap)

    def policy(
        self, allow_internet_access: bool | None, network: Mapping[str, Any] | None
    ) -> EgressPolicy:
        """E2B's ``allow_internet_access`` and ``network`` as the engine's egress policy,
        within what the operator allows (``SANDBOX_EGRESS_ALLOWED_DOMAINS``)."""
        network = network or {}
        lists = {}
        for key in ("allowOut", "denyOut"):
            value = network.get(key)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            ):
                raise errors.InvalidRequest(f"network.{key} must be a list of strings")
            lists[key] = value
        return policy_from_e2b(
            self._egress_cap,
            allow_internet_access=allow_internet_access,
            allow_out=lists["allowOut"],
            deny_out=lists["denyOut"],
        )

    # --- the control plane ---

    async def create(
        self,
        owner: str,
        template: str,
        timeout: int,
        metadata: dict[str, str] | None = None,
        env_vars: dict[str, str] | None = None,
        network_policy: EgressPolicy = DISABLED,
    ) -> E2BSandbox:
        if template not in TEMPLATES:
            raise errors.InvalidRequest(
                f"template {template!r} is not served; the templates are {', '.join(TEMPLATES)}"
            )
        session = await self._host.session(
            f"e2b_{uuid.uuid4().hex}",
            owner=owner,
            ttl=timeout,
            idle_timeout=timeout,
            network_policy=network_policy,
        )
        record = E2BSandbox(
            id=session.id,
            owner=owner,
            template=template,
            metadata=dict(metadata or {}),
            env_vars=dict(env_vars or {}),
            access_token=secrets.token_urlsafe(32),
            network_policy=network_policy.model_dump(),
            created_at=session.info.created_at,
            started_at=time.time(),
        )
        if record.env_vars:
            try:
                await _set_environ(session, record.env_vars)
            except BaseException:
                await session.close()
                raise
        self._records.save(record)
        return record

    def get(self, sandbox_id: str, owner: str) -> E2BSandbox:
        """Another owner's sandbox is reported like one that never existed."""
        record = self._records.get(sandbox_id)
        if record is None or record.owner != owner or not self._alive(record):
            raise errors.NotFound(f"sandbox {sandbox_id!r} not found")
        return record

    def session(self, record: E2BSandbox) -> Session:
        return self._host.sessions.get(record.id, record.owner)

    def _alive(self, record: E2BSandbox) -> bool:
        try:
            self._host.sessions.get(record.id, record.owner)
        except (errors.NotFound, errors.SessionClosed):
            self._records.drop(record)
            return False
        return True

    def check_token(self, sandbox_id: str, token: str | None) -> E2BSandbox:
        """The sandbox whose envd access token ``token`` is, compared in constant time."""
        record = self._records.get(sandbox_id)
        expected = record.access_token if record is not None else secrets.token_urlsafe(32)
        if not hmac.compare_digest(expected.encode(), (token or "").encode()):
            raise errors.AccessDenied("the sandbox's access token is missing or wrong")
        if record is None or not self._alive(record):
            raise errors.NotFound(f"sandbox {sandbox_id!r} not found")
        return record

    def find(self, sandbox_id: str) -> E2BSandbox:
        """A sandbox by its id alone: the code interpreter's context routes carry no token."""
        record = self._records.get(sandbox_id)
        if record is None or not self._alive(record):
            raise errors.NotFound(f"sandbox {sandbox_id!r} not found")
        return record

    async def kill(self, sandbox_id: str, owner: str) -> None:
        record = self.get(sandbox_id, owner)
        self._records.drop(record)
        await record.commands.close()
        for context in record.contexts.values():
            await self._host.sessions.close(context.session_id, owner)
        await self._host.sessions.close(record.id, owner)

    def set_timeout(self, sandbox_id: str, owner: str, seconds: int) -> None:
        record = self.get(sandbox_id, owner)
        for session in self._sessions(record):
            session.expire_in(seconds)

    async def pause(self, sandbox_id: str, owner: str) -> None:
        record = self.get(sandbox_id, owner)
        if self.session(record).status is SessionStatus.PAUSED:
            raise errors.Conflict(f"sandbox {sandbox_id} is already paused")
        await record.commands.close()
        for session in self._sessions(record):
            await session.pause()

    async def connect(self, sandbox_id: str, owner: str, timeout: int) -> E2BSandbox:
        """Resume it if it is paused (variables and files come back) and end it ``timeout``
        seconds from now; a running one only ever gets longer, as at E2B."""
        record = self.get(sandbox_id, owner)
        session = self.session(record)
        if session.status is SessionStatus.PAUSED:
            await session.resume()
        elif session.info.expires_at >= time.time() + timeout:
            return record
        for each in self._sessions(record):
            each.expire_in(timeout)
        return record

    def list(
        self,
        owner: str,
        metadata: dict[str, str],
        states: set[str],
        limit: int,
        next_token: str | None,
    ) -> SandboxPage:
        rows = []
        for record in sorted(self._records.owned_by(owner), key=lambda r: (r.started_at, r.id)):
            if not self._alive(record):
                continue
            if any(record.metadata.get(k) != v for k, v in metadata.items()):
                continue
            session = self.session(record)
            if state_of(session) not in states:
                continue
            rows.append((record, session))
        start = 0
        if next_token:
            ids = [r.id for r, _ in rows]
            start = ids.index(next_token) + 1 if next_token in ids else len(rows)
        limit = max(1, min(limit, MAX_LIST))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return SandboxPage(page, page[-1][0].id if more and page else None)

    def _sessions(self, record: E2BSandbox) -> builtins.list[Session]:
        ids = [record.id, *(c.session_id for c in record.contexts.values())]
        return [self._host.sessions.get(i, record.owner) for i in ids]

    # --- the sandbox plane ---

    async def sandbox(self, record: E2BSandbox) -> Sandbox:
        """The live sandbox (resumed first if it was paused), for commands and files."""
        session = self.session(record)
        if session.status is SessionStatus.PAUSED:
            await session.resume()
        return session.sandbox

    async def filesystem(self, record: E2BSandbox) -> Filesystem:
        return Filesystem(await self.sandbox(record))

    def context_session(self, record: E2BSandbox, context_id: str | None) -> Session:
        if context_id in (None, DEFAULT_CONTEXT):
            return self.session(record)
        context = record.contexts.get(str(context_id))
        if context is None:
            raise errors.NotFound(f"context {context_id!r} not found")
        return self._host.sessions.get(context.session_id, record.owner)

    async def create_context(
        self, record: E2BSandbox, language: str | None, cwd: str | None
    ) -> Context:
        check_language(language)
        main = self.session(record)
        seconds = max(1, main.info.expires_at - int(time.time()))
        session = await self._host.session(
            f"e2b_{uuid.uuid4().hex}",
            owner=record.owner,
            ttl=seconds,
            idle_timeout=seconds,
            network_policy=record.network_policy,
        )
        context = Context(id=uuid.uuid4().hex, session_id=session.id, cwd=cwd or "/home/user")
        try:
            await _set_environ(session, record.env_vars, sandbox_path(context.cwd))
        except BaseException:
            await session.close()
            raise
        record.contexts[context.id] = context
        self._records.save(record)
        return context

    def contexts(self, record: E2BSandbox) -> builtins.list[Context]:
        main = Context(id=DEFAULT_CONTEXT, session_id=record.id, cwd="/home/user")
        return [main, *record.contexts.values()]

    async def remove_context(self, record: E2BSandbox, context_id: str) -> None:
        context = record.contexts.pop(context_id, None)
        if context is None:
            raise errors.NotFound(f"context {context_id!r} not found")
        self._records.save(record)
        await self._host.sessions.close(context.session_id, record.owner)

    async def restart_context(self, record: E2BSandbox, context_id: str) -> None:
        session = self.context_session(record, context_id)
        await session.restart()
        context = record.contexts.get(context_id)
        cwd = sandbox_path(context.cwd) if context is not None else None
        if record.env_vars or cwd:
            await _set_environ(session, record.env_vars, cwd)

    async def run_code(
        self,
        session: Session,
        code: str,
        env_vars: dict[str, str] | None,
        on_event: Any,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; ``env_vars`` hold for this run only, as E2B's do."""
        if not env_vars:
            return await session.execute(code, timeout, on_event)
        saved = "__e2b_saved_environ"
        await session.execute(
            f"import os as _o; {saved} = dict(_o.environ); "
            f"_o.environ.update({json.dumps(env_vars)}); del _o"
        )
        try:
            return await session.execute(code, timeout, on_event)
        finally:
            await session.execute(
                f"import os as _o; _o.environ.clear(); _o.environ.update({saved}); del _o, {saved}"
            )

    async def close(self) -> None:
        for record in self._records.loaded():
            await record.commands.close()


def check_language(language: str | None) -> None:
    if language not in LANGUAGES:
        raise errors.InvalidRequest(f"language {language!r} is not served; only python is")


def state_of(session: Session) -> str:
    return "paused" if session.status is SessionStatus.PAUSED else "running"


async def _set_environ(session: Session, env: dict[str, str], cwd: str | None = None) -> None:
    code = f"import os as _o; _o.environ.update({json.dumps(env)})"
    if cwd:
        code += f"; _o.makedirs({json.dumps(cwd)}, exist_ok=True); _o.chdir({json.dumps(cwd)})"
    result = await session.execute(code + "; del _o")
    if result.error is not None:
        raise errors.InvalidRequest(f"could not set up the context: {result.error.value}")


__all__ = ["E2BSandbox", "E2BSandboxes", "OutputEvent"]
