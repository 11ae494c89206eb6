"""file_search: retrieval quality on a labelled corpus, and scale at 10,000 files in one store.

``quality``: hit@1 and hit@5 of lexical (SQLite FTS5/BM25), semantic (the embedded
all-MiniLM-L6-v2) and hybrid (reciprocal rank fusion) search, for keyword questions and for
paraphrased ones that share no content word with their answer; then the twins corpus
(``file_search_twins``: two biographies per named person), its tuning half and its held-out half,
with lexical, semantic, hybrid and hybrid+rerank search.

``scale``: 10,000 text files (``--quick``: 1,000) ingested into one store by the engine's
background ingestion (chunking, embedding, FTS5 and vector rows), then search latency, end to
end through ``VectorStores.search`` (the query's embedding included), and the vector scan alone
with numpy against sqlite-vec when that package is installed.

Both run the retrieval library in this process, without Docker: plain text needs no parser.
Run: ``sandbox-engine bench file-search-quality file-search-scale``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import Settings
from engine.files import FileStore
from engine.retrieval.embedders import Embedder, LocalMiniLM
from engine.retrieval.index import STOP_WORDS, ChunkIndex, Mode
from engine.retrieval.ingest import Ingestion
from engine.retrieval.models import SearchRequest
from engine.retrieval.search import Fusion
from engine.retrieval.service import VectorStores
from engine.store import Store

from . import common, fixtures
from .common import Report, summary
from .file_search_corpus import DOCS, IDENTIFIER, KEYWORD, PARAPHRASE
from .file_search_twins import HELD_OUT, TUNING, Half, shared_words

MODES: list[Mode] = ["lexical", "semantic", "hybrid"]
VARIANTS: list[tuple[Mode, Fusion]] = [(m, "weighted") for m in MODES] + [("hybrid", "rrf")]


@asynccontextmanager
async def library(root: Path, embedder: Embedder | None) -> AsyncIterator[VectorStores]:
    # SANDBOX_DATABASE_URL=postgresql://... measures the same on PostgreSQL.
    url = Settings().database_url
    store = Store(root / "engine.db", url)
    files = FileStore(store, root / "files", 64 << 20)
    index = ChunkIndex(root / "engine.db", url)
    ingestion = Ingestion(index, files, None, embedder, workers=2, batch=32)
    ingestion.start()
    try:
        yield VectorStores(ingestion, max_file_bytes=64 << 20)
    finally:
        await ingestion.close()
        index.close()
        store.close()


async def _ingest(stores: VectorStores, docs: dict[str, str]) -> tuple[str, dict[str, str]]:
    vs = stores.create("bench", name="bench")
    ids = {}
    for name, text in docs.items():
        obj = await stores.files.create(text.encode(), name, owner="bench")
        ids[obj.id] = name
        stores.add_file(vs.id, obj.id, "bench")
    await stores.ingestion.idle()
    return vs.id, ids


async def _quality(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with library(root, LocalMiniLM()) as stores:
        store_id, names = await _ingest(stores, DOCS)
        for label, questions in (
            ("keyword", KEYWORD),
            ("paraphrase", PARAPHRASE),
            ("identifier", IDENTIFIER),
        ):
            for mode, fusion in VARIANTS:
                hits1 = hits5 = 0
                for question, answer in questions:
                    page = await stores.search(
                        [store_id],
                        "bench",
                        SearchRequest(query=question, max_num_results=5),
                        mode=mode,
                        fusion=fusion,
                    )
                    ranked = list(dict.fromkeys(names[r.file_id] for r in page.data))
                    hits1 += ranked[:1] == [answer]
                    hits5 += answer in ranked[:5]
                n = len(questions)
                name = mode if fusion == "weighted" else f"{mode} ({fusion})"
                out.setdefault(label, {})[name] = {"hit@1": hits1 / n, "hit@5": hits5 / n, "n": n}
    return out


# (label, mode, rerank): the searches the twins benchmark compares
TWIN_SEARCHES: list[tuple[str, Mode, bool]] = [
    ("lexical", "lexical", False),
    ("semantic", "semantic", False),
    ("hybrid", "hybrid", False),
    ("hybrid+rerank", "hybrid", True),
]


async def _twins(root: Path, half: Half) -> dict[str, Any]:
    """hit@1 and hit@5 of each search on one half of the twins corpus, and the latency of each
    (``hybrid+rerank`` also with no sentence vectors stored before every query, as for a store
    ingested before they were: the reranker then embeds them, within its budget)."""
    out: dict[str, Any] = {}
    async with library(root, LocalMiniLM()) as stores:
        store_id, names = await _ingest(stores, half.docs)
        for label, mode, rerank in TWIN_SEARCHES:
            hits1 = hits5 = 0
            times: list[float] = []
            for question, answer in half.questions:
                t = time.perf_counter()
                page = await stores.search(
                    [store_id],
                    "bench",
                    SearchRequest(query=question, max_num_results=5),
                    mode=mode,
                    rerank=rerank,
                )
                times.append(time.perf_counter() - t)
                ranked = list(dict.fromkeys(names[r.file_id] for r in page.data))
                hits1 += ranked[:1] == [answer]
                hits5 += answer in ranked[:5]
            n = len(half.questions)
            out[label] = {"hit@1": hits1 / n, "hit@5": hits5 / n, "n": n, "latency": summary(times)}
        out["sentence_vectors"] = _sentence_bytes(stores.index)
        cold: list[float] = []
        for question, _ in half.questions[:40]:
            stores.index.execute("DELETE FROM vs_sentence_vectors")  # a store ingested before them
            t = time.perf_counter()
            await stores.search([store_id], "bench", SearchRequest(query=question))
            cold.append(time.perf_counter() - t)
        out["hybrid+rerank"]["latency_none_stored"] = summary(cold)
    return out


def _sentence_bytes(index: ChunkIndex) -> dict[str, float]:
    """What the stored sentence vectors take: rows, vector bytes, the pages of their tables
    and indexes on disk, and each per chunk and per file."""
    row = index.one(
        "SELECT COUNT(*) AS sentences, COALESCE(SUM(LENGTH(vector)), 0) AS bytes, "
        "(SELECT COUNT(*) FROM vs_chunks) AS chunks, "
        "(SELECT COUNT(DISTINCT vector_store_id || ' ' || file_id) FROM vs_chunks) AS files "
        "FROM vs_sentence_vectors"
    )
    pages = (
        index.one(  # on PostgreSQL, its own relation sizes
            "SELECT pg_total_relation_size('vs_sentence_vectors') "
            "+ pg_total_relation_size('vs_sentence_sets') AS n"
        )
        if Settings().database_url
        else index.one(
            "SELECT SUM(pgsize) AS n FROM dbstat WHERE name IN "
            "('vs_sentence_vectors', 'vs_sentence_vectors_key', 'vs_sentence_sets', "
            "'sqlite_autoindex_vs_sentence_sets_1')"
        )
    )
    assert row is not None and pages is not None
    chunks, files, disk = max(1, row["chunks"]), max(1, row["files"]), pages["n"] or 0
    return {
        "chunks": row["chunks"],
        "files": row["files"],
        "sentences": row["sentences"],
        "blob_bytes": row["bytes"],
        "table_bytes": disk,
        "sentences_per_chunk": row["sentences"] / chunks,
        "blob_bytes_per_chunk": row["bytes"] / chunks,
        "table_bytes_per_chunk": disk / chunks,
        "table_bytes_per_file": disk / files,
    }


@common.entry
def quality(args: argparse.Namespace) -> int:
    with fixtures.temp_dir("file-search-quality") as tmp:
        results = asyncio.run(_quality(tmp))
    twins: dict[str, Any] = {}
    for label, half in (("tuning", TUNING), ("held_out", HELD_OUT)):
        with fixtures.temp_dir(f"file-search-twins-{label}") as tmp:
            twins[label] = asyncio.run(_twins(tmp, half))
    rows = [
        (label, mode, f"{r['hit@1']:.2f}", f"{r['hit@5']:.2f}", r["n"])
        for label, modes in results.items()
        for mode, r in modes.items()
    ]
    common.table(
        f"file_search quality: {len(DOCS)} documents, all-MiniLM-L6-v2 (numpy), BM25",
        ["questions", "search", "hit@1", "hit@5", "n"],
        rows,
    )
    common.table(
        f"file_search on twin biographies: {len(TUNING.questions)} + {len(HELD_OUT.questions)} "
        "questions (tuning half / held-out half), 20 candidates reranked",
        ["half", "search", "hit@1", "hit@5", "p50 ms", "n"],
        [
            (
                half,
                label,
                f"{r['hit@1']:.2f}",
                f"{r['hit@5']:.2f}",
                f"{r['latency']['p50_ms']:.1f}",
                r["n"],
            )
            for half, rows in twins.items()
            for label, r in rows.items()
            if "hit@1" in r
        ],
    )
    report = Report("file_search_quality", "file_search retrieval quality (labelled corpora)")
    report.data["results"] = results
    report.data["twins"] = twins
    report.data["twins_questions_sharing_a_word"] = [
        q
        for half in (TUNING, HELD_OUT)
        for q, answer in half.questions
        if shared_words(q, half.docs[answer], half.names[answer])
    ]
    held = twins["held_out"]["hybrid+rerank"]
    report.target("twins held-out hit@1, hybrid+rerank", held["hit@1"], 0.9, at_least=True)
    report.target("twins search p50, hybrid+rerank", held["latency"]["p50_ms"], 100, " ms")
    report.target(
        "twins search p50, hybrid+rerank, no sentence vectors stored before each query",
        held["latency_none_stored"]["p50_ms"],
        100,
        " ms",
    )
    for label in ("keyword", "paraphrase", "identifier"):
        value = results[label]["hybrid"]["hit@1"]
        report.target(f"hybrid hit@1, {label} questions", value, 0.9, at_least=True)
    shared = [q for q, answer in PARAPHRASE if _stems(q) & _stems(DOCS[answer])]
    report.data["paraphrases_sharing_a_word"] = shared
    report.notes.append(
        f"{len(PARAPHRASE) - len(shared)} of {len(PARAPHRASE)} paraphrased questions share no "
        "content word (stop words aside, crudely stemmed) with their answer"
    )
    return common.finish(report, args)


def _stems(text: str) -> set[str]:
    words = (w for w in re.findall(r"\w+", text.lower()) if w not in STOP_WORDS)
    return {re.sub(r"(ing|ed|es|s)$", "", w)[:5] for w in words}


# --- scale ---


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


def _documents(n: int) -> dict[str, str]:
    rng = random.Random(7)
    vocab = _vocabulary(rng, 5000)
    docs = {}
    for i in range(n):
        words = [rng.choice(vocab) for _ in range(rng.randint(15, 30))]
        docs[f"doc{i:05d}.txt"] = f"Record {i}. " + " ".join(words) + "."
    return docs


async def _scale(root: Path, n: int, queries: int) -> dict[str, Any]:
    docs = _documents(n)
    embedder = LocalMiniLM()
    await embedder.embed(["warm up"])
    async with library(root, embedder) as stores:
        started = time.perf_counter()
        store_id, _ = await _ingest(stores, docs)
        ingest_s = time.perf_counter() - started
        info = stores.retrieve(store_id, "bench")
        chunks = stores.index.one("SELECT COUNT(*) AS n FROM vs_chunks")
        rng = random.Random(3)
        texts = list(docs.values())
        asks = [" ".join(rng.sample(rng.choice(texts).split()[2:], 3)) for _ in range(queries)]
        sentences = _sentence_bytes(stores.index)
        for ask in asks[:5]:  # loads the store's vector matrix once
            await stores.search([store_id], "bench", SearchRequest(query=ask))
        searches: list[tuple[str, Mode, bool]] = [(m, m, False) for m in MODES]
        searches.append(("hybrid+rerank", "hybrid", True))
        latency: dict[str, list[float]] = {label: [] for label, _, _ in searches}
        for ask in asks:
            for label, mode, rerank in searches:
                t = time.perf_counter()
                await stores.search(
                    [store_id], "bench", SearchRequest(query=ask), mode=mode, rerank=rerank
                )
                latency[label].append(time.perf_counter() - t)
        lazy: list[float] = []
        for ask in asks[:20]:
            stores.index.execute("DELETE FROM vs_sentence_vectors")  # a store ingested before them
            t = time.perf_counter()
            await stores.search([store_id], "bench", SearchRequest(query=ask))
            lazy.append(time.perf_counter() - t)
        latency["hybrid+rerank, none stored"] = lazy
        scan = _vector_scan(stores, store_id, embedder.name)
    return {
        "sentence_vectors": sentences,
        "files": n,
        "chunks": chunks["n"] if chunks else 0,
        "ingest_s": ingest_s,
        "files_per_s": n / ingest_s,
        "usage_bytes": info.usage_bytes,
        "completed": info.file_counts.completed,
        "search": {m: summary(v) for m, v in latency.items()},
        "vector_scan": scan,
    }


def _vector_scan(stores: VectorStores, store_id: str, embedder: str) -> dict[str, Any]:
    """The semantic scan alone: numpy over the cached matrix, and sqlite-vec if installed."""
    matrix = stores.index._matrix(store_id, embedder).matrix
    query = matrix[0]
    times = []
    for _ in range(50):
        t = time.perf_counter()
        scores = matrix @ query
        np.argpartition(-scores, 50)[:50]
        times.append(time.perf_counter() - t)
    out: dict[str, Any] = {"numpy": summary(times), "rows": int(matrix.shape[0])}
    out["sqlite_vec"] = _sqlite_vec_scan(matrix)
    return out


SQLITE_VEC_SCAN = r"""
import sqlite3, sys, time
path, extension, dims = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(path, "rb").read()
size = dims * 4
db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(extension)
db.execute("CREATE VIRTUAL TABLE v USING vec0(e float[%d])" % dims)
rows = [(i, raw[i * size:(i + 1) * size]) for i in range(len(raw) // size)]
db.executemany("INSERT INTO v (rowid, e) VALUES (?, ?)", rows)
query = rows[0][1]
for _ in range(50):
    t = time.perf_counter()
    db.execute("SELECT rowid FROM v WHERE e MATCH ? AND k = 50", (query,)).fetchall()
    print(time.perf_counter() - t)
"""


def _sqlite_vec_scan(matrix: np.ndarray[Any, Any]) -> Any:
    """sqlite-vec's exact KNN (vec0) over the same vectors, when the package is installed. Run
    by a Python whose sqlite3 may load extensions (pyenv's builds often may not)."""
    try:
        import sqlite_vec  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "not installed"
    import shutil
    import sqlite3
    import subprocess
    import sys
    import tempfile

    python = sys.executable
    if not hasattr(sqlite3.connect(":memory:"), "enable_load_extension"):
        python = shutil.which("python3", path="/usr/bin") or ""
        if not python:
            return "no Python here whose sqlite3 loads extensions"
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        f.write(np.ascontiguousarray(matrix, dtype=np.float32).tobytes())
        f.flush()
        done = subprocess.run(
            [
                python,
                "-c",
                SQLITE_VEC_SCAN,
                f.name,
                sqlite_vec.loadable_path(),
                str(matrix.shape[1]),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode != 0:
        return f"failed: {done.stderr.strip()[-300:]}"
    return summary([float(x) for x in done.stdout.split()])


@common.entry
def scale(args: argparse.Namespace) -> int:
    n = 1000 if common.quick(args) else 10_000
    with fixtures.temp_dir("file-search-scale") as tmp:
        r = asyncio.run(_scale(tmp, n, 50 if common.quick(args) else 200))
        r["index_bytes_per_file"] = sum(p.stat().st_size for p in tmp.glob("engine.db*")) / n
    common.table(
        f"file_search at {r['files']} files in one store ({r['chunks']} chunks)",
        ["measure", "value"],
        [
            ("ingest time", f"{r['ingest_s']:.0f} s ({r['files_per_s']:.1f} files/s)"),
            ("index on disk per file", f"{r['index_bytes_per_file'] / 1024:.1f} KiB"),
            (
                "sentence vectors per chunk",
                f"{r['sentence_vectors']['sentences_per_chunk']:.1f} "
                f"({r['sentence_vectors']['table_bytes_per_chunk'] / 1024:.1f} KiB on disk)",
            ),
            (
                "sentence vectors per file",
                f"{r['sentence_vectors']['table_bytes_per_file'] / 1024:.1f} KiB on disk",
            ),
            *[
                (f"search {m} p50 / p99", f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f} ms")
                for m, s in r["search"].items()
            ],
            ("vector scan numpy p50", f"{r['vector_scan']['numpy']['p50_ms']:.2f} ms"),
            ("vector scan sqlite-vec p50", _p50(r["vector_scan"]["sqlite_vec"])),
        ],
    )
    report = Report("file_search_scale", f"file_search at {n} files in one store")
    report.data.update(r)
    report.target("hybrid search p50", r["search"]["hybrid"]["p50_ms"], 50, " ms")
    report.target("hybrid+rerank search p50", r["search"]["hybrid+rerank"]["p50_ms"], 100, " ms")
    return common.finish(report, args)


def _p50(value: Any) -> str:
    return f"{value['p50_ms']:.2f} ms" if isinstance(value, dict) else str(value)
