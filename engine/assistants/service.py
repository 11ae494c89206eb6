"""The Assistants service: assistants, threads, messages, runs and steps, as the router asks.

A run is driven by the agent loop (``loop.py``) through ``driver.py``: the model's code runs in
the thread's session and its results go back to the model; function calls pause the run in
``requires_action`` until the client submits their outputs. Every object is persisted, so a
restart keeps assistants, threads, messages and runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import errors
from ..agent.loop import AgentLoop
from ..agent.provider import ModelProvider
from ..config import Settings
from ..errors import RunLocked
from ..paging import Page, page_list
from ..retrieval import VectorStores
from ..runtime import Runtime
from .driver import drive
from .events import Event, RunEvents
from .models import (
    ACTIVE_RUN,
    TERMINAL_RUN,
    Assistant,
    Attachment,
    ErrorCode,
    Message,
    MessageRole,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    Thread,
    Tool,
    ToolResources,
    TruncationStrategy,
    content_parts,
    new_id,
    now,
)
from .repository import Repository
from .runs import RunBook, interrupt
from .state import RunState
from .tools import check_resources, check_tool_choice, check_tools

__all__ = ["RUN_LIFETIME", "AssistantsService", "Event"]
RUN_LIFETIME = 600
Tagged = TypeVar("Tagged", Message, Run)


@dataclass(eq=False)
class AssistantsService:
    engine: Runtime
    provider: ModelProvider
    settings: Settings
    vector_stores: VectorStores | None = None
    """What file_search searches; without them, it is refused."""
    repo: Repository = field(init=False)
    events: RunEvents = field(init=False, default_factory=RunEvents)
    runs: RunBook = field(init=False)
    loop: AgentLoop = field(init=False)

    def __post_init__(self) -> None:
        self.repo = Repository(self.engine.store)
        self.runs = RunBook(self.repo, self.events, self.vector_stores)
        self.loop = AgentLoop(self.provider, self.settings)

    # --- lifecycle ---

    def recover(self) -> int:
        """After a restart, runs that were being driven cannot continue: they fail clearly."""
        count = 0
        for status in (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING):
            for run_id, owner in self.repo.ids_where("run", f'"status":"{status}"'):
                run = self.repo.get(Run, "run", run_id, owner)
                message = "the engine restarted while this run was active"
                self.runs.fail(owner, run, ErrorCode.SERVER_ERROR, message)
                count += 1
        return count

    async def close(self) -> None:
        """Running runs fail (saying the engine stopped), which ends their streams."""
        self.runs.closing = True
        tasks = list(self.runs.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- assistants ---

    def create_assistant(self, owner: str, **fields: Any) -> Assistant:
        assistant = Assistant(id=new_id("asst"), created_at=now(), **fields)
        check_tools(assistant.tools)
        self._check_files(owner, assistant.tool_resources)
        self.repo.put(assistant, "assistant", owner)
        return assistant

    def get_assistant(self, owner: str, assistant_id: str) -> Assistant:
        return self.repo.get(Assistant, "assistant", assistant_id, owner)

    def update_assistant(self, owner: str, assistant_id: str, **fields: Any) -> Assistant:
        current = self.get_assistant(owner, assistant_id)
        updated = Assistant.model_validate({**current.model_dump(), **fields})
        check_tools(updated.tools)
        self._check_files(owner, updated.tool_resources)
        self.repo.put(updated, "assistant", owner)
        return updated

    def list_assistants(self, owner: str, **paging: Any) -> Page[Assistant]:
        return self.repo.page(Assistant, "assistant", owner, **paging)

    def delete_assistant(self, owner: str, assistant_id: str) -> None:
        self.get_assistant(owner, assistant_id)
        self.repo.delete("assistant", assistant_id, owner)

    def _check_files(self, owner: str, resources: ToolResources | None) -> None:
        check_resources(owner, resources, self.engine.files, self.runs.vector_stores)

    # --- threads and messages ---

    def create_thread(
        self,
        owner: str,
        messages: list[dict[str, Any]] | None = None,
        metadata: dict[str, str] | None = None,
        tool_resources: ToolResources | None = None,
    ) -> Thread:
        thread = Thread(
            id=new_id("thread"),
            created_at=now(),
            metadata=metadata or {},
            tool_resources=tool_resources,
        )
        self._check_files(owner, tool_resources)
        self.repo.put(thread, "thread", owner)
        for message in messages or []:
            self.create_message(owner, thread.id, **message)
        return thread

    def get_thread(self, owner: str, thread_id: str) -> Thread:
        return self.repo.get(Thread, "thread", thread_id, owner)

    def list_threads(self, owner: str, **paging: Any) -> Page[Thread]:
        return self.repo.page(Thread, "thread", owner, **paging)

    def update_thread(self, owner: str, thread_id: str, **fields: Any) -> Thread:
        current = self.get_thread(owner, thread_id)
        updated = Thread.model_validate({**current.model_dump(), **fields})
        self._check_files(owner, updated.tool_resources)
        self.repo.put(updated, "thread", owner)
        return updated

    async def delete_thread(self, owner: str, thread_id: str) -> None:
        self.get_thread(owner, thread_id)
        for run in self.repo.all(Run, "run", owner, thread_id):
            task = self.runs.tasks.get(run.id)
            if task is not None:  # stopped and awaited, or it would write the run back
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        session = self.engine.sessions.by_thread(thread_id, owner)
        if session is not None:
            await self.engine.sessions.close(session.id, owner)
        self.repo.delete("thread", thread_id, owner)

    def create_message(
        self,
        owner: str,
        thread_id: str,
        role: str = "user",
        content: str | list[dict[str, Any]] = "",
        attachments: list[dict[str, Any]] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Message:
        self.get_thread(owner, thread_id)
        self._refuse_if_locked(owner, thread_id)
        if role not in tuple(MessageRole):
            raise errors.InvalidRequest("role must be 'user' or 'assistant'")
        parts = content_parts(content)
        files = [Attachment.model_validate(a) for a in attachments or []]
        for attachment in files:
            self.engine.files.retrieve(attachment.file_id, owner)
        message = Message(
            id=new_id("msg"),
            created_at=now(),
            thread_id=thread_id,
            role=MessageRole(role),
            content=parts,
            attachments=files,
            metadata=metadata or {},
            completed_at=now(),
        )
        self.repo.put(message, "message", owner, thread_id)
        return message

    def get_message(self, owner: str, thread_id: str, message_id: str) -> Message:
        self.get_thread(owner, thread_id)
        return self.repo.get(Message, "message", message_id, owner, thread_id)

    def list_messages(
        self, owner: str, thread_id: str, run_id: str | None = None, **paging: Any
    ) -> Page[Message]:
        self.get_thread(owner, thread_id)
        if run_id is None:
            return self.repo.page(Message, "message", owner, thread_id, **paging)
        messages = self.repo.all(Message, "message", owner, thread_id)
        return page_list([m for m in messages if m.run_id == run_id], **paging)

    # --- runs ---

    def _refuse_if_locked(self, owner: str, thread_id: str) -> None:
        for run in self.repo.all(Run, "run", owner, thread_id):
            run = self._expire_if_due(owner, run)
            if run.status in ACTIVE_RUN:
                raise RunLocked(
                    f"Thread {thread_id} already has an active run {run.id}; wait for it to "
                    "finish, or cancel it, before adding messages or starting a run."
                )

    async def create_run(
        self,
        owner: str,
        thread_id: str,
        assistant_id: str,
        *,
        listener: asyncio.Queue[Event] | None = None,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        additional_messages: list[dict[str, Any]] | None = None,
        tools: list[Tool] | None = None,
        tool_choice: Any = None,
        truncation_strategy: TruncationStrategy | None = None,
        max_prompt_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        parallel_tool_calls: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Run:
        assistant = self.get_assistant(owner, assistant_id)
        self.get_thread(owner, thread_id)
        self._refuse_if_locked(owner, thread_id)
        tools = tools if tools is not None else assistant.tools
        check_tools(tools)
        tool_choice = check_tool_choice(tool_choice or "auto", tools)
        for message in additional_messages or []:
            self.create_message(owner, thread_id, **message)
        created = now()
        run = Run(
            id=new_id("run"),
            created_at=created,
            thread_id=thread_id,
            assistant_id=assistant_id,
            status=RunStatus.QUEUED,
            model=model or assistant.model,
            instructions=assistant.instructions or "" if instructions is None else instructions,
            tools=tools,
            tool_choice=tool_choice,
            truncation_strategy=truncation_strategy or TruncationStrategy(),
            max_prompt_tokens=max_prompt_tokens,
            max_completion_tokens=max_completion_tokens,
            temperature=temperature if temperature is not None else assistant.temperature,
            top_p=top_p if top_p is not None else assistant.top_p,
            parallel_tool_calls=True if parallel_tool_calls is None else parallel_tool_calls,
            expires_at=created + RUN_LIFETIME,
            metadata=metadata or {},
        )
        self.repo.put(run, "run", owner, thread_id)
        self.repo.set_private(run.id, RunState(additional_instructions=additional_instructions))
        if listener is not None:
            self.listen(run.id, listener)
        self.events.emit(run.id, "thread.run.created", run)
        self.events.emit(run.id, "thread.run.queued", run)
        self._start(owner, run)
        return run

    def listen(self, run_id: str, queue: asyncio.Queue[Event]) -> Callable[[], None]:
        return self.events.listen(run_id, queue)

    def unlisten(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        self.events.unlisten(run_id, queue)

    def _start(self, owner: str, run: Run) -> None:
        driving = drive(self.runs, self.engine, self.loop, owner, run.id)
        task = asyncio.create_task(driving, name=f"run-{run.id}")
        self.runs.tasks[run.id] = task
        task.add_done_callback(lambda _: self.runs.tasks.pop(run.id, None))

    def get_run(self, owner: str, thread_id: str, run_id: str) -> Run:
        self.get_thread(owner, thread_id)
        run = self.repo.get(Run, "run", run_id, owner, thread_id)
        return self._expire_if_due(owner, run)

    def list_runs(self, owner: str, thread_id: str, **paging: Any) -> Page[Run]:
        self.get_thread(owner, thread_id)
        page = self.repo.page(Run, "run", owner, thread_id, **paging)
        page.data = [self._expire_if_due(owner, r) for r in page.data]
        return page

    def set_metadata(self, owner: str, found: Tagged, metadata: dict[str, str] | None) -> Tagged:
        """A message or run, as ``get_message`` or ``get_run`` found it, with new metadata."""
        found.metadata = metadata or {}
        kind = "message" if isinstance(found, Message) else "run"
        self.repo.put(found, kind, owner, found.thread_id)
        return found

    def _expire_if_due(self, owner: str, run: Run) -> Run:
        if run.status in ACTIVE_RUN and run.expires_at is not None and now() >= run.expires_at:
            session = self.runs.running_code.get(run.id)
            task = self.runs.tasks.get(run.id)
            if session is not None:
                # Interrupt the code and let the loop stop after it: cancelling the task would
                # free the session while the kernel still runs the code.
                self.runs.expired.add(run.id)
                self.runs.interrupt_soon(session)
            elif task is not None:
                task.cancel()
            run.status = RunStatus.EXPIRED
            run.required_action = None
            self.runs.save(owner, run)
            self.runs.close_steps(owner, run, StepStatus.EXPIRED)
            self.events.emit(run.id, "thread.run.expired", run)
        return run

    async def cancel_run(self, owner: str, thread_id: str, run_id: str) -> Run:
        run = self.get_run(owner, thread_id, run_id)
        if run.status in TERMINAL_RUN:
            raise errors.InvalidRequest(f"Cannot cancel run with status '{run.status}'.")
        if run.status == RunStatus.CANCELLING:
            return run
        task = self.runs.tasks.get(run.id)
        if task is None or run.status == RunStatus.REQUIRES_ACTION:
            return self.runs.finish(owner, run, RunStatus.CANCELLED)
        run.status = RunStatus.CANCELLING
        self.runs.save(owner, run)
        self.events.emit(run.id, "thread.run.cancelling", run)
        self.runs.cancelling.add(run.id)
        session = self.runs.running_code.get(run.id)
        if session is not None:
            await interrupt(session)
        return run

    async def submit_tool_outputs(
        self,
        owner: str,
        thread_id: str,
        run_id: str,
        outputs: list[dict[str, Any]],
        listener: asyncio.Queue[Event] | None = None,
    ) -> Run:
        run = self.get_run(owner, thread_id, run_id)
        if run.status != RunStatus.REQUIRES_ACTION or run.required_action is None:
            raise errors.InvalidRequest(
                f"Runs in status '{run.status}' do not accept tool outputs."
            )
        pending = {c.id for c in run.required_action.submit_tool_outputs.tool_calls}
        given = {str(o.get("tool_call_id")): str(o.get("output") or "") for o in outputs}
        if set(given) != pending:
            missing = sorted(pending - set(given))
            unknown = sorted(set(given) - pending)
            raise errors.InvalidRequest(
                f"tool outputs must answer exactly the pending calls; missing {missing}, "
                f"unknown {unknown}"
            )
        state = self.repo.get_private(run.id, RunState)
        for call_id in [c.id for c in run.required_action.submit_tool_outputs.tool_calls]:
            state.conversation.append(
                {"role": "tool", "tool_call_id": call_id, "content": given[call_id]}
            )
        self.repo.set_private(run.id, state)
        for step in self.repo.all(RunStep, "step", owner, run.id):
            if step.status == StepStatus.IN_PROGRESS and step.step_details.tool_calls:
                for call in step.step_details.tool_calls:
                    if call.function is not None and call.id in given:
                        call.function.output = given[call.id]
                step.status, step.completed_at = StepStatus.COMPLETED, now()
                self.runs.save_step(owner, step)
        run.status, run.required_action = RunStatus.QUEUED, None
        self.runs.save(owner, run)
        if listener is not None:
            self.listen(run.id, listener)
        self.events.emit(run.id, "thread.run.queued", run)
        self._start(owner, run)
        return run

    def list_steps(self, owner: str, thread_id: str, run_id: str, **paging: Any) -> Page[RunStep]:
        self.get_run(owner, thread_id, run_id)
        return self.repo.page(RunStep, "step", owner, run_id, **paging)

    def get_step(self, owner: str, thread_id: str, run_id: str, step_id: str) -> RunStep:
        self.get_run(owner, thread_id, run_id)
        return self.repo.get(RunStep, "step", step_id, owner, run_id)
