"""Search over one or more vector stores: each query lexically and semantically, fused, then
the best candidates reranked; the filters of a request applied, and its hits given their files'
names and attributes."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Literal

import numpy as np

from .. import errors
from ..store import DatabaseError
from .chunking import sentences
from .embedders import Embedder
from .index import STOP_WORDS, TERMS, ChunkIndex, Hit, Mode, fuse, sentence_digest
from .minilm import Matrix
from .models import (
    Filter,
    RankingOptions,
    SearchPage,
    SearchRequest,
    SearchResult,
    TextContent,
    loads_or,
)

CANDIDATES = 50
LEXICAL_WEIGHT = 0.2
RERANK_CANDIDATES = 20
RERANK_WEIGHT = 1.0
RERANK_NEW_CHARS = 1_200
RERANK_MARGIN = 0.15
Fusion = Literal["weighted", "rrf"]
log = logging.getLogger("engine.retrieval")
_QUESTION = re.compile(
    r"^(please\s+)?(can you\s+|could you\s+)?(tell me\s+|show me\s+|find\s+|search for\s+)?",
    re.IGNORECASE,
)


def rewrite(query: str) -> str:
    """``rewrite_query``: the question as search terms (no model call: words only), e.g.
    "Can you tell me what the refund policy is?" -> "refund policy"."""
    text = _QUESTION.sub("", query.strip()).rstrip("?!. ")
    words = [w for w in re.findall(r"[\w'-]+", text) if w.lower() not in STOP_WORDS]
    return " ".join(words) or query.strip()


async def search_page(
    index: ChunkIndex,
    embedder: Embedder | None,
    store_ids: list[str],
    request: SearchRequest,
    *,
    mode: Mode = "hybrid",
    fusion: Fusion = "weighted",
    rerank: bool = True,
) -> SearchPage:
    """A search request over ``store_ids`` (checked usable by the caller), answered."""
    queries = request.queries()
    if request.rewrite_query:
        queries = [rewrite(q) for q in queries]
    allowed: dict[str, set[str] | None] = {s: None for s in store_ids}
    if request.filters is not None:  # only then are every file's attributes read
        for store_id in store_ids:
            rows = index.rows.completed_attributes(store_id)
            attrs = {file_id: loads_or(a) for file_id, a in rows.items()}
            allowed[store_id] = allowed_files(attrs, request.filters)
    hits = await search_stores(
        index,
        embedder,
        store_ids,
        queries,
        limit=request.max_num_results,
        allowed=allowed,
        ranking=request.ranking_options,
        mode=mode,
        fusion=fusion,
        rerank=rerank,
    )
    names = _names(index, {(store, hit.file_id) for store, hit in hits})
    data = []
    for store_id, hit in hits:
        filename, attributes = names.get((store_id, hit.file_id), ("", None))
        data.append(
            SearchResult(
                file_id=hit.file_id,
                filename=filename,
                score=round(hit.score, 6),
                attributes=attributes,
                content=[TextContent(text=hit.text)],
            )
        )
    return SearchPage(search_query=queries, data=data)


def _names(index: ChunkIndex, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Any]]:
    """The filename and attributes of each (store, file) of a page of results."""
    out = {}
    for store_id, file_id in keys:
        row = index.rows.file(store_id, file_id)
        if row is not None:
            out[(store_id, file_id)] = (row["filename"], loads_or(row["attributes"]))
    return out


async def search_stores(
    index: ChunkIndex,
    embedder: Embedder | None,
    store_ids: list[str],
    queries: list[str],
    *,
    limit: int,
    allowed: dict[str, set[str] | None],
    ranking: RankingOptions | None = None,
    mode: Mode = "hybrid",
    fusion: Fusion = "weighted",
    rerank: bool = True,
) -> list[tuple[str, Hit]]:
    """The best ``limit`` chunks of ``store_ids`` for ``queries``, as (store id, hit), best
    first; a chunk found by several queries keeps its best score. ``allowed`` holds, per store,
    the files a filter lets through (None: all).

    Hybrid fusion: ``weighted`` (the default, chosen by the quality benchmark) scores each
    candidate of either ranking by its cosine plus ``LEXICAL_WEIGHT`` times its BM25 relative to
    the query's best; ``rrf`` is reciprocal rank fusion of the two rankings. Hybrid search then
    reranks its best candidates (``_reranked``) unless ``rerank`` is off or ``ranking.ranker``
    is ``none`` (cosine only, not reranked).
    """
    ranking = ranking or RankingOptions()
    if embedder is None or (ranking.ranker == "none" and mode == "hybrid"):
        mode = "lexical" if embedder is None else "semantic"
    vectors = None
    if mode != "lexical" and embedder is not None:
        vectors = await embedder.embed(queries)
    per_query: list[list[tuple[str, Hit]]] = [[] for _ in queries]

    def run() -> None:
        for n, query in enumerate(queries):
            for store in store_ids:
                lexical = semantic = None
                if mode != "semantic":
                    lexical = index.lexical(store, query, CANDIDATES, allowed[store])
                if vectors is not None and embedder is not None:
                    semantic = index.semantic(
                        store, embedder.name, vectors[n], CANDIDATES, allowed[store]
                    )
                if lexical is None or semantic is None:
                    hits = [_scaled(h, mode) for h in lexical or semantic or []]
                elif fusion == "rrf":
                    hits = fuse([lexical, semantic], CANDIDATES)
                else:
                    assert vectors is not None and embedder is not None
                    cosines = index.cosines(
                        store, embedder.name, vectors[n], [h.chunk_id for h in lexical]
                    )
                    hits = _weighted(lexical, semantic, cosines)
                per_query[n].extend((store, h) for h in hits)

    await asyncio.to_thread(run)
    if rerank and mode == "hybrid" and embedder is not None and ranking.ranker != "none":
        for n, query in enumerate(queries):
            assert vectors is not None
            per_query[n] = await _reranked(index, embedder, query, vectors[n], per_query[n])
    best: dict[int, tuple[str, Hit]] = {}
    for store, hit in (pair for pairs in per_query for pair in pairs):
        if hit.chunk_id not in best or best[hit.chunk_id][1].score < hit.score:
            best[hit.chunk_id] = (store, hit)
    ordered = sorted(best.values(), key=lambda p: -p[1].score)[:limit]
    return [(s, h) for s, h in ordered if h.score >= ranking.score_threshold]


def discriminating_query(query: str, texts: list[str]) -> str:
    """The query without the words that two or more candidates contain (a shared name, say):
    they cannot tell those candidates apart. The whole query when nothing else is left."""
    found = [set(TERMS.findall(t.lower())) for t in texts]
    kept, dropped = [], False
    for word in query.split():
        terms = TERMS.findall(word.lower())
        if terms and all(sum(t in f for f in found) >= 2 for t in terms):
            dropped = True
            continue
        kept.append(word)
    content = [w for w in TERMS.findall(" ".join(kept).lower()) if w not in STOP_WORDS]
    return " ".join(kept) if dropped and content else query


async def _reranked(
    index: ChunkIndex,
    embedder: Embedder,
    query: str,
    vector: Matrix,
    candidates: list[tuple[str, Hit]],
) -> list[tuple[str, Hit]]:
    """The best ``RERANK_CANDIDATES`` that score within ``RERANK_MARGIN`` of the first,
    rescored by how close the query, less the words they share, comes to their closest
    sentence; the others keep their place below them. The margin bounds the work on queries
    whose first candidate is clear; it was chosen on the tuning half of the twins benchmark,
    where the right document was never more than 0.113 behind the first before reranking.

    A whole chunk's embedding is dominated by what its chunks have in common (a person's name
    in two biographies of two people so named); one sentence carries one fact. The sentences'
    vectors are made at ingestion and read from the index. A chunk ingested before they were
    (or by another embedder) has its sentences embedded here and stored for the next query, at
    most ``RERANK_NEW_CHARS`` characters of them per query (about 300 tokens of English): fewer
    candidates are reranked when such chunks would exceed it (never fewer than two).
    """
    ordered = sorted(candidates, key=lambda p: -p[1].score)
    window = [
        (store, hit)
        for store, hit in ordered[:RERANK_CANDIDATES]
        if hit.score >= ordered[0][1].score - RERANK_MARGIN
    ]
    if len(window) < 2:
        return ordered
    split = [[(s, sentence_digest(s)) for s in sentences(hit.text)] for _, hit in window]
    stored = await asyncio.to_thread(_stored_sentences, index, embedder.name, window, split)
    size, cost = 0, 0
    new: dict[_Key, str] = {}
    for (store, hit), pieces in zip(window, split, strict=True):
        keys = {(store, hit.file_id, d): s for s, d in pieces}
        missing = {k: s for k, s in keys.items() if k not in stored and k not in new}
        cost += sum(len(s) + 1 for s in missing.values())  # with the space that parted them
        if size >= 2 and cost > RERANK_NEW_CHARS:
            break
        new.update(missing)
        size += 1
    head, tail = window[:size], ordered[size:]
    # Shared words are looked for among all the candidates, reranked or not: that costs no model.
    focused = discriminating_query(query, [h.text for _, h in ordered[:RERANK_CANDIDATES]])
    texts = ([focused] if focused != query else []) + list(new.values())
    if texts:
        embedded = await embedder.embed(texts)
        if focused != query:
            vector, embedded = embedded[0], embedded[1:]
        stored.update(zip(new, embedded, strict=True))
        if new:
            made = [(s, h, p) for (s, h), p in zip(head, split, strict=False) if _has(s, h, p, new)]
            await asyncio.to_thread(_keep_sentences, index, embedder.name, made, stored)
    rescored = []
    for (store, hit), pieces in zip(head, split, strict=False):
        matrix = np.stack([stored[(store, hit.file_id, d)] for _, d in pieces])
        sim = float(np.max(matrix @ vector))
        value = (hit.score + RERANK_WEIGHT * max(sim, 0.0)) / (1 + RERANK_WEIGHT)
        rescored.append((store, Hit(hit.chunk_id, hit.file_id, hit.text, min(1.0, value))))
    floor = min(h.score for _, h in rescored)
    rest = [(s, Hit(h.chunk_id, h.file_id, h.text, min(h.score, floor))) for s, h in tail]
    return sorted(rescored, key=lambda p: -p[1].score) + rest


_Key = tuple[str, str, bytes]  # (store, file, sentence digest)
_Pieces = list[tuple[str, bytes]]  # a chunk's sentences and their digests


def _has(store: str, hit: Hit, pieces: _Pieces, keys: dict[_Key, str]) -> bool:
    return any((store, hit.file_id, d) in keys for _, d in pieces)


def _stored_sentences(
    index: ChunkIndex, embedder: str, chunks: list[tuple[str, Hit]], split: list[_Pieces]
) -> dict[_Key, Matrix]:
    """The stored vectors of these chunks' sentences, read file by file of each store."""
    by_file: dict[tuple[str, str], set[bytes]] = {}
    for (store, hit), pieces in zip(chunks, split, strict=True):
        by_file.setdefault((store, hit.file_id), set()).update(d for _, d in pieces)
    return {
        (store, file_id, digest): vector
        for (store, file_id), digests in by_file.items()
        for digest, vector in index.sentence_vectors(
            store, file_id, embedder, sorted(digests)
        ).items()
    }


