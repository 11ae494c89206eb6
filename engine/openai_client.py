"""The one client for OpenAI-compatible endpoints (OpenAI, Azure OpenAI v1, vLLM, Ollama, TEI):
chat completions (the agent's model provider), the model list (the playground's suggestions)
and embeddings (retrieval's semantic index), all through the openai SDK.

Each use keeps its own timeout and retries, and says in its own words what failed. A key, when
given, is sent both ways endpoints ask for it: as a bearer token and as Azure's ``api-key``.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.resources.chat import AsyncCompletions

from . import errors


class OpenAICompatibleClient:
    def __init__(
        self, base_url: str, api_key: str | None, *, timeout: float, max_retries: int
    ) -> None:
        self.base_url = base_url
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
            default_headers={"api-key": api_key} if api_key else None,
        )

    @property
    def chat(self) -> AsyncCompletions:
        """``POST /chat/completions``, as the SDK offers it (streamed or not)."""
        return self._sdk.chat.completions

    async def model_ids(self, limit: int = 100) -> list[str]:
        """The ids of the first ``limit`` models the endpoint lists; none if it cannot say."""
        try:
            page = await self._sdk.models.list()
            return [m.id for m in page.data[:limit]]
        except (openai.OpenAIError, ValueError, KeyError, TypeError, AttributeError):
            return []

    async def embeddings(self, model: str, texts: list[str]) -> list[list[float]]:
        """``POST /embeddings``: one vector per text, in the texts' order."""
        try:
            response = await self._sdk.embeddings.create(
                model=model, input=texts, encoding_format="float"
            )
        except openai.APIStatusError as exc:
            raise errors.EngineError(
                f"the embeddings endpoint answered {exc.status_code}: {exc.response.text[:300]}"
            ) from exc
        except openai.OpenAIError as exc:  # the transport's own words say more than the SDK's
            raise errors.EngineError(
                f"the embeddings endpoint failed: {exc.__cause__ or exc}"
            ) from exc
        rows: Any = getattr(response, "data", None) or []
        data = sorted(rows, key=lambda d: getattr(d, "index", 0) or 0)
        if len(data) != len(texts):
            raise errors.EngineError("the embeddings endpoint returned the wrong number of vectors")
        return [list(map(float, d.embedding)) for d in data]

    async def close(self) -> None:
        await self._sdk.close()
