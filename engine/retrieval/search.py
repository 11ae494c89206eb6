"""Search over one or more vector stores: each query lexically and semantically, fused."""

from __future__ import annotations

import asyncio
import re

import numpy as np

from .embedders import Embedder
from .index import STOP_WORDS, ChunkIndex, Hit, Mode, fuse
from .models import Filter, RankingOptions

CANDIDATES = 50
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
) -> list[tuple[str, Hit]]:
    """The best ``limit`` chunks of ``store_ids`` for ``queries`` (each fused with the others),
    as (store id, hit), best first. ``allowed`` holds, per store, the files a filter lets
    through (None: all)."""
    ranking = ranking or RankingOptions()
    if embedder is None or (ranking.ranker == "none" and mode == "hybrid"):
        mode = "lexical" if embedder is None else "semantic"
    vectors = None
    if mode != "lexical" and embedder is not None:
        vectors = await embedder.embed(queries)
    rankings: list[list[tuple[str, Hit]]] = []

    def run() -> None:
        for n, query in enumerate(queries):
            for store in store_ids:
                if mode != "semantic":
                    rankings.append(
                        [
                            (store, h)
                            for h in index.lexical(store, query, CANDIDATES, allowed[store])
                        ]
                    )
                if vectors is not None and embedder is not None:
                    hits = index.semantic(
                        store, embedder.name, vectors[n], CANDIDATES, allowed[store]
                    )
                    rankings.append([(store, h) for h in hits])

    await asyncio.to_thread(run)
    if mode == "semantic" or (mode == "lexical" and len(rankings) == 1):
        merged = sorted((p for r in rankings for p in r), key=lambda p: -p[1].score)
        unique = {p[1].chunk_id: p for p in reversed(merged)}  # the best of each chunk stays
        ordered = sorted(unique.values(), key=lambda p: -p[1].score)
        out = [(s, _scaled(h, mode)) for s, h in ordered[:limit]]
    else:
        store_of = {h.chunk_id: s for r in rankings for s, h in r}
        fused = fuse([[h for _, h in r] for r in rankings if r], limit)
        out = [(store_of[h.chunk_id], h) for h in fused]
    return [(s, h) for s, h in out if h.score >= ranking.score_threshold]


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
