"""The Responses service: responses and conversations, as the router asks.

A response is one run of the agent loop (``engine.agent.loop``) through ``ResponseRun``.
Its context is its input after the items of the response it continues (``previous_response_id``,
walked back) or of its conversation; its code runs in the container its chain already uses.
Everything is checked before anything runs, so bad input is a 4xx and never a failed response.
``store=false`` keeps nothing; ``background=true`` returns at once and is polled or cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import InitVar, dataclass, field
from typing import Any

from .. import errors
from ..agent.file_search import FileSearchHandler
from ..agent.loop import AgentLoop, LoopRequest, Outcome
from ..agent.provider import ModelProvider
from ..agent.tool_text import FILE_SEARCH
from ..config import Settings
from ..egress.policy import parse_cap
from ..paging import Page
from ..retrieval import VectorStores
from ..runtime import Runtime
from ..sessions import Session
from . import containers
from .conversations import Conversations
from .events import Event, ResponseEvents
from .items import input_file_ids, message_tokens, parse_input, store_inline_files, to_messages
from .models import (
    ACTIVE,
    INCLUDABLE,
    ContextTooLong,
    ConversationRef,
    CreateResponse,
    ErrorCode,
    IncompleteDetails,
    Item,
    Response,
    ResponseError,
    ResponseState,
    ResponseStatus,
    now,
)
from .repository import Repository
from .runner import ResponseRun
from .tools import Tools, parse_tools

log = logging.getLogger(__name__)
MAX_CHAIN = 1000
CANCEL_WAIT = 1.0
"""How long a cancel waits for the loop to stop at a safe point before stopping it outright."""
TERMINAL = {
    ResponseStatus.COMPLETED: "response.completed",
    ResponseStatus.INCOMPLETE: "response.incomplete",
}
"""A stream's last event; any other end (failed, cancelled, deleted) is ``response.failed``, the
response in it saying which, as the SDK has no ``response.cancelled`` event."""


@dataclass(eq=False)
class ResponsesService:
    engine: Runtime
    provider: InitVar[ModelProvider]
    settings: Settings
    vector_stores: VectorStores | None = None
    """What the file_search tool searches; without them, it is refused."""
    repo: Repository = field(init=False)
    loop: AgentLoop = field(init=False)
    conversations: Conversations = field(init=False)
    live: dict[str, ResponseRun] = field(init=False, default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(init=False, default_factory=dict)
    busy: set[str] = field(init=False, default_factory=set)
    """Conversations with a response running: one at a time, as OpenAI allows."""
    closing: bool = field(init=False, default=False)

    def __post_init__(self, provider: ModelProvider) -> None:
        self.repo = Repository(self.engine.store)
        self.loop = AgentLoop(provider, self.settings)
        self.conversations = Conversations(self.repo, self.engine)

    # --- lifecycle ---

    def recover(self) -> int:
        """After a restart, a response that was running cannot go on: it fails, saying why."""
        count = 0
        for response_id, owner in self.repo.active("response", [s.value for s in ACTIVE]):
            response = self.repo.get(Response, "response", response_id, owner, "Response")
            response.status = ResponseStatus.FAILED
            response.error = ResponseError(
                code="server_error",
                message="the engine restarted while this response was running; create it again",
            )
            self.repo.put(response, "response", owner)
            count += 1
        return count

    async def close(self) -> None:
        self.closing = True
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _file_search(self, owner: str, tools: Tools) -> FileSearchHandler | None:
        spec = tools.file_search
        if spec is None:
            return None
        if self.vector_stores is None:
            raise errors.InvalidRequest("file_search is not available in this engine")
        for store_id in spec.vector_store_ids:
            self.vector_stores.usable(store_id, owner)  # unknown: 404; expired: 400
        return FileSearchHandler(
            self.vector_stores,
            owner,
            list(dict.fromkeys(spec.vector_store_ids)),
            max_num_results=spec.max_num_results or 10,
            ranking_options=spec.ranking_options,
            filters=spec.filters,
        )

    # --- responses ---

    async def create(
        self, owner: str, body: CreateResponse, listener: asyncio.Queue[Event] | None = None
    ) -> Response:
        if self.closing:
            raise errors.BackendUnavailable("the engine is shutting down; try again later")
        body.check_fields()
        unknown = sorted(set(body.include) - INCLUDABLE)
        if unknown:
            raise errors.InvalidRequest(
                f"include: unknown value {unknown[0]!r}; supported: {sorted(INCLUDABLE)}"
            )
        cap = parse_cap(self.engine.settings.egress_allowed_domains)
        tools = parse_tools(body.tools, body.tool_choice, cap)
        conversation_id = body.conversation_id
        if body.previous_response_id and conversation_id:
            raise errors.InvalidRequest(
                "previous_response_id and conversation cannot be used together; give one"
            )
        if not body.store and (body.background or conversation_id):
            raise errors.InvalidRequest(
                "store=false cannot be combined with background or conversation: both keep "
                "the response"
            )
        items = parse_input(body.input)
        if not items:
            raise errors.InvalidRequest("input must not be empty")
        history, state = self._history(owner, body.previous_response_id, conversation_id)
        if conversation_id in self.busy:
            raise errors.ConversationLocked(
                "Another process is currently operating on this conversation. Please retry in a "
                "few seconds."
            )
        if conversation_id:  # claimed before the first await, released when the response ends
            self.busy.add(conversation_id)
        try:
            run, task = await self._start(owner, body, listener, tools, items, history, state)
        except BaseException:  # nothing started: the conversation is free again
            self.busy.discard(conversation_id or "")
            raise
        if body.background or listener is not None:
            return run.response.model_copy(deep=True)
        await asyncio.shield(task)  # a client that goes away does not stop the response
        return run.response

    async def _start(
        self,
        owner: str,
        body: CreateResponse,
        listener: asyncio.Queue[Event] | None,
        tools: Tools,
        items: list[Item],
        history: list[Item],
        state: ResponseState,
    ) -> tuple[ResponseRun, asyncio.Task[None]]:
        """Check what is left to check, then start the response's task."""
        conversation_id = body.conversation_id
        await store_inline_files(items, self.engine.files, owner)
        messages = to_messages([*history, *items], self.engine.files, owner)
        if body.truncation == "disabled":
            used = sum(message_tokens(m) for m in messages)
            if used > self.settings.llm_context_tokens:
                raise ContextTooLong(
                    f"context_length_exceeded: the input is about {used} tokens, more than the "
                    f"{self.settings.llm_context_tokens} allowed; shorten it or set "
                    "truncation='auto'"
                )
        if tools.code is not None and tools.code.container_id is not None:
            containers.check_explicit(self.engine, owner, tools.code.container_id)
        file_search = self._file_search(owner, tools)
        response = self._response(body, conversation_id)
        run = ResponseRun(
            self.engine,
            response,
            tools,
            messages,
            ResponseEvents(),
            owner=owner,
            stream=listener is not None,
            previous_container=state.container_id,
            files=state.files,
            input_files=input_file_ids([*history, *items]),
            context_tokens=self.settings.llm_context_tokens,
            tool_output_chars=self.settings.llm_tool_output_chars,
            include_outputs="code_interpreter_call.outputs" in body.include,
            file_search=file_search,
            include_results="file_search_call.results" in body.include,
        )
        if listener is not None:
            run.events.listen(listener)
        if body.store:
            self.repo.put(response, "response", owner, ResponseState(include=body.include))
            self.repo.add_items(response.id, owner, items)
        self.live[response.id] = run
        self._emit(run, "response.created")
        if body.background:
            self._emit(run, "response.queued")
        task = asyncio.create_task(self._drive(owner, run, tools, items, body))
        self.tasks[response.id] = task
        task.add_done_callback(lambda _: self.tasks.pop(response.id, None))
        return run, task

    def _response(self, body: CreateResponse, conversation_id: str | None) -> Response:
        return Response(
            status=ResponseStatus.QUEUED if body.background else ResponseStatus.IN_PROGRESS,
            background=body.background,
            instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            max_tool_calls=body.max_tool_calls,
            metadata=body.metadata or {},
            model=body.model,
            parallel_tool_calls=body.parallel_tool_calls,
            previous_response_id=body.previous_response_id,
            conversation=ConversationRef(id=conversation_id) if conversation_id else None,
            store=body.store,
            temperature=body.temperature,
            tool_choice=body.tool_choice,
            tools=body.tools,
            top_p=body.top_p,
            truncation=body.truncation,
            user=body.user,
            text={
                "format": body.text.format.shown(),
                **({"verbosity": body.text.verbosity} if body.text.verbosity else {}),
            },
            reasoning=body.reasoning.model_dump(exclude_none=True) if body.reasoning else None,
            service_tier=body.service_tier or "auto",
            safety_identifier=body.safety_identifier,
            prompt_cache_key=body.prompt_cache_key,
            prompt_cache_retention=body.prompt_cache_retention,
            top_logprobs=body.top_logprobs,
        )

    def _history(
        self, owner: str, previous_id: str | None, conversation_id: str | None
    ) -> tuple[list[Item], ResponseState]:
        """The items before this input, and the state (container, files) they left."""
        if conversation_id:
            self.conversations.get(owner, conversation_id)
            return self.repo.items(conversation_id, owner), self.conversations.state(
                conversation_id
            )
        if not previous_id:
            return [], ResponseState()
        try:
            previous = self.repo.get(Response, "response", previous_id, owner, "Response")
        except errors.NotFound:
            raise errors.InvalidRequest(
                f"Previous response with id '{previous_id}' not found."
            ) from None
        if previous.status in ACTIVE:
            raise errors.InvalidRequest(
                f"Previous response {previous_id} is still {previous.status}; wait for it"
            )
        state = self.repo.private(previous.id, ResponseState)
        chain: list[list[Item]] = []
        cursor: Response | None = previous
        while cursor is not None and len(chain) < MAX_CHAIN:
            chain.append([*self.repo.items(cursor.id, owner), *cursor.output])
            parent = cursor.previous_response_id
            cursor = None
            if parent:
                with contextlib.suppress(errors.NotFound):  # a deleted link ends the chain
                    cursor = self.repo.get(Response, "response", parent, owner, "Response")
        return [item for turn in reversed(chain) for item in turn], state

    def _emit(self, run: ResponseRun, type_: str) -> None:
        include = {"code_interpreter_call.outputs"} if run.items.include_outputs else set()
        if run.items.include_results:
            include.add("file_search_call.results")
        run.events.emit(type_, response=run.response.shown(include))

    async def _drive(
        self, owner: str, run: ResponseRun, tools: Tools, items: list[Item], body: CreateResponse
    ) -> None:
        response = run.response
        try:
            response.status = ResponseStatus.IN_PROGRESS
            if body.background and body.store:
                self.repo.put(response, "response", owner)
            self._emit(run, "response.in_progress")
            request = LoopRequest(
                model=response.model,
                code_interpreter=tools.code is not None,
                functions=tools.functions,
                handlers={FILE_SEARCH: run.search.handler} if run.search.handler else {},
                tool_choice=tools.choice,
                temperature=response.temperature,
                top_p=response.top_p,
                max_completion_tokens=response.max_output_tokens,
                parallel_tool_calls=response.parallel_tool_calls,
                max_tool_calls=response.max_tool_calls,
                options=body.model_options(),
            )
            await self._outcome(run, request)
        except asyncio.CancelledError:
            if self.closing:
                self._fail(run, "server_error", "the engine shut down while this response ran")
            else:
                response.status = ResponseStatus.CANCELLED
            raise
        except errors.ModelError as exc:
            code: ErrorCode = "rate_limit_exceeded" if "rate_limit" in str(exc) else "server_error"
            self._fail(run, code, str(exc))
        except errors.EngineError as exc:
            self._fail(run, "server_error", str(exc))
        except Exception as exc:
            log.exception("response %s failed", response.id)
            self._fail(run, "server_error", f"{type(exc).__name__}: {exc}")
        finally:
            run.close_open_items()
            self.live.pop(response.id, None)
            try:
                await self._save(owner, run, items, body)
            finally:
                if body.conversation_id:
                    self.busy.discard(body.conversation_id)
                # Also when cancelled or deleted (the task is cancelled): every stream ends.
                self._emit(run, TERMINAL.get(response.status, "response.failed"))

    async def _outcome(self, run: ResponseRun, request: LoopRequest) -> None:
        response = run.response
        result = await self.loop.run(run, request, run.state)
        match result.outcome:
            case Outcome.ANSWERED | Outcome.FUNCTION_CALLS:
                run.finish_text([*await run.citations(result.session), *run.file_citations()])
                response.status = ResponseStatus.COMPLETED
            case Outcome.MAX_COMPLETION_TOKENS:
                run.finish_text([*await run.citations(result.session), *run.file_citations()])
                response.status = ResponseStatus.INCOMPLETE
                response.incomplete_details = IncompleteDetails(reason="max_output_tokens")
            case Outcome.MAX_PROMPT_TOKENS:
                self._fail(
                    run,
                    "invalid_prompt",
                    "context_length_exceeded: the context (with its tool results) no longer fits "
                    f"in {self.settings.llm_context_tokens} tokens (SANDBOX_LLM_CONTEXT_TOKENS)",
                )
            case Outcome.TOO_MANY_ROUNDS:
                self._fail(run, "server_error", result.detail)
            case Outcome.CANCELLED | Outcome.ABANDONED:
                response.status = ResponseStatus.CANCELLED

    def _fail(self, run: ResponseRun, code: ErrorCode, message: str) -> None:
        run.response.status = ResponseStatus.FAILED
        run.response.error = ResponseError(code=code, message=message)

    async def _save(self, owner: str, run: ResponseRun, items: list[Item], body: Any) -> None:
        response = run.response
        if response.status == ResponseStatus.COMPLETED:
            response.completed_at = now()
        session = run.placement.session if run.placement is not None else None
        state = ResponseState(include=body.include)
        if session is not None:
            state.container_id = session.id
            state.files = await containers.snapshot(session)
            if body.store or body.conversation_id:  # a later turn may restore them
                session.keep_outputs(state.files.values())
        if body.store:
            self.repo.put(response, "response", owner, state)
        conversation_id = body.conversation_id
        if conversation_id and response.status != ResponseStatus.CANCELLED:
            self.repo.add_items(conversation_id, owner, [*items, *response.output])
            self.conversations.set_state(conversation_id, state)

    def get(self, owner: str, response_id: str) -> tuple[Response, set[str]]:
        """The response (live while it runs), and the ``include`` it was created with."""
        stored = self.repo.get(Response, "response", response_id, owner, "Response")
        run = self.live.get(response_id)
        include = set(self.repo.private(response_id, ResponseState).include)
        return (run.response if run is not None else stored), include

    async def delete(self, owner: str, response_id: str) -> None:
        self.repo.get(Response, "response", response_id, owner, "Response")
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.repo.delete(response_id, owner)

    async def cancel(self, owner: str, response_id: str) -> Response:
        response, _ = self.get(owner, response_id)
        if not response.background:
            raise errors.InvalidRequest("Cannot cancel a synchronous response.")
        if response.status == ResponseStatus.CANCELLED:
            return response
        if response.status not in ACTIVE:
            raise errors.InvalidRequest(f"Cannot cancel a response with status {response.status}.")
        run = self.live.get(response_id)
        task = self.tasks.get(response_id)
        if run is not None:
            run.cancel_requested = True
            if run.running is not None:
                await _interrupt(run.running)
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=CANCEL_WAIT)
            # Still in the loop (code that ignores the interrupt, a slow model): stopped
            # outright; a response already saving its end (no longer live) is let finish.
            if not done and response_id in self.live:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return self.get(owner, response_id)[0]

    def input_items(self, owner: str, response_id: str, **paging: Any) -> Page[Item]:
        self.repo.get(Response, "response", response_id, owner, "Response")
        return self.repo.page_items(response_id, owner, **paging)


async def _interrupt(session: Session) -> None:
    with contextlib.suppress(errors.EngineError):
        await session.interrupt()
