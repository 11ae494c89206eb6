"""The Responses API's objects, shaped (field for field) like the official SDK's types.

``openai.types.responses`` and ``openai.types.conversations`` are the reference: a response and
its output items, the input items a client sends, conversations, and the request body.
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .. import errors

MAX_INPUT_ITEMS = 2048
Includable = Literal[
    "code_interpreter_call.outputs",
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]
INCLUDABLE = frozenset(get_args(Includable))
"""The ``include`` values OpenAI defines; only the first changes what this engine returns."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def now() -> int:
    return int(time.time())


class ResponseStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"


ACTIVE = {ResponseStatus.QUEUED, ResponseStatus.IN_PROGRESS}


# --- content parts ---


class InputText(BaseModel):
    type: Literal["input_text"] = "input_text"
    text: str


class InputImage(BaseModel):
    type: Literal["input_image"] = "input_image"
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] = "auto"


class InputFile(BaseModel):
    type: Literal["input_file"] = "input_file"
    file_id: str | None = None
    filename: str | None = None
    file_data: str | None = Field(default=None, exclude=True)
    """A data URI or base64; stored as a file object, then only its ``file_id`` is kept."""
    file_url: str | None = None


class ContainerFileCitation(BaseModel):
    type: Literal["container_file_citation"] = "container_file_citation"
    container_id: str
    file_id: str
    filename: str
    start_index: int
    end_index: int


class FileCitation(BaseModel):
    type: Literal["file_citation"] = "file_citation"
    file_id: str
    filename: str
    index: int


Annotation = Annotated[ContainerFileCitation | FileCitation, Field(discriminator="type")]


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Annotation] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class Refusal(BaseModel):
    type: Literal["refusal"] = "refusal"
    refusal: str


Content = Annotated[
    InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")
]


# --- items: what goes into a response and what comes out ---

ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(BaseModel):
    id: str = Field(default_factory=lambda: new_id("msg"))
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: list[Content]
    status: ItemStatus = "completed"

    def text(self) -> str:
        return "".join(
            p.text if isinstance(p, InputText | OutputText) else "" for p in self.content
        )


class CodeLogs(BaseModel):
    type: Literal["logs"] = "logs"
    logs: str


class CodeImage(BaseModel):
    type: Literal["image"] = "image"
    url: str


CodeOutput = Annotated[CodeLogs | CodeImage, Field(discriminator="type")]


class CodeInterpreterCall(BaseModel):
    id: str = Field(default_factory=lambda: new_id("ci"))
    type: Literal["code_interpreter_call"] = "code_interpreter_call"
    code: str | None = ""
    container_id: str
    outputs: list[CodeOutput] | None = None
    status: Literal["in_progress", "interpreting", "completed", "incomplete", "failed"] = (
        "in_progress"
    )


class FunctionCall(BaseModel):
    id: str = Field(default_factory=lambda: new_id("fc"))
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str = ""
    status: ItemStatus = "completed"


class FunctionCallOutput(BaseModel):
    id: str = Field(default_factory=lambda: new_id("fco"))
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str | list[InputText | InputImage | InputFile]
    status: ItemStatus = "completed"


class FileSearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, str | float | bool] | None = None


class FileSearchCall(BaseModel):
    id: str = Field(default_factory=lambda: new_id("fs"))
    type: Literal["file_search_call"] = "file_search_call"
    queries: list[str] = Field(default_factory=list)
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"] = "in_progress"
    results: list[FileSearchResult] | None = None


Item = Annotated[
    MessageItem | CodeInterpreterCall | FunctionCall | FunctionCallOutput | FileSearchCall,
    Field(discriminator="type"),
]


# --- the response ---


ErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout"]
"""The codes this engine uses, each one of the SDK's ``ResponseError.code`` values."""


class ResponseError(BaseModel):
    code: ErrorCode
    message: str


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class Usage(BaseModel):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class ConversationRef(BaseModel):
    id: str


class Response(BaseModel):
    id: str = Field(default_factory=lambda: new_id("resp"))
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=now)
    status: ResponseStatus = ResponseStatus.IN_PROGRESS
    background: bool = False
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str
    output: list[Item] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    conversation: ConversationRef | None = None
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    top_logprobs: int | None = None
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    usage: Usage | None = None
    user: str | None = None

    def shown(self, include: set[str]) -> dict[str, Any]:
        """As the API returns it: code outputs only when ``include`` asks for them."""
        data = self.model_dump(mode="json", exclude={"store"})
        for item in data["output"]:
            if item["type"] == "code_interpreter_call":
                if "code_interpreter_call.outputs" not in include:
                    item["outputs"] = None
            elif item["type"] == "file_search_call" and "file_search_call.results" not in include:
                item["results"] = None
        return data


