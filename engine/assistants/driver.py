"""One Assistants run, driven by the agent loop: the loop's turns become steps, messages, events.

The run's code runs in its thread's session (one per thread), with the assistant's, the thread's
and the attached files placed in ``/mnt/data``. Function calls put the run in ``requires_action``;
``AssistantsService.submit_tool_outputs`` appends their outputs to the run's state and drives it
again from there.

A streamed run (one with a listener) asks the model to stream: its text reaches the client as
``thread.message.delta`` events (``messages.py``) and its code as ``thread.run.step.delta``
``input`` pieces (``code_steps.py``), as the model writes them. Text the model writes before
its tool calls is a message of its own, as OpenAI's runs make it, whether the run is streamed
or polled, so that both end the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from .. import errors
from ..agent.file_search import FileSearchHandler
from ..agent.loop import AgentLoop, LoopRequest, Outcome, TokenUsage, ToolHandler
from ..agent.provider import ModelDelta, ModelReply, ModelToolCall
from ..agent.tool_text import FILE_SEARCH, estimate_tokens
from ..config import Settings
from ..results import ExecutionResult
from ..runtime import Runtime
from ..sessions import Session
from . import context, file_search_run
from .code_steps import CodeSteps
from .events import step_delta
from .messages import MessageWriter
from .models import (
    TERMINAL_RUN,
    Assistant,
    ErrorCode,
    FunctionCall,
    IncompleteDetails,
    Message,
    RequiredAction,
    RequiredFunction,
    RequiredToolCall,
    Run,
    RunStatus,
    StepDetails,
    SubmitToolOutputs,
    Thread,
    ToolCall,
    Usage,
    now,
)
from .runs import RunBook
from .state import RunState, ThreadState
from .tools import function_specs

log = logging.getLogger(__name__)


async def drive(book: RunBook, engine: Runtime, loop: AgentLoop, owner: str, run_id: str) -> None:
    """Drive a stored run until it rests: answered, waiting for tool outputs, or ended."""
    run = book.repo.get(Run, "run", run_id, owner)
    await RunDriver(book, engine, loop, owner, run).drive()


class RunDriver:
    """The loop's host (``LoopHost``) for one run."""

    assistant: Assistant  # read when the drive starts

    def __init__(
        self, book: RunBook, engine: Runtime, loop: AgentLoop, owner: str, run: Run
    ) -> None:
        self.book = book
        self.repo = book.repo
        self.engine = engine
        self.loop = loop
        self.settings: Settings = loop.settings
        self.owner = owner
        self.run = run
        self.state = RunState()
        self.streams_deltas = False
        self._streamed = False
        self._session: Session | None = None
        self.messages = MessageWriter(book, owner, run)
        self.code_steps = CodeSteps(book, owner, run, self.settings.llm_tool_output_chars)
        self.file_search: FileSearchHandler | None = None
        self.messages.citations = lambda text: file_search_run.citations(self.file_search, text)

    async def drive(self) -> None:
        run = self.run
        try:
            await self._drive()
        except asyncio.CancelledError:
            if self.book.closing and run.status not in TERMINAL_RUN:
                self.messages.abandon(cancelled=False)
                message = "the engine shut down while this run was active; create it again"
                self.book.fail(self.owner, run, ErrorCode.SERVER_ERROR, message)
            raise
        except errors.ModelError as exc:
            self.messages.abandon(self.cancelled())
            rate_limited = "rate_limit" in str(exc)
            code = ErrorCode.RATE_LIMIT_EXCEEDED if rate_limited else ErrorCode.SERVER_ERROR
            self.book.fail(self.owner, run, code, str(exc))
        except Exception as exc:
            log.exception("run %s failed", run.id)
            self.messages.abandon(self.cancelled())
            self.book.fail(self.owner, run, ErrorCode.SERVER_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            self.book.cancelling.discard(run.id)
            self.book.expired.discard(run.id)
            self.book.running_code.pop(run.id, None)

    async def _drive(self) -> None:
        run, owner = self.run, self.owner
        run.status = RunStatus.IN_PROGRESS
        run.started_at = run.started_at or now()
        self.book.save(owner, run)
        self.book.events.emit(run.id, "thread.run.in_progress", run)
        self.streams_deltas = self.book.events.listening(run.id)
        self.state = self.repo.get_private(run.id, RunState)
        self.assistant = self.repo.get(Assistant, "assistant", run.assistant_id, owner)
        usage = run.usage or Usage()
        self.file_search = await file_search_run.run_handler(
            self.book.vector_stores, self.repo, owner, run, self.assistant, self.cancelled
        )
        request = LoopRequest(
            model=run.model,
            code_interpreter=any(t.type == "code_interpreter" for t in run.tools),
            functions=function_specs(run.tools),
            handlers={FILE_SEARCH: self.file_search} if self.file_search else {},
            tool_choice=run.tool_choice,
            temperature=run.temperature,
            top_p=run.top_p,
            max_completion_tokens=run.max_completion_tokens,
            parallel_tool_calls=run.parallel_tool_calls,
            usage=TokenUsage(usage.prompt_tokens, usage.completion_tokens),
        )
        result = await self.loop.run(self, request, self.state)
        match result.outcome:
            case Outcome.ANSWERED | Outcome.MAX_COMPLETION_TOKENS:
                assert result.reply is not None
                await self._answer(result.reply, result.session)
                if result.outcome == Outcome.ANSWERED:
                    self.book.finish(owner, run, RunStatus.COMPLETED)
                else:
                    self._incomplete(IncompleteDetails(reason="max_completion_tokens"))
            case Outcome.MAX_PROMPT_TOKENS:
                self._incomplete(IncompleteDetails(reason="max_prompt_tokens"))
            case Outcome.FUNCTION_CALLS:
                self._require_action(result.function_calls)
            case Outcome.TOO_MANY_ROUNDS:
                self.messages.abandon(cancelled=False)
                self.book.fail(owner, run, ErrorCode.SERVER_ERROR, result.detail)
            case Outcome.CANCELLED:
                self.messages.abandon(cancelled=True)
                self.book.finish(owner, run, RunStatus.CANCELLED)
            case Outcome.ABANDONED:  # already stored as expired
                pass

    def _incomplete(self, details: IncompleteDetails) -> None:
        self.run.incomplete_details = details
        self.book.finish(self.owner, self.run, RunStatus.INCOMPLETE)

    # --- what the loop asks ---

    async def session(self) -> Session:
        """The thread's session, with the assistant's, thread's and attached files placed."""
        owner, thread_id = self.owner, self.run.thread_id
        session = self._session = await self.engine.session(thread_id, owner=owner)
        wanted: list[str] = []
        thread = self.repo.get(Thread, "thread", thread_id, owner)
        for resources in (self.assistant.tool_resources, thread.tool_resources):
            if resources and resources.code_interpreter:
                wanted += resources.code_interpreter.file_ids
        for message in self.repo.all(Message, "message", owner, thread_id):
            wanted += [a.file_id for a in message.attachments]
        files = await session.list_files()
        present = {f.file_id for f in files}
        names = {f.filename for f in files}
        # Files placed before and since changed by the code are not put back over the change.
        record = self.repo.get_private(thread_id, ThreadState)
        placed = set(record.placed) if record.session == session.id else set()
        for file_id in dict.fromkeys(wanted):
            with contextlib.suppress(errors.NotFound):  # a file deleted since it was attached
                if file_id not in present and not (
                    file_id in placed
                    and self.engine.files.retrieve(file_id, owner).filename in names
                ):
                    await session.add_file(file_id)
                placed.add(file_id)
        self.repo.set_private(thread_id, ThreadState(session=session.id, placed=sorted(placed)))
        return session

    async def prompt(self, session: Session | None) -> list[dict[str, Any]] | None:
        run, state = self.run, self.state
        code_tool = session is not None
        files = [f.filename for f in await session.list_files()] if session else []
        system = context.system_prompt(run, state.additional_instructions, files, code_tool)
        # This run's own messages are in its conversation already, with their tool calls.
        messages = self.repo.all(Message, "message", self.owner, run.thread_id)
        history = context.thread_messages([m for m in messages if m.run_id != run.id])
        budget = run.max_prompt_tokens or self.settings.llm_context_tokens
        fixed = estimate_tokens(system) + sum(
            estimate_tokens(json.dumps(m)) for m in state.conversation
        )
        kept = context.truncate(history, run.truncation_strategy, budget - fixed)
        if run.max_prompt_tokens is not None:
            total = fixed + sum(estimate_tokens(str(m["content"])) for m in kept)
            if total > run.max_prompt_tokens:
                return None
        system_message = [{"role": "system", "content": system}] if system else []
        return [*system_message, *kept, *state.conversation]

    def cancelled(self) -> bool:
        return self.run.id in self.book.cancelling

    def abandoned(self) -> bool:
        return self.run.id in self.book.expired

    # --- what the loop tells ---

    async def on_model_delta(self, delta: ModelDelta) -> None:
        self._streamed = True
        if delta.text:
            self.messages.text(delta.text, self.state)
        if delta.tool_index is not None:
            await self.messages.close(self._session)  # the text before the tool calls is done
            self.code_steps.delta(delta)

    async def on_model_turn(self, reply: ModelReply, usage: TokenUsage) -> None:
        self.run.usage = Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.prompt_tokens + usage.completion_tokens,
        )
        if not self._streamed and reply.content:  # the whole turn at once: one delta
            self.messages.text(reply.content, self.state)
        self._streamed = False
        self.code_steps.turn_ended()
        if reply.tool_calls:
            await self.messages.close(self._session)

    async def on_code_calls(self, calls: list[ModelToolCall]) -> None:
        self.code_steps.open_round()

    async def on_code_started(
        self, index: int, call: ModelToolCall, code: str, session: Session
    ) -> None:
        self.code_steps.call_started(call.id, code)
        self.book.running_code[self.run.id] = session

    async def on_code_finished(
        self, index: int, call: ModelToolCall, result: ExecutionResult | None, text: str
    ) -> None:
        self.book.running_code.pop(self.run.id, None)
        images = self.code_steps.call_finished(call.id, result, text)
        # A run step shows them for as long as the thread lives, past its session's end.
        self.engine.files.keep_all(images, self.owner)
        self.state.images.extend(images)

    async def on_code_calls_finished(self) -> None:
        self.code_steps.close_round()

    async def on_tool_handled(self, call: ModelToolCall, handler: ToolHandler, text: str) -> None:
        if isinstance(handler, FileSearchHandler):
            file_search_run.record_step(self.book, self.owner, self.run, call, handler)

    async def on_round_finished(self) -> None:
        self.repo.set_private(self.run.id, self.state)
        self.book.save(self.owner, self.run)

    # --- how a run rests ---

    def _require_action(self, calls: list[ModelToolCall]) -> None:
        run, owner = self.run, self.owner
        step = self.book.new_step(owner, run, StepDetails(type="tool_calls", tool_calls=[]))
        tool_calls: list[ToolCall] = []
        for index, c in enumerate(calls):
            function = FunctionCall(name=c.name, arguments=c.arguments)
            tool_calls.append(ToolCall(id=c.id, type="function", function=function))
            call = {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments, "output": None},
            }
            self.book.events.emit(run.id, "thread.run.step.delta", step_delta(step, index, call))
        step.step_details.tool_calls = tool_calls
        self.book.save_step(owner, step)
        run.status = RunStatus.REQUIRES_ACTION
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
        self.book.save(owner, run)
        self.book.events.emit(run.id, "thread.run.requires_action", run)

    async def _answer(self, reply: ModelReply, session: Session | None) -> None:
        self.messages.text("", self.state)  # an empty answer is a message too
        await self.messages.close(session or self._session)
