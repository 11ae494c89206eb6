"""Retrieval's lexical index on PostgreSQL: each chunk's words as a ``tsvector`` (English
stemming, as SQLite's porter tokenizer) under a GIN index, ranked by BM25 computed in SQL
(k1 = 1.2, b = 0.75, SQLite FTS5's), over the chunks of one store.

Text and queries are split into words here, as FTS5's unicode61 tokenizer splits them (letters
and digits; diacritics removed), before PostgreSQL stems them: its own parser would keep
``ZX-4411`` as ``zx`` and ``-4411``, and ``4.18.2`` whole, which a query for those words misses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .database import Database, Transaction

WORDS = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """The words of ``text``, without their diacritics."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return WORDS.findall(bare)


SCHEMA = """
ALTER TABLE vs_chunks ADD COLUMN IF NOT EXISTS words tsvector;
ALTER TABLE vs_chunks ADD COLUMN IF NOT EXISTS tokens INTEGER;
CREATE INDEX IF NOT EXISTS vs_chunks_words ON vs_chunks USING GIN (words);
"""

# BM25 as FTS5 computes it: idf = ln((N - df + 0.5) / (df + 0.5)), floored at a small
# positive number as FTS5 floors it; tf from the lexeme's positions; length in tokens.
SEARCH = """
WITH q AS (
    SELECT DISTINCT u.lexeme FROM unnest(to_tsvector('english', :words)) AS u
), query AS (
    SELECT CAST(string_agg(quote_literal(lexeme), ' | ') AS tsquery) AS tsq FROM q
), docs AS (
    SELECT COUNT(*) AS n, COALESCE(AVG(tokens), 1) AS avgdl FROM vs_chunks
    WHERE vector_store_id = :store
), df AS (
    SELECT q.lexeme, (
        SELECT COUNT(*) FROM vs_chunks c WHERE c.vector_store_id = :store
        AND c.words @@ CAST(quote_literal(q.lexeme) AS tsquery)
    ) AS df FROM q
), hits AS (
    SELECT c.id, c.file_id, c.text, c.tokens, c.words FROM vs_chunks c, query
    WHERE c.vector_store_id = :store AND c.words @@ query.tsq {allowed}
)
SELECT h.id, h.file_id, h.text, SUM(
    GREATEST(LN((docs.n - df.df + 0.5) / (df.df + 0.5)), 1e-6)
    * (tf.f * 2.2) / (tf.f + 1.2 * (0.25 + 0.75 * h.tokens / GREATEST(docs.avgdl, 1)))
) AS score
FROM hits h CROSS JOIN docs
JOIN LATERAL (
    SELECT u.lexeme, COALESCE(array_length(u.positions, 1), 1) AS f FROM unnest(h.words) AS u
) AS tf ON TRUE
JOIN df ON df.lexeme = tf.lexeme
GROUP BY h.id, h.file_id, h.text
ORDER BY score DESC, h.id LIMIT :limit
"""


class TsVectorIndex:
    """The chunks' words in a ``tsvector`` column of ``vs_chunks`` (see the module)."""

    def create(self, db: Database) -> None:
        db.script(SCHEMA)

    def add(self, db: Transaction, chunk_id: int, text: str, store_id: str) -> None:
        db.execute(
            "UPDATE vs_chunks SET words = to_tsvector('english', ?), tokens = ? WHERE id = ?",
            (" ".join(found := words(text)), len(found), chunk_id),
        )

    def remove(self, db: Transaction, store_id: str, file_id: str) -> None:
        """Nothing to do: the words go with their chunks' rows."""

    def search(
        self,
        db: Database,
        store_id: str,
        terms: Sequence[str],
        limit: int,
        allowed: set[str] | None,
    ) -> list[tuple[int, str, str, float]]:
        params: dict[str, object] = {
            "words": " ".join(dict.fromkeys(w for t in terms for w in words(t))),
            "store": store_id,
            "limit": limit,
        }
        where = ""
        if allowed is not None:
            where = "AND c.file_id = ANY(:allowed)"
            params["allowed"] = sorted(allowed)
        rows = db.all(SEARCH.format(allowed=where), params)
        return [(r["id"], r["file_id"], r["text"], float(r["score"])) for r in rows]
