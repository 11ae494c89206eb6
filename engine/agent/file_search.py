"""The ``file_search`` tool, run by the engine: the model's queries go to the vector stores of
the run (several queries of one call run concurrently), the results go back to the model
numbered, and the model's citation marks (``【n†filename】``) become ``file_citation``
annotations. Shared by Assistants runs and Responses."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..retrieval import VectorStores
from ..retrieval.models import Filter, RankingOptions, SearchRequest, SearchResult
from .loop import ToolHandler
from .tool_text import FILE_SEARCH

MAX_QUERIES = 5
CITATION = re.compile(r"【(\d+)(?::\d+)?†([^】]{0,300})】")
SPEC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": FILE_SEARCH,
        "description": (
            "Search the user's uploaded files (hybrid keyword and semantic search). Give one "
            "or more short search queries; several queries run in parallel. Returns numbered "
            "passages; cite a passage you use as 【<source>†<filename>】."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Search queries, each a few key words or a question.",
                }
            },
            "required": ["queries"],
        },
    },
}


@dataclass
class SearchCall:
    queries: list[str]
    results: list[SearchResult]
    error: str | None = None


@dataclass
class Citation:
    text: str
    start_index: int
    end_index: int
    file_id: str
    filename: str


@dataclass
class FileSearchHandler(ToolHandler):
    stores: VectorStores
    owner: str | None
    store_ids: list[str]
    max_num_results: int = 20
    ranking_options: RankingOptions | None = None
    filters: Filter | None = None
    calls: list[SearchCall] = field(default_factory=list)
    sources: list[SearchResult] = field(default_factory=list)
    """Every passage shown to the model, numbered from 1 in the order shown."""

    @property
    def spec(self) -> dict[str, Any]:
        return SPEC

    async def call(self, arguments: str) -> str:
        queries = queries_of(arguments)
        if not queries:
            self.calls.append(SearchCall([], [], "no query"))
            return json.dumps({"error": "give `queries`: a list of search strings"})
        try:
            pages = await asyncio.gather(*(self._search(q) for q in queries))
        except errors.EngineError as exc:
            self.calls.append(SearchCall(queries, [], str(exc)))
            return json.dumps({"error": str(exc)})
        best: dict[tuple[str, str], SearchResult] = {}
        for page in pages:
            for result in page:
                key = (result.file_id, result.content[0].text if result.content else "")
                if key not in best or best[key].score < result.score:
                    best[key] = result
        results = sorted(best.values(), key=lambda r: -r.score)[: self.max_num_results]
        self.calls.append(SearchCall(queries, results))
        shown = []
        for result in results:
            self.sources.append(result)
            shown.append(
                {
                    "source": len(self.sources),
                    "filename": result.filename,
                    "file_id": result.file_id,
                    "score": result.score,
                    "text": "\n".join(c.text for c in result.content),
                }
            )
        return json.dumps({"results": shown})

    async def _search(self, query: str) -> list[SearchResult]:
        request = SearchRequest(
            query=query,
            max_num_results=self.max_num_results,
            ranking_options=self.ranking_options,
            filters=self.filters,
        )
        page = await self.stores.search(self.store_ids, self.owner, request)
        return page.data

    def citations(self, text: str) -> list[Citation]:
        """The model's citation marks that name a passage it was shown."""
        found = []
        for match in CITATION.finditer(text):
            n = int(match.group(1))
            if 1 <= n <= len(self.sources):
                source = self.sources[n - 1]
                found.append(
                    Citation(
                        match.group(0), match.start(), match.end(), source.file_id, source.filename
                    )
                )
        return found


def queries_of(arguments: str) -> list[str]:
    """The queries of a file_search call: ``queries`` (or ``query``), a list or a string."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return [arguments.strip()] if arguments.strip() else []
    raw: Any = parsed.get("queries", parsed.get("query")) if isinstance(parsed, dict) else parsed
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    return [q.strip()[:4096] for q in raw if isinstance(q, str) and q.strip()][:MAX_QUERIES]
