"""Model providers: how a run asks a chat model for its next move."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict, Unpack

import openai

from .. import errors
from ..openai_client import OpenAICompatibleClient


@dataclass
class ModelToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class ModelReply:
    content: str | None
    tool_calls: list[ModelToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass
class ModelDelta:
    """A piece of a streamed model turn: text, or a fragment of tool call ``tool_index``."""

    text: str = ""
    tool_index: int | None = None
    tool_id: str = ""
    tool_name: str = ""
    arguments: str = ""
    """The new fragment of the call's JSON arguments."""


DeltaSink = Callable[[ModelDelta], Awaitable[None]]


class ModelTurn(TypedDict):
    """What a run asks of the model in one turn: ``complete``'s keyword arguments."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    parallel_tool_calls: bool
    options: NotRequired[dict[str, Any] | None]
    """More request parameters (``response_format``...), sent as they are."""
    on_delta: NotRequired[DeltaSink | None]


class ModelProvider(ABC):
    unavailable: str | None = None
    """Why the model cannot be asked at all (nothing configured), or None."""

    @abstractmethod
    async def complete(self, **turn: Unpack[ModelTurn]) -> ModelReply:
        """One chat-completions turn; with ``on_delta``, streamed to it as the model writes."""


class OpenAIChatProvider(ModelProvider):
    """Any OpenAI-compatible Chat Completions endpoint: OpenAI, Azure OpenAI, vLLM, Ollama.

    Without a ``base_url`` there is no client at all: the SDK would otherwise fall back to
    ``OPENAI_BASE_URL`` or OpenAI's hosted API, and send the thread where nobody configured it.
    """

    def __init__(self, base_url: str | None, api_key: str | None, timeout: float = 120.0) -> None:
        self._client: OpenAICompatibleClient | None = None
        if base_url:
            self._client = OpenAICompatibleClient(base_url, api_key, timeout=timeout, max_retries=2)
        else:
            missing = "SANDBOX_LLM_BASE_URL" + ("" if api_key else " and SANDBOX_LLM_API_KEY")
            self.unavailable = (
                "no model is configured: runs need SANDBOX_LLM_BASE_URL (an OpenAI-compatible "
                "Chat Completions endpoint) and SANDBOX_LLM_API_KEY (its key, if it asks for "
                f"one), and {missing} {'is' if api_key else 'are'} not set"
            )

    async def complete(self, **turn: Unpack[ModelTurn]) -> ModelReply:
        on_delta = turn.get("on_delta")
        kwargs: dict[str, Any] = {
            **(turn.get("options") or {}),
            "model": turn["model"],
            "messages": turn["messages"],
        }
        if turn["tools"]:
            kwargs["tools"] = turn["tools"]
            kwargs["tool_choice"] = turn["tool_choice"]
            kwargs["parallel_tool_calls"] = turn["parallel_tool_calls"]
        for name, value in (
            ("temperature", turn["temperature"]),
            ("top_p", turn["top_p"]),
            ("max_tokens", turn["max_tokens"]),
        ):
            if value is not None:
                kwargs[name] = value
        if self._client is None:
            raise errors.ModelError(self.unavailable or "no model is configured")
        try:
            if on_delta is not None:
                return await self._stream(kwargs, on_delta)
            response = await self._client.chat.create(**kwargs)
        except openai.RateLimitError as exc:
            raise errors.ModelError(f"rate_limit_exceeded: {exc}") from exc
        except openai.OpenAIError as exc:
            raise errors.ModelError(f"the model endpoint failed: {exc}") from exc
        if not response.choices:
            raise errors.ModelError("the model returned no choices")
        choice = response.choices[0]
        calls = [
            ModelToolCall(c.id, c.function.name, c.function.arguments or "{}")
            for c in (choice.message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = response.usage
        return ModelReply(
            content=choice.message.content,
            tool_calls=calls,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )

    async def _stream(self, kwargs: dict[str, Any], on_delta: DeltaSink) -> ModelReply:
        """``stream=True`` upstream: each chunk reaches ``on_delta`` as it arrives."""
        assert self._client is not None
        stream = await self._client.chat.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        reply = ModelReply(content=None)
        text: list[str] = []
        calls: dict[int, ModelToolCall] = {}
        async for chunk in stream:
            if chunk.usage is not None:
                reply.prompt_tokens = chunk.usage.prompt_tokens
                reply.completion_tokens = chunk.usage.completion_tokens
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            reply.finish_reason = choice.finish_reason or reply.finish_reason
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                await on_delta(ModelDelta(text=delta.content))
            for part in delta.tool_calls or []:
                call = calls.setdefault(part.index, ModelToolCall("", "", ""))
                function = part.function
                call.id = part.id or call.id
                if function is not None and function.name:
                    call.name = call.name or function.name
                fragment = (function.arguments if function is not None else None) or ""
                call.arguments += fragment
                await on_delta(
                    ModelDelta(
                        tool_index=part.index,
                        tool_id=call.id,
                        tool_name=call.name,
                        arguments=fragment,
                    )
                )
        reply.content = "".join(text) if text else None
        reply.tool_calls = [
            ModelToolCall(c.id, c.name, c.arguments or "{}")
            for _, c in sorted(calls.items())
            if c.name
        ]
        return reply