class ResponseState(BaseModel):
    """What a response keeps that the API never shows: its container and the files in it."""

    include: list[str] = Field(default_factory=list)
    container_id: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    """Files in the container at the end (name -> file id), to restore if it has expired."""


# --- conversations ---


class Conversation(BaseModel):
    id: str = Field(default_factory=lambda: new_id("conv"))
    object: Literal["conversation"] = "conversation"
    created_at: int = Field(default_factory=now)
    metadata: dict[str, str] = Field(default_factory=dict)


# --- the request ---

Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]


class TextFormat(BaseModel):
    """``text.format``: plain text, JSON mode, or Structured Outputs against a JSON schema."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    def check(self) -> None:
        if self.type == "json_schema" and (not self.name or self.schema_ is None):
            raise errors.InvalidRequest(
                "text.format: a json_schema format needs a name and a schema"
            )

    def response_format(self) -> dict[str, Any] | None:
        """As Chat Completions takes it (``response_format``); None for plain text. The format
        passed ``check``."""
        if self.type == "json_object":
            return {"type": "json_object"}
        if self.type != "json_schema":
            return None
        spec: dict[str, Any] = {"name": self.name, "schema": self.schema_}
        if self.description is not None:
            spec["description"] = self.description
        if self.strict is not None:
            spec["strict"] = self.strict
        return {"type": "json_schema", "json_schema": spec}

    def shown(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: TextFormat = Field(default_factory=TextFormat)
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="allow")

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


PASSED_ON = ("service_tier", "safety_identifier", "prompt_cache_key", "prompt_cache_retention")
"""Request fields that reach the model's Chat Completions request as they are, when given."""


class UnknownParameter(errors.InvalidRequest):
    code = "unknown_parameter"

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown parameter: '{name}'.")
        self.param = name


class ContextTooLong(errors.InvalidRequest):
    code = "context_length_exceeded"
    param = "input"


class CreateResponse(BaseModel):
    """The body of ``POST /v1/responses``. Every field of the SDK's ``ResponseCreateParams`` is
    honoured, passed on to the model (``PASSED_ON``, ``text``, ``reasoning.effort``) or accepted
    and ignored (declared here and read by nothing: docs/responses.md lists them); any other
    field is refused by ``check_fields``."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    input: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_INPUT_ITEMS)] = ""
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=128)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    max_tool_calls: int | None = Field(default=None, ge=1, le=1000)
    max_output_tokens: int | None = Field(default=None, ge=16)
    previous_response_id: str | None = Field(default=None, max_length=256)
    conversation: str | ConversationRef | None = None
    include: list[str] = Field(default_factory=list, max_length=16)
    store: bool = True
    background: bool = False
    stream: bool = False
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    truncation: Literal["auto", "disabled"] = "disabled"
    user: str | None = Field(default=None, max_length=256)
    text: TextConfig = Field(default_factory=TextConfig)
    reasoning: Reasoning | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    safety_identifier: str | None = Field(default=None, max_length=256)
    prompt_cache_key: str | None = Field(default=None, max_length=256)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    background_options: dict[str, Any] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    image: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None

    @property
    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, ConversationRef):
            return self.conversation.id
        return self.conversation

    def check_fields(self) -> None:
        """A field the API does not define is refused, naming it, instead of being dropped."""
        for prefix, part in (("", self), ("text.", self.text), ("text.format.", self.text.format)):
            for name in part.model_extra or {}:
                raise UnknownParameter(prefix + name)
        for name in (self.reasoning.model_extra or {}) if self.reasoning else {}:
            raise UnknownParameter("reasoning." + name)
        if self.prompt is not None:
            raise errors.InvalidRequest(
                "prompt: stored prompt templates are not supported here; send instructions and "
                "input instead"
            )
        if self.moderation is not None:
            raise errors.InvalidRequest(
                "moderation: this engine runs no moderation model; leave it out"
            )
        self.text.format.check()

    def model_options(self) -> dict[str, Any]:
        """What reaches the model's Chat Completions request besides the messages and tools."""
        options: dict[str, Any] = {
            name: getattr(self, name) for name in PASSED_ON if getattr(self, name) is not None
        }
        response_format = self.text.format.response_format()
        if response_format is not None:
            options["response_format"] = response_format
        if self.text.verbosity is not None:
            options["verbosity"] = self.text.verbosity
        if self.reasoning is not None and self.reasoning.effort is not None:
            options["reasoning_effort"] = self.reasoning.effort
        return options


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]] | None = Field(default=None, max_length=20)
    metadata: Metadata | None = None


class UpdateConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: Metadata


class CreateItems(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=20)
