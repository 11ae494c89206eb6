"""Vector stores, their files and batches, and search results: OpenAI's shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import errors
from ..errors import LastError

AttributeValue = str | float | bool
Attributes = dict[str, AttributeValue]
FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
MAX_ATTRIBUTES = 16
DEFAULT_CHUNK_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400


def check_attributes(value: Attributes | None) -> Attributes | None:
    """OpenAI's rule: at most 16 keys of up to 64 characters; strings up to 512 characters."""
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise errors.InvalidRequest(f"at most {MAX_ATTRIBUTES} attributes, not {len(value)}")
    for key, item in value.items():
        if len(key) > 64:
            raise errors.InvalidRequest(
                f"attribute key {key[:70]!r}... is longer than 64 characters"
            )
        if isinstance(item, str) and len(item) > 512:
            raise errors.InvalidRequest(f"attribute {key!r} is longer than 512 characters")
    return value


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise errors.InvalidRequest(
            f"metadata holds at most {MAX_ATTRIBUTES} keys, not {len(value)}"
        )
    for key, item in value.items():
        if len(key) > 64 or len(item) > 512:
            raise errors.InvalidRequest(
                f"metadata {key[:64]!r}: keys up to 64, values up to 512 characters"
            )
    return value


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: Literal["last_active_at"] = "last_active_at"
    days: int = Field(ge=1, le=365)


class StaticChunking(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_chunk_size_tokens: int = Field(default=DEFAULT_CHUNK_TOKENS, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(default=DEFAULT_OVERLAP_TOKENS, ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(BaseModel):
    """What a request sends: ``{"type": "auto"}`` or ``{"type": "static", "static": {...}}``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["auto", "static"] = "auto"
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static_needs_its_sizes(self) -> ChunkingStrategy:
        if self.type == "static" and self.static is None:
            raise ValueError(
                "a static chunking_strategy needs 'static': {max_chunk_size_tokens, ...}"
            )
        return self

    def resolved(self) -> StaticChunking:
        """What is stored and shown: auto is OpenAI's 800 tokens with 400 of overlap."""
        return self.static if self.type == "static" and self.static else StaticChunking()


class VectorStore(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int = 0
    file_counts: FileCounts = Field(default_factory=FileCounts)
    status: Literal["expired", "in_progress", "completed"] = "completed"
    expires_after: ExpiresAfter | None = None
    expires_at: int | None = None
    last_active_at: int | None = None
    metadata: dict[str, str] | None = None
    description: str | None = None


FileErrorCode = Literal["server_error", "unsupported_file", "invalid_file"]


class StoredChunking(BaseModel):
    type: Literal["static"] = "static"
    static: StaticChunking


class VectorStoreFile(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    created_at: int
    usage_bytes: int = 0
    vector_store_id: str
    status: FileStatus = "in_progress"
    last_error: LastError[FileErrorCode] | None = None
    attributes: Attributes | None = None
    chunking_strategy: StoredChunking | None = None


class FileBatch(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: FileStatus = "in_progress"
    file_counts: FileCounts = Field(default_factory=FileCounts)


class ComparisonFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: AttributeValue | list[AttributeValue]


class CompoundFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["and", "or"]
    filters: Annotated[list[ComparisonFilter | CompoundFilter], Field(min_length=1, max_length=64)]


Filter = ComparisonFilter | CompoundFilter


class RankingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: ComparisonFilter | CompoundFilter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False

    @field_validator("query")
    @classmethod
    def _some_query(cls, value: str | list[str]) -> str | list[str]:
        queries = [value] if isinstance(value, str) else value
        if not queries or not any(q.strip() for q in queries) or len(queries) > 10:
            raise ValueError("query must be a non-empty string or a list of 1 to 10 strings")
        if any(len(q) > 4096 for q in queries):
            raise ValueError("a query is longer than 4096 characters")
        return value

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: Attributes | None = None
    content: list[TextContent]


class SearchPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


class ContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[TextContent]
    has_more: bool = False
    next_page: str | None = None


def loads_or(value: Any, default: Any = None) -> Any:
    import json

    return default if value is None else json.loads(value)
