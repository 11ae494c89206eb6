"""Assistants v2 objects, shaped as the official ``openai`` SDK parses them."""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import errors
from ..errors import LastError
from ..retrieval.models import ChunkingStrategy, RankingOptions


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


ACTIVE_RUN = frozenset(
    {RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING}
)
TERMINAL_RUN = frozenset(RunStatus) - ACTIVE_RUN


class StepStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"


class MessageStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    INCOMPLETE = "incomplete"
    COMPLETED = "completed"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class ErrorCode(StrEnum):
    """The codes of a run's ``last_error``."""

    SERVER_ERROR = "server_error"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    INVALID_PROMPT = "invalid_prompt"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'A').replace('_', 'b')}"


def now() -> int:
    return int(time.time())


class Obj(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Stored(Obj):
    """What the repository keeps: every object has an id and a creation time."""

    id: str
    created_at: int


class FunctionDef(Obj):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FileSearchConfig(Obj):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class Tool(Obj):
    type: Literal["code_interpreter", "function", "file_search"]
    function: FunctionDef | None = None
    file_search: FileSearchConfig | None = None


class CodeInterpreterResources(Obj):
    file_ids: list[str] = Field(default_factory=list, max_length=100)


class NewVectorStore(Obj):
    """``tool_resources.file_search.vector_stores``: a store to make with these files."""

    file_ids: list[str] = Field(default_factory=list, max_length=100)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: dict[str, str] | None = None


class FileSearchResources(Obj):
    vector_store_ids: list[str] = Field(default_factory=list, max_length=1)
    vector_stores: list[NewVectorStore] | None = Field(default=None, max_length=1)


class ToolResources(Obj):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class Assistant(Stored):
    object: Literal["assistant"] = "assistant"
    name: str | None = None
    description: str | None = None
    model: str
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = "auto"


class Thread(Stored):
    object: Literal["thread"] = "thread"
    metadata: dict[str, str] = Field(default_factory=dict)
    tool_resources: ToolResources | None = None


class FilePathRef(Obj):
    file_id: str


class FileCitationRef(Obj):
    file_id: str


class Annotation(Obj):
    type: Literal["file_path", "file_citation"] = "file_path"
    text: str
    start_index: int
    end_index: int
    file_path: FilePathRef | None = None
    file_citation: FileCitationRef | None = None


class TextValue(Obj):
    value: str
    annotations: list[Annotation] = Field(default_factory=list)


class ImageFileRef(Obj):
    file_id: str
    detail: str | None = None


class ContentPart(Obj):
    type: Literal["text", "image_file"]
    text: TextValue | None = None
    image_file: ImageFileRef | None = None


def content_parts(content: str | list[dict[str, Any]]) -> list[ContentPart]:
    """A message's content as the API takes it (a string, or a list of parts), checked."""
    if isinstance(content, str):
        return [ContentPart(type="text", text=TextValue(value=content))]
    if not isinstance(content, list) or not content:
        raise errors.InvalidRequest("content must be a string or a non-empty list of parts")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(ContentPart(type="text", text=TextValue(value=str(part.get("text", "")))))
        elif kind == "image_file":
            parts.append(
                ContentPart(
                    type="image_file", image_file=ImageFileRef.model_validate(part["image_file"])
                )
            )
        else:
            raise errors.InvalidRequest(f"unsupported content part type {kind!r}")
    return parts


class Attachment(Obj):
    file_id: str
    tools: list[dict[str, Any]] = Field(default_factory=list)


class Message(Stored):
    object: Literal["thread.message"] = "thread.message"
    thread_id: str
    role: MessageRole
    content: list[ContentPart]
    assistant_id: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    status: MessageStatus = MessageStatus.COMPLETED
    completed_at: int | None = None
    incomplete_at: int | None = None
    incomplete_details: dict[str, Any] | None = None

    def text(self) -> str:
        return "\n".join(p.text.value for p in self.content if p.text is not None)


class FunctionCall(Obj):
    name: str
    arguments: str
    output: str | None = None


class CodeOutput(Obj):
    type: Literal["logs", "image"]
    logs: str | None = None
    image: ImageFileRef | None = None


class CodeInterpreterCall(Obj):
    input: str
    outputs: list[CodeOutput] = Field(default_factory=list)


class FileSearchResultContent(Obj):
    type: Literal["text"] = "text"
    text: str


class FileSearchResult(Obj):
    file_id: str
    file_name: str
    score: float
    content: list[FileSearchResultContent] | None = None


class FileSearchCall(Obj):
    ranking_options: dict[str, Any] | None = None
    results: list[FileSearchResult] = Field(default_factory=list)


class ToolCall(Obj):
    id: str
    type: Literal["code_interpreter", "function", "file_search"]
    code_interpreter: CodeInterpreterCall | None = None
    function: FunctionCall | None = None
    file_search: FileSearchCall | None = None


class MessageCreation(Obj):
    message_id: str


class StepDetails(Obj):
    type: Literal["message_creation", "tool_calls"]
    message_creation: MessageCreation | None = None
    tool_calls: list[ToolCall] | None = None


class Usage(Obj):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class RunStep(Stored):
    object: Literal["thread.run.step"] = "thread.run.step"
    run_id: str
    thread_id: str
    assistant_id: str
    type: Literal["message_creation", "tool_calls"]
    status: StepStatus
    step_details: StepDetails
    completed_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    last_error: LastError[ErrorCode] | None = None
    usage: Usage | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class RequiredFunction(Obj):
    name: str
    arguments: str


class RequiredToolCall(Obj):
    id: str
    type: Literal["function"] = "function"
    function: RequiredFunction


class SubmitToolOutputs(Obj):
    tool_calls: list[RequiredToolCall]


class RequiredAction(Obj):
    type: Literal["submit_tool_outputs"] = "submit_tool_outputs"
    submit_tool_outputs: SubmitToolOutputs


class TruncationStrategy(Obj):
    type: Literal["auto", "last_messages"] = "auto"
    last_messages: int | None = Field(default=None, ge=1)


class IncompleteDetails(Obj):
    reason: Literal["max_completion_tokens", "max_prompt_tokens"]


class Run(Stored):
    object: Literal["thread.run"] = "thread.run"
    thread_id: str
    assistant_id: str
    status: RunStatus
    model: str
    instructions: str
    tools: list[Tool] = Field(default_factory=list)
    required_action: RequiredAction | None = None
    last_error: LastError[ErrorCode] | None = None
    expires_at: int | None = None
    started_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_details: IncompleteDetails | None = None
    usage: Usage | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: TruncationStrategy = Field(default_factory=TruncationStrategy)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    response_format: Any = "auto"
    metadata: dict[str, str] = Field(default_factory=dict)
