"""The agent loop: model turn -> tool calls -> code in the sandbox -> results -> next turn.

It knows the model (a ``ModelProvider``), the sandbox (a ``Session``) and the engine's settings,
and nothing of the API objects around it (Assistants runs, steps, messages and threads, or a
Responses response), so every API face that lets a model run code drives the same loop.

The contract. The caller gives ``AgentLoop.run`` a ``LoopHost`` (a Protocol: what the loop needs
of its host, and nothing of the API's objects), a ``LoopRequest`` (the model, its tools and
options) and a ``LoopState`` (the conversation so far: the model's tool-call turns and their
results; the caller persists it to resume a paused loop). Each turn the loop asks the host
for the sandbox ``session()`` (only when the code interpreter is on) and the ``prompt(session)``
(the caller's system prompt and history, ending with ``state.conversation``), then asks the model.
Code-interpreter calls run in the session one by one; their results, capped, errors with
tracebacks, go back to the model as tool messages, which lets it fix its code and try again.
Engine-run tools besides code (``LoopRequest.handlers``: the slot where ``file_search`` goes)
answer through their handler. A call to an unknown tool is answered with an error. Function
calls are the client's: the loop returns them and the caller resumes later with their outputs
appended to the conversation. The ``on_*`` hooks let the host record and stream every step
(with ``streams_deltas``, also each piece of text and tool-call arguments as the model writes
it: the provider streams upstream); the host can stop the loop between steps (``cancelled()``,
or ``abandoned()`` when it has already closed the turn). A tool choice that forces a tool
applies to the first model turn only; past ``LoopRequest.max_tool_calls`` engine-run calls are
refused and the model must answer; more than ``settings.llm_max_tool_rounds`` rounds of tool
calls end the loop. ``run`` returns a ``LoopResult``: why it stopped, with the final reply or the
pending function calls. A model failure (or a provider with nothing configured) raises
``ModelError``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field

from .. import errors
from ..config import Settings
from ..results import ExecutionResult
from ..sessions import Session
from .provider import ModelDelta, ModelProvider, ModelReply, ModelToolCall
from .tool_text import CODE_TOOL, CODE_TOOL_SPEC, code_of, model_tool_choice, tool_result_text


class LoopState(BaseModel):
    """What a paused loop resumes from; the caller stores it."""

    conversation: list[dict[str, Any]] = Field(default_factory=list)
    rounds: int = 0
    tool_calls: int = 0
    """Engine-run tool calls made so far, against ``LoopRequest.max_tool_calls``."""


@dataclass
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ToolHandler(ABC):
    """A tool the engine answers itself, other than the code interpreter (next: file_search)."""

    @property
    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """Its Chat Completions definition: ``{"type": "function", "function": {...}}``."""

    @abstractmethod
    async def call(self, arguments: str) -> str:
        """The result the model reads, for the model's JSON ``arguments``."""


@dataclass
class LoopRequest:
    model: str
    code_interpreter: bool = False
    functions: list[dict[str, Any]] = field(default_factory=list)
    """Client-run functions, as Chat Completions defines them."""
    handlers: dict[str, ToolHandler] = field(default_factory=dict)
    """Engine-run tools by the name the model calls them."""
    tool_choice: Any = "auto"
    """'auto', 'none', 'required', a Chat Completions function choice, or code_interpreter."""
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    parallel_tool_calls: bool = True
    max_tool_calls: int | None = None
    """Engine-run tool calls (code, handlers) allowed in all; then the model must answer."""
    options: dict[str, Any] = field(default_factory=dict)
    """More Chat Completions parameters (``response_format``, ``reasoning_effort``...), as
    they are."""
    usage: TokenUsage = field(default_factory=TokenUsage)
    """Tokens used so far (by earlier segments of a resumed loop); the loop adds to it."""


class Outcome(StrEnum):
    ANSWERED = "answered"
    MAX_COMPLETION_TOKENS = "max_completion_tokens"  # answered, cut by the completion cap
    MAX_PROMPT_TOKENS = "max_prompt_tokens"  # the prompt did not fit: the model was not asked
    FUNCTION_CALLS = "function_calls"  # paused for the client's function outputs
    TOO_MANY_ROUNDS = "too_many_rounds"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"  # the host closed the turn meanwhile: nothing more to record


