"""The Assistants service: objects, runs, and the LLM loop that drives them.

A run calls the model; code-interpreter calls run in the thread's session (one per thread) and
their results go back to the model, which may fix failing code and try again; function calls
pause the run in ``requires_action`` until the client submits their outputs. Every object is
persisted, so a restart keeps assistants, threads, messages and runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .. import errors
from ..config import Settings
from ..core import Engine
from ..errors import ModelError, RunLocked
from ..paging import Page
from ..results import ExecutionResult
from ..sessions import Session
from . import context
from .models import (
    ACTIVE_RUN,
    TERMINAL_RUN,
    Annotation,
    Assistant,
    Attachment,
    CodeInterpreterCall,
    CodeOutput,
    ContentPart,
    FilePathRef,
    FunctionCall,
    ImageFileRef,
    IncompleteDetails,
    LastError,
    Message,
    MessageCreation,
    RequiredAction,
    RequiredFunction,
    RequiredToolCall,
    Run,
    RunStep,
    StepDetails,
    SubmitToolOutputs,
    TextValue,
    Thread,
    Tool,
    ToolCall,
    ToolResources,
    TruncationStrategy,
    Usage,
    new_id,
    now,
)
from .provider import ModelProvider, ModelReply
from .repository import Repository

log = logging.getLogger(__name__)
Event = tuple[str, dict[str, Any]]
RUN_LIFETIME = 600


class AssistantsService:
    def __init__(self, engine: Engine, provider: ModelProvider, settings: Settings) -> None:
        self.engine = engine
        self.provider = provider
        self.settings = settings
        self.repo = Repository(engine.store)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: set[str] = set()
        self._expired: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._listeners: dict[str, list[asyncio.Queue[Event]]] = {}
        self._running_code: dict[str, Session] = {}

    # --- lifecycle ---

    def recover(self) -> int:
        """After a restart, runs that were being driven cannot continue: they fail clearly."""
        count = 0
        for status in ("queued", "in_progress", "cancelling"):
            for run_id, owner in self.repo.ids_where("run", f'"status":"{status}"'):
                run = self.repo.get(Run, "run", run_id, owner)
                run.status = "failed"
                run.failed_at = now()
                run.last_error = LastError(
                    code="server_error", message="the engine restarted while this run was active"
                )
                self.repo.put(run, "run", owner, run.thread_id)
                self._close_steps(owner, run, "failed")
                count += 1
        return count

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- assistants ---

    def create_assistant(self, owner: str, **fields: Any) -> Assistant:
        assistant = Assistant(id=new_id("asst"), created_at=now(), **fields)
        _check_tools(assistant.tools)
        self._check_files(owner, assistant.tool_resources)
        self.repo.put(assistant, "assistant", owner)
        return assistant

    def get_assistant(self, owner: str, assistant_id: str) -> Assistant:
        return self.repo.get(Assistant, "assistant", assistant_id, owner)

    def update_assistant(self, owner: str, assistant_id: str, **fields: Any) -> Assistant:
        current = self.get_assistant(owner, assistant_id)
        updated = Assistant.model_validate({**current.model_dump(), **fields})
        _check_tools(updated.tools)
        self._check_files(owner, updated.tool_resources)
        self.repo.put(updated, "assistant", owner)
        return updated

    def list_assistants(self, owner: str, **paging: Any) -> Page[Assistant]:
        return self.repo.page(Assistant, "assistant", owner, **paging)

    def delete_assistant(self, owner: str, assistant_id: str) -> None:
        self.get_assistant(owner, assistant_id)
        self.repo.delete("assistant", assistant_id, owner)

    def _check_files(self, owner: str, resources: ToolResources | None) -> None:
        if resources and resources.code_interpreter:
            for file_id in resources.code_interpreter.file_ids:
                self.engine.files.retrieve(file_id, owner)

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

    def update_thread(self, owner: str, thread_id: str, **fields: Any) -> Thread:
        current = self.get_thread(owner, thread_id)
        updated = Thread.model_validate({**current.model_dump(), **fields})
        self._check_files(owner, updated.tool_resources)
        self.repo.put(updated, "thread", owner)
        return updated

    async def delete_thread(self, owner: str, thread_id: str) -> None:
        self.get_thread(owner, thread_id)
        for run in self.repo.all(Run, "run", owner, thread_id):
            task = self._tasks.get(run.id)
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
        if role not in ("user", "assistant"):
            raise errors.InvalidRequest("role must be 'user' or 'assistant'")
        parts = _content_parts(content)
        files = [Attachment.model_validate(a) for a in attachments or []]
        for attachment in files:
            self.engine.files.retrieve(attachment.file_id, owner)
        message = Message(
            id=new_id("msg"),
            created_at=now(),
            thread_id=thread_id,
            role=role,  # type: ignore[arg-type]
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

    def update_message(
        self, owner: str, thread_id: str, message_id: str, metadata: dict[str, str] | None
    ) -> Message:
        message = self.get_message(owner, thread_id, message_id)
        message.metadata = metadata or {}
        self.repo.put(message, "message", owner, thread_id)
        return message

    def list_messages(
        self, owner: str, thread_id: str, run_id: str | None = None, **paging: Any
    ) -> Page[Message]:
        self.get_thread(owner, thread_id)
        if run_id is None:
            return self.repo.page(Message, "message", owner, thread_id, **paging)
        messages = self.repo.all(Message, "message", owner, thread_id)
        return _page_of([m for m in messages if m.run_id == run_id], **paging)

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
        _check_tools(tools)
        tool_choice = _check_tool_choice(tool_choice or "auto", tools)
        for message in additional_messages or []:
            self.create_message(owner, thread_id, **message)
        created = now()
        run = Run(
            id=new_id("run"),
            created_at=created,
            thread_id=thread_id,
            assistant_id=assistant_id,
            status="queued",
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
        self.repo.set_private(
            run.id,
            {
                "additional_instructions": additional_instructions,
                "conversation": [],
                "images": [],
                "rounds": 0,
            },
        )
        if listener is not None:
            self.listen(run.id, listener)
        self._emit(run.id, "thread.run.created", run)
        self._emit(run.id, "thread.run.queued", run)
        self._start(owner, run)
        return run

    def listen(self, run_id: str, queue: asyncio.Queue[Event]) -> Callable[[], None]:
        self._listeners.setdefault(run_id, []).append(queue)
        return lambda: self.unlisten(run_id, queue)

    def unlisten(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        queues = self._listeners.get(run_id, [])
        with contextlib.suppress(ValueError):
            queues.remove(queue)
        if not queues:
            self._listeners.pop(run_id, None)

    def _emit(self, run_id: str, event: str, obj: Any) -> None:
        data = obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj
        for queue in self._listeners.get(run_id, []):
            queue.put_nowait((event, data))

    def _start(self, owner: str, run: Run) -> None:
        task = asyncio.create_task(self._drive(owner, run.id), name=f"run-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    def get_run(self, owner: str, thread_id: str, run_id: str) -> Run:
        self.get_thread(owner, thread_id)
        run = self.repo.get(Run, "run", run_id, owner, thread_id)
        return self._expire_if_due(owner, run)

    def list_runs(self, owner: str, thread_id: str, **paging: Any) -> Page[Run]:
        self.get_thread(owner, thread_id)
        page = self.repo.page(Run, "run", owner, thread_id, **paging)
        page.data = [self._expire_if_due(owner, r) for r in page.data]
        return page

    def update_run(
        self, owner: str, thread_id: str, run_id: str, metadata: dict[str, str] | None
    ) -> Run:
        run = self.get_run(owner, thread_id, run_id)
        run.metadata = metadata or {}
        self.repo.put(run, "run", owner, thread_id)
        return run

    def _expire_if_due(self, owner: str, run: Run) -> Run:
        if run.status in ACTIVE_RUN and run.expires_at is not None and now() >= run.expires_at:
            session = self._running_code.get(run.id)
            task = self._tasks.get(run.id)
            if session is not None:
                # Interrupt the code and let the loop stop after it: cancelling the task would
                # free the session while the kernel still runs the code.
                self._expired.add(run.id)
                interrupt = asyncio.ensure_future(_interrupt(session))
                self._background.add(interrupt)
                interrupt.add_done_callback(self._background.discard)
            elif task is not None:
                task.cancel()
            run.status = "expired"
            run.required_action = None
            self.repo.put(run, "run", owner, run.thread_id)
            self._close_steps(owner, run, "expired")
            self._emit(run.id, "thread.run.expired", run)
        return run

    async def cancel_run(self, owner: str, thread_id: str, run_id: str) -> Run:
        run = self.get_run(owner, thread_id, run_id)
        if run.status in TERMINAL_RUN:
            raise errors.InvalidRequest(f"Cannot cancel run with status '{run.status}'.")
        if run.status == "cancelling":
            return run
        task = self._tasks.get(run.id)
        if task is None or run.status == "requires_action":
            return self._finish(owner, run, "cancelled")
        run.status = "cancelling"
        self.repo.put(run, "run", owner, thread_id)
        self._emit(run.id, "thread.run.cancelling", run)
        self._cancel.add(run.id)
        session = self._running_code.get(run.id)
        if session is not None:
            await _interrupt(session)
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
        if run.status != "requires_action" or run.required_action is None:
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
        state = self.repo.get_private(run.id)
        for call_id in [c.id for c in run.required_action.submit_tool_outputs.tool_calls]:
            state["conversation"].append(
                {"role": "tool", "tool_call_id": call_id, "content": given[call_id]}
            )
        self.repo.set_private(run.id, state)
        for step in self.repo.all(RunStep, "step", owner, run.id):
            if step.status == "in_progress" and step.step_details.tool_calls:
                for call in step.step_details.tool_calls:
                    if call.function is not None and call.id in given:
                        call.function.output = given[call.id]
                step.status, step.completed_at = "completed", now()
                self.repo.put(step, "step", owner, run.id)
        run.status, run.required_action = "queued", None
        self.repo.put(run, "run", owner, thread_id)
        if listener is not None:
            self.listen(run.id, listener)
        self._emit(run.id, "thread.run.queued", run)
        self._start(owner, run)
        return run

    def list_steps(self, owner: str, thread_id: str, run_id: str, **paging: Any) -> Page[RunStep]:
        self.get_run(owner, thread_id, run_id)
        return self.repo.page(RunStep, "step", owner, run_id, **paging)

    def get_step(self, owner: str, thread_id: str, run_id: str, step_id: str) -> RunStep:
        self.get_run(owner, thread_id, run_id)
        return self.repo.get(RunStep, "step", step_id, owner, run_id)

    # --- the loop ---

    async def _drive(self, owner: str, run_id: str) -> None:
        run = self.repo.get(Run, "run", run_id, owner)
        try:
            await self._loop(owner, run)
        except asyncio.CancelledError:
            raise
        except ModelError as exc:
            code = "rate_limit_exceeded" if "rate_limit" in str(exc) else "server_error"
            self._fail(owner, run, code, str(exc))
        except Exception as exc:
            log.exception("run %s failed", run.id)
            self._fail(owner, run, "server_error", f"{type(exc).__name__}: {exc}")
        finally:
            self._cancel.discard(run.id)
            self._expired.discard(run.id)
            self._running_code.pop(run.id, None)

    async def _loop(self, owner: str, run: Run) -> None:
        run.status = "in_progress"
        run.started_at = run.started_at or now()
        self.repo.put(run, "run", owner, run.thread_id)
        self._emit(run.id, "thread.run.in_progress", run)
        state = self.repo.get_private(run.id)
        assistant = self.get_assistant(owner, run.assistant_id)
        usage = run.usage or Usage()
        code_tool = any(t.type == "code_interpreter" for t in run.tools)
        functions = {t.function.name for t in run.tools if t.type == "function" and t.function}
        while True:
            if run.id in self._cancel:
                self._finish(owner, run, "cancelled")
                return
            session = await self._session(owner, run, assistant) if code_tool else None
            messages = await self._prompt(owner, run, state, session, code_tool)
            if messages is None:
                run.incomplete_details = IncompleteDetails(reason="max_prompt_tokens")
                self._finish(owner, run, "incomplete")
                return
            first_turn = state["rounds"] == 0 and not state["conversation"]
            reply = await self.provider.complete(
                model=run.model,
                messages=messages,
                tools=self._tool_specs(run, code_tool),
                tool_choice=_model_tool_choice(run.tool_choice, first_turn),
                temperature=run.temperature,
                top_p=run.top_p,
                max_tokens=self._remaining_completion(run, usage),
                parallel_tool_calls=run.parallel_tool_calls,
            )
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
            run.usage = usage
            if run.id in self._cancel:
                self._finish(owner, run, "cancelled")
                return
            if not reply.tool_calls:
                await self._answer(owner, run, reply, state, session)
                if run.max_completion_tokens and reply.finish_reason == "length":
                    run.incomplete_details = IncompleteDetails(reason="max_completion_tokens")
                    self._finish(owner, run, "incomplete")
                else:
                    self._finish(owner, run, "completed")
                return
            state["rounds"] += 1
            if state["rounds"] > self.settings.llm_max_tool_rounds:
                self._fail(
                    owner,
                    run,
                    "server_error",
                    f"the model asked for more than {self.settings.llm_max_tool_rounds} "
                    "rounds of tool calls (SANDBOX_LLM_MAX_TOOL_ROUNDS)",
                )
                return
            state["conversation"].append(
                {
                    "role": "assistant",
                    "content": reply.content,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in reply.tool_calls
                    ],
                }
            )
            code_calls = [c for c in reply.tool_calls if c.name == context.CODE_TOOL and code_tool]
            function_calls = [c for c in reply.tool_calls if c.name in functions]
            for call in reply.tool_calls:
                if call not in code_calls and call not in function_calls:
                    state["conversation"].append(
                        {
                            "role": "tool",
                            "tool_call_id": call.id,
                            "content": f"error: there is no tool named {call.name!r}",
                        }
                    )
            if code_calls and session is not None:
                await self._run_code(owner, run, session, code_calls, state)
            self.repo.set_private(run.id, state)
            if run.id in self._expired:
                return
            if run.id in self._cancel:  # cancelled while the code ran
                self._finish(owner, run, "cancelled")
                return
            self.repo.put(run, "run", owner, run.thread_id)
            if function_calls:
                self._require_action(owner, run, function_calls)
                return

    def _remaining_completion(self, run: Run, usage: Usage) -> int | None:
        if run.max_completion_tokens is None:
            return None
        return max(1, run.max_completion_tokens - usage.completion_tokens)

    def _tool_specs(self, run: Run, code_tool: bool) -> list[dict[str, Any]]:
        specs = [context.CODE_TOOL_SPEC] if code_tool else []
        for tool in run.tools:
            if tool.type == "function" and tool.function is not None:
                specs.append(
                    {"type": "function", "function": tool.function.model_dump(exclude_none=True)}
                )
        return specs

    async def _session(self, owner: str, run: Run, assistant: Assistant) -> Session:
        """The thread's session, with the assistant's, thread's and attached files placed."""
        session = await self.engine.session(run.thread_id, owner=owner)
        wanted: list[str] = []
        thread = self.get_thread(owner, run.thread_id)
        for resources in (assistant.tool_resources, thread.tool_resources):
            if resources and resources.code_interpreter:
                wanted += resources.code_interpreter.file_ids
        for message in self.repo.all(Message, "message", owner, run.thread_id):
            wanted += [a.file_id for a in message.attachments]
        files = await session.list_files()
        present = {f.file_id for f in files}
        names = {f.filename for f in files}
        # Files placed before and since changed by the code are not put back over the change.
        record = self.repo.get_private(run.thread_id)
        placed = set(record.get("placed", [])) if record.get("session") == session.id else set()
        for file_id in dict.fromkeys(wanted):
            with contextlib.suppress(errors.NotFound):  # a file deleted since it was attached
                if file_id not in present and not (
                    file_id in placed
                    and self.engine.files.retrieve(file_id, owner).filename in names
                ):
                    await session.add_file(file_id)
                placed.add(file_id)
        self.repo.set_private(run.thread_id, {"session": session.id, "placed": sorted(placed)})
        return session

    async def _prompt(
        self, owner: str, run: Run, state: dict[str, Any], session: Session | None, code_tool: bool
    ) -> list[dict[str, Any]] | None:
        files = [f.filename for f in await session.list_files()] if session else []
        system = context.system_prompt(run, state.get("additional_instructions"), files, code_tool)
        history = context.thread_messages(self.repo.all(Message, "message", owner, run.thread_id))
        conversation: list[dict[str, Any]] = state["conversation"]
        budget = run.max_prompt_tokens or self.settings.llm_context_tokens
        fixed = context.estimate_tokens(system) + sum(
            context.estimate_tokens(json.dumps(m)) for m in conversation
        )
        kept = context.truncate(history, run.truncation_strategy, budget - fixed)
        if run.max_prompt_tokens is not None:
            total = fixed + sum(context.estimate_tokens(str(m["content"])) for m in kept)
            if total > run.max_prompt_tokens:
                return None
        system_message = [{"role": "system", "content": system}] if system else []
        return [*system_message, *kept, *conversation]

    async def _run_code(
        self, owner: str, run: Run, session: Session, calls: list[Any], state: dict[str, Any]
    ) -> None:
        step = self._new_step(owner, run, StepDetails(type="tool_calls", tool_calls=[]))
        assert step.step_details.tool_calls is not None
        for index, call in enumerate(calls):
            code = _code_of(call.arguments)
            tool_call = ToolCall(
                id=call.id,
                type="code_interpreter",
                code_interpreter=CodeInterpreterCall(input=code),
            )
            step.step_details.tool_calls.append(tool_call)
            self.repo.put(step, "step", owner, run.id)  # pollers see the code while it runs
            self._emit(
                run.id,
                "thread.run.step.delta",
                _step_delta(step, index, tool_call.model_dump(mode="json", exclude_none=True)),
            )
            self._running_code[run.id] = session
            try:
                executed = await session.execute(code, timeout=self.settings.llm_code_timeout)
                text = context.tool_result_text(executed, self.settings.llm_tool_output_chars)
                result: ExecutionResult | None = executed
            except errors.EngineError as exc:
                result, text = None, json.dumps({"status": "error", "error": str(exc)})
            finally:
                self._running_code.pop(run.id, None)
            if run.id in self._expired:  # the run was stored as expired meanwhile
                return
            assert tool_call.code_interpreter is not None
            outputs = tool_call.code_interpreter.outputs
            if result is not None:
                logs = context.logs_of(result, self.settings.llm_tool_output_chars)
                if logs:
                    outputs.append(CodeOutput(type="logs", logs=logs))
                for out in result.outputs:
                    if out.type == "image":
                        outputs.append(
                            CodeOutput(type="image", image=ImageFileRef(file_id=out.file_id))
                        )
                        state["images"].append(out.file_id)
            else:
                outputs.append(CodeOutput(type="logs", logs=text))
            # The SDK accumulates deltas (strings are concatenated): send only what is new.
            self._emit(
                run.id,
                "thread.run.step.delta",
                _step_delta(
                    step,
                    index,
                    {
                        "type": "code_interpreter",
                        "code_interpreter": {
                            "outputs": [
                                {"index": n, **o.model_dump(mode="json", exclude_none=True)}
                                for n, o in enumerate(outputs)
                            ]
                        },
                    },
                ),
            )
            state["conversation"].append({"role": "tool", "tool_call_id": call.id, "content": text})
        step.status, step.completed_at = "completed", now()
        self.repo.put(step, "step", owner, run.id)
        self._emit(run.id, "thread.run.step.completed", step)

    def _require_action(self, owner: str, run: Run, calls: list[Any]) -> None:
        step = self._new_step(owner, run, StepDetails(type="tool_calls", tool_calls=[]))
        assert step.step_details.tool_calls is not None
        for index, c in enumerate(calls):
            call = ToolCall(
                id=c.id, type="function", function=FunctionCall(name=c.name, arguments=c.arguments)
            )
            step.step_details.tool_calls.append(call)
            self._emit(
                run.id,
                "thread.run.step.delta",
                _step_delta(
                    step,
                    index,
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments, "output": None},
                    },
                ),
            )
        self.repo.put(step, "step", owner, run.id)
        run.status = "requires_action"
        run.required_action = RequiredAction(
            submit_tool_outputs=SubmitToolOutputs(
                tool_calls=[
                    RequiredToolCall(
                        id=c.id, function=RequiredFunction(name=c.name, arguments=c.arguments)
                    )
                    for c in calls
                ]
            )
        )
        self.repo.put(run, "run", owner, run.thread_id)
        self._emit(run.id, "thread.run.requires_action", run)

    async def _answer(
        self,
        owner: str,
        run: Run,
        reply: ModelReply,
        state: dict[str, Any],
        session: Session | None,
    ) -> None:
        text = reply.content or ""
        known = {f.path: f.file_id for f in await session.list_files()} if session else {}
        annotations = []
        for match in context.SANDBOX_LINK.finditer(text):
            link = match.group(0).rstrip(".,;:!?")  # "... at sandbox:/mnt/data/out.csv."
            path = link.removeprefix("sandbox:")
            file_id = known.get(path) or known.get(unquote(path))
            if file_id:
                annotations.append(
                    Annotation(
                        text=link,
                        start_index=match.start(),
                        end_index=match.start() + len(link),
                        file_path=FilePathRef(file_id=file_id),
                    )
                )
        parts = [
            ContentPart(type="image_file", image_file=ImageFileRef(file_id=i))
            for i in dict.fromkeys(state["images"])
        ]
        parts.append(ContentPart(type="text", text=TextValue(value=text, annotations=annotations)))
        message = Message(
            id=new_id("msg"),
            created_at=now(),
            thread_id=run.thread_id,
            role="assistant",
            content=[],
            assistant_id=run.assistant_id,
            run_id=run.id,
            status="in_progress",
        )
        step = self._new_step(
            owner,
            run,
            StepDetails(
                type="message_creation", message_creation=MessageCreation(message_id=message.id)
            ),
        )
        self._emit(run.id, "thread.message.created", message)
        self._emit(run.id, "thread.message.in_progress", message)
        for index, part in enumerate(parts):
            delta = part.model_dump(mode="json", exclude_none=True)
            if "text" in delta:  # delta annotations carry their index, as OpenAI's do
                delta["text"]["annotations"] = [
                    {"index": n, **a} for n, a in enumerate(delta["text"]["annotations"])
                ]
            self._emit(
                run.id,
                "thread.message.delta",
                {
                    "id": message.id,
                    "object": "thread.message.delta",
                    "delta": {"content": [{"index": index, **delta}]},
                },
            )
        message.content, message.status, message.completed_at = parts, "completed", now()
        self.repo.put(message, "message", owner, run.thread_id)
        self._emit(run.id, "thread.message.completed", message)
        step.status, step.completed_at = "completed", now()
        self.repo.put(step, "step", owner, run.id)
        self._emit(run.id, "thread.run.step.completed", step)

    def _new_step(self, owner: str, run: Run, details: StepDetails) -> RunStep:
        step = RunStep(
            id=new_id("step"),
            created_at=now(),
            run_id=run.id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            type=details.type,
            status="in_progress",
            step_details=details,
        )
        self.repo.put(step, "step", owner, run.id)
        self._emit(run.id, "thread.run.step.created", step)
        self._emit(run.id, "thread.run.step.in_progress", step)
        return step

    def _close_steps(self, owner: str, run: Run, status: str) -> None:
        for step in self.repo.all(RunStep, "step", owner, run.id):
            if step.status == "in_progress":
                step.status = status  # type: ignore[assignment]
                setattr(step, f"{status}_at", now())
                self.repo.put(step, "step", owner, run.id)

    def _finish(self, owner: str, run: Run, status: str) -> Run:
        run.status = status  # type: ignore[assignment]
        run.required_action = None
        stamp = {
            "completed": "completed_at",
            "cancelled": "cancelled_at",
            "failed": "failed_at",
        }.get(status)
        if stamp:
            setattr(run, stamp, now())
        self.repo.put(run, "run", owner, run.thread_id)
        if status != "completed":
            self._close_steps(owner, run, "cancelled" if status == "cancelled" else "failed")
        self._emit(run.id, f"thread.run.{status}", run)
        return run

    def _fail(self, owner: str, run: Run, code: str, message: str) -> None:
        run.last_error = LastError(code=code, message=message)  # type: ignore[arg-type]
        self._finish(owner, run, "failed")


