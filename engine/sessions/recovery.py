"""What earlier engine processes left on this data folder: re-adopt it, or salvage and remove it.

Every sandbox carries its owner's label (``lease.PRIMARY`` or a guest's). The primary re-adopts
its own live sessions; any engine removes what engines that are gone left behind (after saving
the files their code changed); nobody touches a live engine's sandboxes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .. import errors
from ..lease import OWNER_LABEL, PRIMARY, Lease, dead_guests, forget_guest, owner_alive
from ..provisioner import KernelRecord
from ..sandbox.base import Sandbox
from ..store import Row
from .context import SessionContext
from .models import SessionStatus
from .outputs import OutputExport
from .session import Session, SessionControl

log = logging.getLogger(__name__)
PARALLEL_ADOPTIONS = 16
EXPIRED_AWAY = (
    "the session's TTL or idle deadline passed while no engine was running; its sandbox "
    "stopped itself at that deadline. Files exported as file objects are kept"
)


class Recovery:
    def __init__(self, ctx: SessionContext, lease: Lease, home_labels: dict[str, str]) -> None:
        self._ctx = ctx
        self._records = ctx.records
        self._lease = lease
        self._home = home_labels
        self._parallel = asyncio.Semaphore(PARALLEL_ADOPTIONS)

    async def run(self, restore: Callable[[Row], Session]) -> list[Session]:
        """Clean up after engines that are gone; as the primary, the sessions that continue."""
        leftovers = await self._ctx.backend.find_leftovers(self._home)
        data_dir = self._lease.data_dir
        mine: dict[str, Sandbox] = {}
        dead: list[Sandbox] = []
        dead_owners = set(dead_guests(data_dir))
        for sandbox in leftovers:
            owner = sandbox.labels.get(OWNER_LABEL, PRIMARY)  # unlabelled: an older primary
            if owner == PRIMARY:
                if self._lease.primary:
                    mine[sandbox.id] = sandbox
            elif owner != self._lease.owner and not owner_alive(data_dir, owner):
                dead.append(sandbox)
                dead_owners.add(owner)
        await asyncio.gather(*(self._remove(s) for s in dead))
        for row in self._records.unfinished(sorted(dead_owners)):
            self._records.expire(row["id"])
        for owner in dead_owners:
            forget_guest(data_dir, owner)
        if not self._lease.primary:
            return []
        rows = self._records.unfinished([PRIMARY, None])
        claimed = {r["sandbox_id"] for r in rows}
        found = await asyncio.gather(*(self._continue(r, mine, restore) for r in rows))
        # The warm pool's and closed sessions' sandboxes: nothing continues in them.
        await asyncio.gather(*(self._remove(s) for s in mine.values() if s.id not in claimed))
        return [s for s in found if s is not None]

    async def _continue(
        self, row: Row, sandboxes: dict[str, Sandbox], restore: Callable[[Row], Session]
    ) -> Session | None:
        sandbox = sandboxes.get(row["sandbox_id"] or "")
        now = time.time()
        over = now >= row["expires_at"] or now >= row["last_active_at"] + row["idle_timeout"]
        if row["status"] != SessionStatus.ACTIVE.value or not row["kernel"] or over:
            if sandbox is not None:
                await self._remove(sandbox)
            self._records.expire(row["id"], EXPIRED_AWAY if over else None)
            return None
        session = restore(row)
        async with self._parallel:
            why = await self._adopt(session, row, sandbox)
            if why is None:
                return session
            log.warning("session %s: %s; it continues in a new sandbox", row["id"], why)
            if sandbox is not None:
                await self._remove(sandbox)
            try:
                await SessionControl(session).start_over(why)
            except errors.EngineError as exc:
                log.warning("session %s: could not start over: %s", row["id"], exc)
                self._records.expire(row["id"])
                return None
        return session

    async def _adopt(self, session: Session, row: Row, sandbox: Sandbox | None) -> str | None:
        """None once the session runs in its old sandbox again, else why it cannot."""
        if sandbox is None:
            return "its sandbox was gone when the engine restarted"
        try:
            if not await sandbox.is_running():
                return "its sandbox had stopped when the engine restarted"
            record = KernelRecord.from_json(row["kernel"])
            control = SessionControl(session)
            await control.adopt(sandbox, record, row["running_since"])
            await control.refresh_deadline()  # this engine keeps it now, and moves its time
        except (errors.EngineError, ValueError, KeyError, OSError) as exc:
            return f"its sandbox could not be verified when the engine restarted ({exc})"
        return None

    async def _remove(self, sandbox: Sandbox) -> None:
        """Save what the sandbox's session changed in /mnt/data, then remove it."""
        row = self._records.by_sandbox(sandbox.id)
        if row is not None:
            outputs = OutputExport(
                row["id"],
                row["owner"],
                lambda: sandbox,
                self._ctx.files,
                self._records,
                self._ctx.settings,
            )
            try:
                await outputs.salvage()
            except Exception as exc:  # salvage is best effort; removal is not
                log.warning("could not salvage files of session %s: %s", row["id"], exc)
        try:
            await sandbox.destroy()
        except errors.EngineError as exc:
            log.warning("could not remove sandbox %s: %s", sandbox.id, exc)