@dataclass
class LoopResult:
    outcome: Outcome
    reply: ModelReply | None = None
    function_calls: list[ModelToolCall] = field(default_factory=list)
    session: Session | None = None
    """The session of the last turn, where the files the answer links to are."""
    detail: str = ""


class LoopHost(Protocol):
    """What the loop needs from the API object it works for (an Assistants run, a response).

    The ``on_*`` hooks tell the host each step as it goes, to record and stream it; a host that
    subclasses this Protocol gets hooks that do nothing, and a loop that never stops by itself.
    """

    streams_deltas: bool = False
    """Whether the model is asked to stream, each piece going to ``on_model_delta``."""

    async def session(self) -> Session:
        """The sandbox the code runs in, asked before each model turn (files may be placed)."""
        ...

    async def prompt(self, session: Session | None) -> list[dict[str, Any]] | None:
        """The next turn's messages, ending with the state's conversation; None if too long."""
        ...

    def cancelled(self) -> bool:
        """Whether to stop at the next safe point (between steps, never inside running code)."""
        return False

    def abandoned(self) -> bool:
        """Whether the host has closed the turn already, so nothing more may be recorded."""
        return False

    async def on_model_delta(self, delta: ModelDelta) -> None:
        """A piece of the model's turn as it writes it (when ``streams_deltas``)."""
        return None

    async def on_model_turn(self, reply: ModelReply, usage: TokenUsage) -> None:
        """A model turn ended; ``usage`` is the running total."""
        return None

    async def on_code_calls(self, calls: list[ModelToolCall]) -> None:
        """The code-interpreter calls of one model turn are about to run."""
        return None

    async def on_code_started(
        self, index: int, call: ModelToolCall, code: str, session: Session
    ) -> None:
        """Code ``index`` of the turn starts running in ``session``."""
        return None

    async def on_code_finished(
        self, index: int, call: ModelToolCall, result: ExecutionResult | None, text: str
    ) -> None:
        """It ended: ``result`` (None if the engine could not run it) and what the model reads."""
        return None

    async def on_code_calls_finished(self) -> None:
        """Every code call of the turn has run."""
        return None

    async def on_tool_handled(self, call: ModelToolCall, handler: ToolHandler, text: str) -> None:
        """An engine-run tool other than code (``handlers``) answered ``call`` with ``text``."""
        return None

    async def on_round_finished(self) -> None:
        """A round of tool calls is in the state's conversation: the moment to persist it."""
        return None