def _page_of(
    items: list[Message],
    *,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Page[Message]:
    """A page of an already filtered list (oldest first), with the repository's cursor rules."""
    items = items if order == "asc" else items[::-1]
    ids = [m.id for m in items]
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None and cursor not in ids:
            raise errors.InvalidRequest(f"{name} cursor {cursor!r} does not name an object")
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(items)
    window = items[start:end]
    if before is not None and after is None:
        return Page[Message].of(window[-limit:], len(window) > limit)
    return Page[Message].of(window[:limit], len(window) > limit)


async def _interrupt(session: Session) -> None:
    with contextlib.suppress(errors.EngineError):
        await session.interrupt()


def _content_parts(content: str | list[dict[str, Any]]) -> list[ContentPart]:
    if isinstance(content, str):
        return [ContentPart(type="text", text=TextValue(value=content))]
    if not isinstance(content, list) or not content:
        raise errors.InvalidRequest("content must be a string or a non-empty list of parts")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(ContentPart(type="text", text=TextValue(value=str(part.get("text", "")))))
        elif kind == "image_file":
            parts.append(
                ContentPart(
                    type="image_file", image_file=ImageFileRef.model_validate(part["image_file"])
                )
            )
        else:
            raise errors.InvalidRequest(f"unsupported content part type {kind!r}")
    return parts


def _check_tools(tools: list[Tool]) -> None:
    # The code interpreter reaches the model as a function of that name.
    names = {context.CODE_TOOL} if any(t.type == "code_interpreter" for t in tools) else set()
    for tool in tools:
        if tool.type == "file_search":
            raise errors.InvalidRequest(
                "the file_search tool is not supported (there are no vector stores); use "
                "code_interpreter, whose files are under /mnt/data, or function tools"
            )
        if tool.type == "function":
            if tool.function is None:
                raise errors.InvalidRequest("a function tool needs a 'function' definition")
            if tool.function.name in names:
                raise errors.InvalidRequest(
                    f"function name {tool.function.name!r} is used twice, or is the name under "
                    "which the model sees the code interpreter"
                )
            names.add(tool.function.name)


def _check_tool_choice(choice: Any, tools: list[Tool]) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "code_interpreter" and any(t.type == "code_interpreter" for t in tools):
        return choice
    if kind == "function" and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if any(t.function is not None and t.function.name == name for t in tools):
            return choice
    raise errors.InvalidRequest(
        f"invalid tool_choice {choice!r}: 'auto', 'none', 'required', or one of the run's tools"
    )


def _model_tool_choice(choice: Any, first_turn: bool) -> Any:
    """Forcing a tool applies to the run's first model turn; after that the model may answer."""
    if isinstance(choice, dict):
        if not first_turn:
            return "auto"
        if choice.get("type") == "code_interpreter":
            return {"type": "function", "function": {"name": context.CODE_TOOL}}
        return choice
    if choice == "required" and not first_turn:
        return "auto"
    return choice


def _code_of(arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else arguments


def _step_delta(step: RunStep, index: int, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": step.id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [{"index": index, **call}]}},
    }