def _keep_sentences(
    index: ChunkIndex,
    embedder: str,
    chunks: list[tuple[str, Hit, _Pieces]],
    vectors: dict[_Key, Matrix],
) -> None:
    """Store the sentence vectors a query had to make; a search never fails for want of disk."""
    by_store: dict[str, list[tuple[int, str, dict[bytes, Matrix]]]] = {}
    for store, hit, pieces in chunks:
        own = {d: vectors[(store, hit.file_id, d)] for _, d in pieces}
        by_store.setdefault(store, []).append((hit.chunk_id, hit.text, own))
    try:
        for store, rows in by_store.items():
            index.keep_sentence_vectors(store, embedder, rows)
    except (errors.StorageFull, DatabaseError) as exc:
        log.warning("sentence vectors not stored: %s", exc)


def _weighted(lexical: list[Hit], semantic: list[Hit], cosines: dict[int, float]) -> list[Hit]:
    """Cosine plus a share of relative BM25, scaled to [0, 1]. A word match alone (a rare
    word in a passage about something else) cannot outrank a passage close in meaning."""
    top = max((h.score for h in lexical), default=0.0)
    lex = {h.chunk_id: (h.score / top if top > 0 else 0.0) for h in lexical}
    cos = {h.chunk_id: h.score for h in semantic} | cosines
    texts = {h.chunk_id: h for h in [*semantic, *lexical]}
    out = []
    for chunk_id, hit in texts.items():
        value = max(cos.get(chunk_id, 0.0), 0.0) + LEXICAL_WEIGHT * lex.get(chunk_id, 0.0)
        out.append(Hit(chunk_id, hit.file_id, hit.text, min(1.0, value / (1 + LEXICAL_WEIGHT))))
    return out


def _scaled(hit: Hit, mode: Mode) -> Hit:
    """Scores in [0, 1]: a cosine as it is (clipped), BM25 squashed by s / (s + 5)."""
    if mode == "semantic":
        score = float(np.clip(hit.score, 0.0, 1.0))
    else:
        score = hit.score / (hit.score + 5.0) if hit.score > 0 else 0.0
    return Hit(hit.chunk_id, hit.file_id, hit.text, score)


def allowed_files(
    attributes: dict[str, dict[str, object] | None], flt: Filter | None
) -> set[str] | None:
    from .filters import matches

    if flt is None:
        return None
    return {f for f, attrs in attributes.items() if matches(flt, attrs)}  # type: ignore[arg-type]
