"""Vector stores and file search: ingestion (documents parsed inside a sandbox), token chunks,
a lexical (SQLite FTS5/BM25) and a semantic (embeddings) index, hybrid search."""

from __future__ import annotations

import logging
from typing import Any

from ..config import MB, Settings
from ..runtime import Runtime
from ..sessions import sandbox_spec
from .embedders import (
    Embedder,
    LocalMiniLM,
    OpenAIEmbeddings,
    default_embedder,
    embedded_model_problem,
)
from .extract import DocumentParser
from .index import ChunkIndex
from .ingest import Ingestion
from .models import SearchPage, SearchRequest, VectorStore, VectorStoreFile
from .service import StoreExpired, StoreNotFound, VectorStores

log = logging.getLogger(__name__)

__all__ = [
    "Embedder",
    "FileSearch",
    "LocalMiniLM",
    "OpenAIEmbeddings",
    "SearchPage",
    "SearchRequest",
    "StoreExpired",
    "StoreNotFound",
    "VectorStore",
    "VectorStoreFile",
    "VectorStores",
    "embedder_status",
]


def embedder_status(settings: Settings, embedder: Embedder | None = None) -> dict[str, Any]:
    """Which embedder file search uses (``embedder`` if one is given, else the one these settings
    choose), and why search is keyword-only when none: for the logs, ``doctor`` and the API."""
    if embedder is not None:
        return {"embedder": embedder.name, "semantic": True, "reason": None}
    if settings.file_search_embedder == "none":
        reason = "SANDBOX_FILE_SEARCH_EMBEDDER is none"
    elif settings.embeddings_base_url:
        name = f"{settings.embeddings_base_url.rstrip('/')}#{settings.embeddings_model}"
        return {"embedder": name, "semantic": True, "reason": None}
    else:
        problem = embedded_model_problem()
        if problem is None:
            return {"embedder": LocalMiniLM.name, "semantic": True, "reason": None}
        reason = problem
    return {"embedder": None, "semantic": False, "reason": reason}


class FileSearch:
    """Everything file search needs, built over a started ``Runtime``: ``start()``, ``close()``."""

    def __init__(
        self,
        engine: Runtime,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        """``quiet``: a throwaway engine's, which does not log how search runs."""
        settings = settings or engine.settings
        self.index = ChunkIndex(settings.data_dir / "engine.db", settings.database_url)
        if embedder is None and settings.file_search_embedder != "none":
            embedder = default_embedder(
                settings.embeddings_base_url, settings.embeddings_api_key, settings.embeddings_model
            )
        self.embedder = embedder
        self.status = embedder_status(settings, embedder)
        if embedder is None and not quiet:
            log.warning(
                "file_search is keyword-only (no semantic search): %s", self.status["reason"]
            )
        spec = sandbox_spec(settings, engine.image, engine.labels)
        self.parser = DocumentParser(
            engine.backend,
            spec,
            timeout=settings.file_search_parse_timeout,
            max_chars=settings.file_search_max_chars,
            parallel=settings.file_search_workers,
        )
        self.ingestion = Ingestion(
            self.index,
            engine.files,
            self.parser,
            embedder,
            workers=settings.file_search_workers,
            batch=32,
            max_chars=settings.file_search_max_chars,
        )
        max_file_bytes = settings.file_search_max_file_mb * MB
        self.stores = VectorStores(self.ingestion, max_file_bytes=max_file_bytes)

        self._unhook = engine.files.on_delete(self.stores.forget_file)

    def start(self, primary: bool = True) -> FileSearch:
        """Start ingestion. Only the data folder's ``primary`` engine forgets deleted files and
        resumes what an earlier process left half-ingested."""
        if primary:
            self.stores.forget_deleted_files()
        self.ingestion.start(resume=primary)
        return self

    async def close(self) -> None:
        self._unhook()
        await self.ingestion.close()
        await self.parser.close()
        if self.embedder is not None:
            await self.embedder.close()
        self.index.close()
