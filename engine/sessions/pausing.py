"""What a pause saves of a session and a resume puts back: its files, through file objects, and
its kernel's variables, through a snapshot that only a sandbox ever unpickles."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..config import MB
from ..kernel import Kernel
from ..results import ExecutionResult
from ..sandbox.base import DATA_MOUNT, UPLOAD_PREFIX
from .context import SessionContext
from .notices import Notices
from .outputs import OutputExport
from .placement import Placement
from .snapshots import SnapshotMeta

log = logging.getLogger(__name__)
SNAPSHOT_FILE = f"{UPLOAD_PREFIX}snapshot"
"""Where the kernel writes, and reads back, its namespace: hidden like an upload in progress."""
LISTED_NAMES = 20


@dataclass
class Saved:
    """What a pause kept: the snapshot (None if only the files were kept) and what it left."""

    snapshot: SnapshotMeta | None
    lost: list[str] = field(default_factory=list)
    """What the notice says was not kept."""


def _report(result: ExecutionResult) -> dict[str, Any]:
    """The JSON line the in-sandbox snapshot module printed; its text is the sandbox's."""
    if result.error is not None:
        raise errors.EngineError(f"{result.error.name}: {result.error.value}"[:300])
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise errors.EngineError("the kernel did not report on its namespace") from exc
    if not isinstance(report, dict):
        raise errors.EngineError("the kernel did not report on its namespace")
    return report


def _names(problems: object) -> str:
    """``name (why)``, for the first few names of a {name: why} report."""
    if not isinstance(problems, dict):
        return ""
    shown = [f"{str(k)[:80]} ({str(v)[:120]})" for k, v in list(problems.items())[:LISTED_NAMES]]
    more = len(problems) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass
class Pausing:
    """One session's pause and resume, between its placement, its files and its notices."""

    _session_id: str
    _owner: str
    _ctx: SessionContext
    _placement: Placement
    _outputs: OutputExport
    _notices: Notices

    @property
    def _max_bytes(self) -> int:
        return self._ctx.settings.max_snapshot_mb * MB

    async def save(self, kernel: Kernel) -> Saved:
        """Save the files and the namespace; the sandbox is still there afterwards."""
        saved = Saved(None)
        missed = await self._outputs.save_all()
        if missed:
            saved.lost.append(f"files that could not be saved: {', '.join(missed[:LISTED_NAMES])}")
        try:
            saved.snapshot = await self._save_namespace(kernel, saved)
        except (errors.EngineError, OSError) as exc:
            saved.lost.append(f"its variables, which could not be saved ({exc})")
        return saved

    async def _save_namespace(self, kernel: Kernel, saved: Saved) -> SnapshotMeta | None:
        path = f"{DATA_MOUNT}/{SNAPSHOT_FILE}"
        code = f"__import__('sandbox_snapshot').save({path!r}, {self._max_bytes})"
        result = await kernel.execute(code, self._ctx.settings.pause_timeout, internal=True)
        report = _report(result)
        if report.get("unsaved"):
            saved.lost.append(f"variables that cannot be saved: {_names(report['unsaved'])}")
        if report.get("over_cap"):
            saved.lost.append(
                f"its variables: they were over SANDBOX_MAX_SNAPSHOT_MB "
                f"({self._ctx.settings.max_snapshot_mb} MB), so only the files were kept"
            )
            return None
        sandbox = self._placement.live_sandbox()
        with await sandbox.open_file(SNAPSHOT_FILE) as src:
            return await self._ctx.snapshots.save(
                self._session_id, self._owner, src, self._max_bytes
            )

    async def restore(self, kernel: Kernel, snapshot: SnapshotMeta | None) -> None:
        """Put the files and the namespace back into the session's new sandbox."""
        missed = await self._outputs.put_back()
        if missed:
            self._notices.add(
                f"files whose file objects were deleted while it was paused are gone: "
                f"{', '.join(missed[:LISTED_NAMES])}"
            )
        if snapshot is None:
            self._notices.add("it resumed without its variables", state_lost=True)
            return
        try:
            failed = await self._load_namespace(kernel, snapshot)
        except (errors.EngineError, OSError) as exc:
            self._notices.add(f"its variables could not be loaded back ({exc})", state_lost=True)
            return
        finally:
            self._ctx.snapshots.delete(self._session_id, self._owner)
        if failed:
            self._notices.add(f"variables that failed to load back: {_names(failed)}")

    async def _load_namespace(self, kernel: Kernel, snapshot: SnapshotMeta) -> object:
        sandbox = self._placement.live_sandbox()
        with await self._ctx.snapshots.open(self._session_id, self._owner, snapshot) as src:
            await sandbox.write_file(SNAPSHOT_FILE, src, self._max_bytes)
        code = f"__import__('sandbox_snapshot').load({f'{DATA_MOUNT}/{SNAPSHOT_FILE}'!r})"
        result = await kernel.execute(code, self._ctx.settings.pause_timeout, internal=True)
        return _report(result).get("failed")
