"""The bodies of vector store requests, validated the same way for the API and the library."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from .models import (
    Attributes,
    ChunkingStrategy,
    ExpiresAfter,
    check_attributes,
    check_metadata,
)


class WithMetadata(BaseModel):
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(value)


class StoreCreate(WithMetadata):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=2000)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None


class WithAttributes(BaseModel):
    attributes: Attributes | None = None

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: Attributes | None) -> Attributes | None:
        return check_attributes(value)


class FileCreate(WithAttributes):
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None


class StoreUpdate(WithMetadata):
    name: str | None = Field(default=None, max_length=256)
    expires_after: ExpiresAfter | None = None


class FileUpdate(WithAttributes):
    pass


class BatchFile(FileCreate):
    pass


class BatchCreate(WithAttributes):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[BatchFile] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None
