"""The one client for OpenAI-compatible endpoints, against a real HTTP server: embeddings (in
batches, in order, as unit vectors), the endpoint's failures in the engine's words, and the
model list. Chat completions go through it in every test that asks the scripted model."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from engine import errors
from engine.openai_client import OpenAICompatibleClient
from engine.retrieval.embedders import OpenAIEmbeddings

from ..support.servers import ServerThread

embeddings_app = FastAPI()
embeddings_app.state.requests = []


@embeddings_app.post("/v1/embeddings", response_model=None)
async def embeddings(request: Request) -> dict[str, Any] | PlainTextResponse:
    body = await request.json()
    embeddings_app.state.requests.append((dict(request.headers), body))
    if body["model"] == "broken":
        return PlainTextResponse("the model is asleep", status_code=503)
    # Listed backwards: the client puts them back in the texts' order by index.
    rows = [
        {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.0, 3.0]}
        for i, text in enumerate(body["input"])
    ]
    return {"object": "list", "model": body["model"], "data": rows[::-1]}


@embeddings_app.get("/v1/models")
async def models() -> dict[str, Any]:
    data = [{"id": f"m{n}", "object": "model", "owned_by": "tests"} for n in range(150)]
    return {"object": "list", "data": data}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ServerThread(embeddings_app)
    server.start()
    yield f"{server.url}/v1"
    server.stop()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def test_embeddings_come_back_in_order_as_unit_vectors(endpoint: str) -> None:
    embedder = OpenAIEmbeddings(endpoint, "key-1", "small")
    embeddings_app.state.requests.clear()
    texts = [f"text {'x' * n}" for n in range(70)]
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.close()
    assert vectors.shape == (70, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.array([len(texts[5]), 0.0, 3.0]) / np.linalg.norm([len(texts[5]), 0.0, 3.0])
    assert np.allclose(vectors[5], expected, atol=1e-6)
    batches = [body["input"] for _, body in embeddings_app.state.requests]
    assert [len(b) for b in batches] == [64, 6] and batches[0][0] == texts[0]
    headers = embeddings_app.state.requests[0][0]
    assert headers["authorization"] == "Bearer key-1" and headers["api-key"] == "key-1"


async def test_embedding_failures_say_what_the_endpoint_did(endpoint: str) -> None:
    client = OpenAICompatibleClient(endpoint, None, timeout=60, max_retries=0)
    try:
        with pytest.raises(errors.EngineError, match="answered 503: the model is asleep"):
            await client.embeddings("broken", ["a"])
    finally:
        await client.close()
    gone = OpenAICompatibleClient(closed_port(), None, timeout=5, max_retries=0)
    try:
        with pytest.raises(errors.EngineError, match="the embeddings endpoint failed: ") as caught:
            await gone.embeddings("small", ["a"])
    finally:
        await gone.close()
    assert "Connection error." not in str(caught.value)  # the transport's own words


async def test_model_list_is_capped_and_empty_when_unreachable(endpoint: str) -> None:
    client = OpenAICompatibleClient(endpoint, None, timeout=3, max_retries=0)
    gone = OpenAICompatibleClient(closed_port(), None, timeout=3, max_retries=0)
    try:
        names = await client.model_ids(100)
        assert names == [f"m{n}" for n in range(100)]
        assert await gone.model_ids() == []
    finally:
        await client.close()
        await gone.close()
