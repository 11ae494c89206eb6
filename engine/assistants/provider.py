"""Model providers: how a run asks a chat model for its next move."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import openai

from .. import errors


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


class ModelProvider(ABC):
    unavailable: str | None = None
    """Why the model cannot be asked at all (nothing configured), or None."""

    @abstractmethod
    async def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        temperature: float | None,
        top_p: float | None,
        max_tokens: int | None,
        parallel_tool_calls: bool,
    ) -> ModelReply:
        """One chat-completions turn."""


class OpenAIChatProvider(ModelProvider):
    """Any OpenAI-compatible Chat Completions endpoint: OpenAI, Azure OpenAI, vLLM, Ollama.

    Without a ``base_url`` there is no client at all: the SDK would otherwise fall back to
    ``OPENAI_BASE_URL`` or OpenAI's hosted API, and send the thread where nobody configured it.
    """

    def __init__(self, base_url: str | None, api_key: str | None, timeout: float = 120.0) -> None:
        self._client: openai.AsyncOpenAI | None = None
        if base_url:
            self._client = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=2
            )
        else:
            missing = "SANDBOX_LLM_BASE_URL" + ("" if api_key else " and SANDBOX_LLM_API_KEY")
            self.unavailable = (
                "no model is configured: runs need SANDBOX_LLM_BASE_URL (an OpenAI-compatible "
                "Chat Completions endpoint) and SANDBOX_LLM_API_KEY (its key, if it asks for "
                f"one), and {missing} {'is' if api_key else 'are'} not set"
            )

    async def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        temperature: float | None,
        top_p: float | None,
        max_tokens: int | None,
        parallel_tool_calls: bool,
    ) -> ModelReply:
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = tool_choice
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        for name, value in (
            ("temperature", temperature),
            ("top_p", top_p),
            ("max_tokens", max_tokens),
        ):
            if value is not None:
                kwargs[name] = value
        if self._client is None:
            raise errors.ModelError(self.unavailable or "no model is configured")
        try:
            response = await self._client.chat.completions.create(**kwargs)
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
