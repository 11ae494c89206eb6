"""The bodies of Assistants requests, validated the same way for the API and the library."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import Tool, ToolResources, TruncationStrategy


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AssistantBody(Body):
    model: str | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Any = None


class MessageBody(Body):
    role: Literal["user", "assistant"] = "user"
    content: str | list[dict[str, Any]]
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class ThreadBody(Body):
    messages: list[MessageBody] | None = Field(default=None, max_length=100)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


class MetadataBody(Body):
    metadata: dict[str, str] | None = None


class RunBody(Body):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[MessageBody] | None = None
    tools: list[Tool] | None = None
    tool_choice: Any = None
    truncation_strategy: TruncationStrategy | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=16)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False

    def run_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``AssistantsService.create_run``."""
        fields = self.model_dump(exclude_none=True, exclude={"assistant_id", "stream", "thread"})
        if self.tools is not None:
            fields["tools"] = self.tools
        if self.truncation_strategy is not None:
            fields["truncation_strategy"] = self.truncation_strategy
        if self.additional_messages is not None:
            fields["additional_messages"] = [
                m.model_dump(exclude_none=True) for m in self.additional_messages
            ]
        return fields


class ThreadRunBody(RunBody):
    thread: ThreadBody | None = None


class ToolOutput(Body):
    tool_call_id: str
    output: str = ""


class ToolOutputsBody(Body):
    tool_outputs: list[ToolOutput] = Field(max_length=128)
    stream: bool = False