class AgentLoop:
    def __init__(self, provider: ModelProvider, settings: Settings) -> None:
        self.provider = provider
        self.settings = settings

    async def run(self, host: LoopHost, request: LoopRequest, state: LoopState) -> LoopResult:
        if self.provider.unavailable is not None:  # before any sandbox is started for nothing
            raise errors.ModelError(self.provider.unavailable)
        code_tool = request.code_interpreter
        specs = [CODE_TOOL_SPEC] if code_tool else []
        specs += request.functions + [h.spec for h in request.handlers.values()]
        functions = {spec["function"]["name"] for spec in request.functions}
        usage = request.usage
        while True:
            if host.cancelled():
                return LoopResult(Outcome.CANCELLED)
            session = await host.session() if code_tool else None
            messages = await host.prompt(session)
            if messages is None:
                return LoopResult(Outcome.MAX_PROMPT_TOKENS, session=session)
            first_turn = state.rounds == 0 and not state.conversation
            # Only a host that streams passes a sink, so providers without streaming still work.
            stream: dict[str, Any] = (
                {"on_delta": host.on_model_delta} if host.streams_deltas else {}
            )
            choice = model_tool_choice(request.tool_choice, first_turn)
            if _calls_left(request, state) == 0:
                choice = "none"
            reply = await self.provider.complete(
                model=request.model,
                messages=messages,
                tools=specs,
                tool_choice=choice,
                temperature=request.temperature,
                top_p=request.top_p,
                max_tokens=_remaining(request.max_completion_tokens, usage),
                parallel_tool_calls=request.parallel_tool_calls,
                options=request.options,
                **stream,
            )
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            await host.on_model_turn(reply, usage)
            if host.cancelled():
                return LoopResult(Outcome.CANCELLED)
            if not reply.tool_calls:
                cut = bool(request.max_completion_tokens) and reply.finish_reason == "length"
                outcome = Outcome.MAX_COMPLETION_TOKENS if cut else Outcome.ANSWERED
                return LoopResult(outcome, reply=reply, session=session)
            state.rounds += 1
            if state.rounds > self.settings.llm_max_tool_rounds:
                return LoopResult(
                    Outcome.TOO_MANY_ROUNDS,
                    reply=reply,
                    detail=f"the model asked for more than {self.settings.llm_max_tool_rounds} "
                    "rounds of tool calls (SANDBOX_LLM_MAX_TOOL_ROUNDS)",
                )
            state.conversation.append(_assistant_turn(reply))
            code_calls = [c for c in reply.tool_calls if code_tool and c.name == CODE_TOOL]
            function_calls = [c for c in reply.tool_calls if c.name in functions]
            handled = [c for c in reply.tool_calls if c.name in request.handlers]
            left = _calls_left(request, state)
            if left is not None:  # engine-run calls past max_tool_calls are answered, not run
                engine_run = [c for c in reply.tool_calls if c in code_calls or c in handled]
                over = engine_run[left:]
                code_calls = [c for c in code_calls if c not in over]
                handled = [c for c in handled if c not in over]
                for call in over:
                    state.conversation.append(
                        _tool_message(call, "error: max_tool_calls reached; answer without tools")
                    )
            state.tool_calls += len(code_calls) + len(handled)
            answered = code_calls + function_calls + handled
            for call in reply.tool_calls:
                if call not in answered and not _answered(state, call):
                    state.conversation.append(
                        _tool_message(call, f"error: there is no tool named {call.name!r}")
                    )
            if code_calls and session is not None:
                await self._run_code(host, session, code_calls, state)
            for call in handled:
                handler = request.handlers[call.name]
                text = await handler.call(call.arguments)
                await host.on_tool_handled(call, handler, text)
                state.conversation.append(_tool_message(call, text))
            if host.abandoned():
                return LoopResult(Outcome.ABANDONED)
            if host.cancelled():  # cancelled while the tools ran
                return LoopResult(Outcome.CANCELLED)
            await host.on_round_finished()
            if function_calls:
                return LoopResult(
                    Outcome.FUNCTION_CALLS, reply=reply, function_calls=function_calls
                )

    async def _run_code(
        self, host: LoopHost, session: Session, calls: list[ModelToolCall], state: LoopState
    ) -> None:
        await host.on_code_calls(calls)
        for index, call in enumerate(calls):
            code = code_of(call.arguments)
            await host.on_code_started(index, call, code, session)
            result: ExecutionResult | None
            try:
                result = await session.execute(code, timeout=self.settings.llm_code_timeout)
                text = tool_result_text(result, self.settings.llm_tool_output_chars)
            except errors.EngineError as exc:
                result, text = None, json.dumps({"status": "error", "error": str(exc)})
            if host.abandoned():  # nothing of this turn may be written any more
                return
            await host.on_code_finished(index, call, result, text)
            state.conversation.append(_tool_message(call, text))
        await host.on_code_calls_finished()


def _calls_left(request: LoopRequest, state: LoopState) -> int | None:
    if request.max_tool_calls is None:
        return None
    return max(0, request.max_tool_calls - state.tool_calls)


def _answered(state: LoopState, call: ModelToolCall) -> bool:
    return any(m.get("tool_call_id") == call.id for m in state.conversation)


def _remaining(cap: int | None, usage: TokenUsage) -> int | None:
    return None if cap is None else max(1, cap - usage.completion_tokens)


def _assistant_turn(reply: ModelReply) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": reply.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ],
    }


def _tool_message(call: ModelToolCall, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": text}
