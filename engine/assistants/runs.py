"""The run book: how runs and their steps change status, and which runs are being driven now."""

from __future__ import annotations

import asyncio
import contextlib

from .. import errors
from ..errors import LastError
from ..retrieval import VectorStores
from ..sessions import Session
from .events import RunEvents
from .models import (
    ErrorCode,
    Run,
    RunStatus,
    RunStep,
    StepDetails,
    StepStatus,
    new_id,
    now,
)
from .repository import Repository


class RunBook:
    """Writes runs and steps, tells the run's listeners, and tracks the runs driven in memory.

    ``tasks`` holds each driven run's task, ``cancelling`` the runs asked to stop at the next
    safe point, ``expired`` the runs stored as expired while their code still ran, and
    ``running_code`` the session each run's code is running in, so that it can be interrupted.
    """

    def __init__(
        self, repo: Repository, events: RunEvents, vector_stores: VectorStores | None = None
    ) -> None:
        self.repo = repo
        self.events = events
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cancelling: set[str] = set()
        self.expired: set[str] = set()
        self.running_code: dict[str, Session] = {}
        self.vector_stores = vector_stores
        """What file_search searches; without them, file_search is refused."""
        self._background: set[asyncio.Future[None]] = set()
        self.closing = False
        """The engine stops: a run whose task is cancelled now fails, saying so."""

    def save(self, owner: str, run: Run) -> None:
        self.repo.put(run, "run", owner, run.thread_id)

    def new_step(self, owner: str, run: Run, details: StepDetails) -> RunStep:
        step = RunStep(
            id=new_id("step"),
            created_at=now(),
            run_id=run.id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            type=details.type,
            status=StepStatus.IN_PROGRESS,
            step_details=details,
        )
        self.save_step(owner, step)
        self.events.emit(run.id, "thread.run.step.created", step)
        self.events.emit(run.id, "thread.run.step.in_progress", step)
        return step

    def save_step(self, owner: str, step: RunStep) -> None:
        self.repo.put(step, "step", owner, step.run_id)

    def complete_step(self, owner: str, step: RunStep) -> None:
        step.status, step.completed_at = StepStatus.COMPLETED, now()
        self.save_step(owner, step)
        self.events.emit(step.run_id, "thread.run.step.completed", step)

    def close_steps(self, owner: str, run: Run, status: StepStatus) -> None:
        for step in self.repo.all(RunStep, "step", owner, run.id):
            if step.status == StepStatus.IN_PROGRESS:
                step.status = status
                setattr(step, f"{status}_at", now())
                self.save_step(owner, step)

    def finish(self, owner: str, run: Run, status: RunStatus) -> Run:
        run.status = status
        run.required_action = None
        stamp = {
            RunStatus.COMPLETED: "completed_at",
            RunStatus.CANCELLED: "cancelled_at",
            RunStatus.FAILED: "failed_at",
        }.get(status)
        if stamp:
            setattr(run, stamp, now())
        self.save(owner, run)
        if status != RunStatus.COMPLETED:
            cancelled = status == RunStatus.CANCELLED
            self.close_steps(owner, run, StepStatus.CANCELLED if cancelled else StepStatus.FAILED)
        self.events.emit(run.id, f"thread.run.{status}", run)
        return run

    def fail(self, owner: str, run: Run, code: ErrorCode, message: str) -> None:
        run.last_error = LastError[ErrorCode](code=code, message=message)
        self.finish(owner, run, RunStatus.FAILED)

    def interrupt_soon(self, session: Session) -> None:
        """Interrupt the session's code in the background (from a handler that cannot wait)."""
        task = asyncio.ensure_future(interrupt(session))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def interrupt(session: Session) -> None:
    with contextlib.suppress(errors.EngineError):
        await session.interrupt()
