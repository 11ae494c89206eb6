"""The tools a response may offer the model, checked, and how ``tool_choice`` reaches the loop.

Each tool object is checked here, so a malformed one is a 400 before anything runs. The
code interpreter's ``container`` is either ``{"type": "auto", ...}`` (the engine picks, and keeps
the same container along a conversation) or the id of a container from ``/v1/containers``.
``file_search`` names the vector stores to search (checked by the service).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import errors
from ..agent.tool_text import CODE_TOOL, FILE_SEARCH
from ..egress.policy import DISABLED, EgressPolicy, parse_policy
from ..retrieval.models import ComparisonFilter, CompoundFilter, RankingOptions

MEMORY_LIMITS_MB = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkPolicy(_Strict):
    type: Literal["disabled", "allowlist"] = "disabled"
    allowed_domains: list[str] | None = None
    domain_secrets: list[dict[str, Any]] | None = Field(default=None, max_length=20)


class AutoContainer(_Strict):
    type: Literal["auto"]
    file_ids: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=50
    )
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None
    network_policy: NetworkPolicy | None = None


class CodeInterpreterTool(_Strict):
    type: Literal["code_interpreter"]
    container: Annotated[str, Field(min_length=1, max_length=256)] | AutoContainer


class FunctionTool(_Strict):
    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = Field(default=None, max_length=8192)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FileSearchTool(_Strict):
    type: Literal["file_search"]
    vector_store_ids: list[Annotated[str, Field(max_length=256)]] = Field(
        min_length=1, max_length=16
    )
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    filters: ComparisonFilter | CompoundFilter | None = None


@dataclass
class CodeTool:
    container_id: str | None = None
    """An explicit container; None for auto."""
    file_ids: list[str] = field(default_factory=list)
    memory_limit_mb: int | None = None
    network_policy: EgressPolicy = DISABLED


@dataclass
class Tools:
    code: CodeTool | None = None
    file_search: FileSearchTool | None = None
    functions: list[dict[str, Any]] = field(default_factory=list)
    """Client-run functions, as Chat Completions defines them."""
    choice: Any = "auto"
    """The tool choice as the agent loop takes it."""


def parse_tools(
    raw: list[dict[str, Any]], tool_choice: str | dict[str, Any], egress_cap: Sequence[str] = ()
) -> Tools:
    """The request's tools, checked; an auto container's network policy within ``egress_cap``
    (``egress.parse_cap`` of the server's setting)."""
    tools = Tools()
    names = {CODE_TOOL, FILE_SEARCH}
    for index, spec in enumerate(raw):
        kind = spec.get("type")
        where = f"tools[{index}]"
        if kind == FILE_SEARCH:
            if tools.file_search is not None:
                raise errors.InvalidRequest(f"{where}: only one file_search tool is allowed")
            tools.file_search = _checked(FileSearchTool, spec, where)
        elif kind == "code_interpreter":
            if tools.code is not None:
                raise errors.InvalidRequest(f"{where}: only one code_interpreter tool is allowed")
            tools.code = _code_tool(_checked(CodeInterpreterTool, spec, where), egress_cap)
        elif kind == "function":
            function = _checked(FunctionTool, spec, where)
            if function.name in names:
                raise errors.InvalidRequest(
                    f"{where}: function name {function.name!r} is used twice, or is the name "
                    "under which the model sees the code interpreter or file_search"
                )
            names.add(function.name)
            definition = function.model_dump(exclude={"type"}, exclude_none=True)
            definition.setdefault("parameters", {"type": "object", "properties": {}})
            tools.functions.append({"type": "function", "function": definition})
        else:
            raise errors.InvalidRequest(
                f"{where}: tool type {kind!r} is not supported; use code_interpreter, "
                "file_search or function"
            )
    tools.choice = _choice(tool_choice, tools)
    return tools


def _checked(model: type[M], spec: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        at, what = errors.first_problem(exc)
        raise errors.InvalidRequest(f"{where}.{at}: {what}") from None


def _code_tool(tool: CodeInterpreterTool, egress_cap: Sequence[str]) -> CodeTool:
    if isinstance(tool.container, str):
        return CodeTool(container_id=tool.container)
    auto = tool.container
    memory = MEMORY_LIMITS_MB[auto.memory_limit] if auto.memory_limit else None
    return CodeTool(
        file_ids=list(dict.fromkeys(auto.file_ids)),
        memory_limit_mb=memory,
        network_policy=parse_policy(auto.network_policy, egress_cap),
    )


def _choice(choice: str | dict[str, Any], tools: Tools) -> Any:
    """Responses' tool_choice forms, as the loop (and Chat Completions) takes them."""
    functions = {f["function"]["name"] for f in tools.functions}
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "code_interpreter" and tools.code is not None:
        return {"type": "code_interpreter"}
    if kind == FILE_SEARCH and tools.file_search is not None:
        return {"type": "function", "function": {"name": FILE_SEARCH}}
    if kind == "function" and isinstance(choice, dict) and choice.get("name") in functions:
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "allowed_tools" and isinstance(choice, dict):
        return _allowed(choice, tools, functions)
    raise errors.InvalidRequest(
        f"invalid tool_choice {choice!r}: 'auto', 'none', 'required', "
        '{"type": "code_interpreter"}, {"type": "file_search"}, {"type": "function", "name": '
        '...} naming one of the tools, or {"type": "allowed_tools", "mode": ..., "tools": [...]}'
    )


def _allowed(choice: dict[str, Any], tools: Tools, functions: set[str]) -> str:
    """``allowed_tools`` narrows the tools the model sees, then chooses as ``mode`` says."""
    mode, allowed = choice.get("mode"), choice.get("tools")
    if mode not in ("auto", "required") or not isinstance(allowed, list):
        raise errors.InvalidRequest(
            "allowed_tools needs mode 'auto' or 'required' and a list of tools"
        )
    keep_code, keep_search, keep = False, False, set()
    for entry in allowed:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "code_interpreter" and tools.code is not None:
            keep_code = True
        elif kind == FILE_SEARCH and tools.file_search is not None:
            keep_search = True
        elif kind == "function" and entry.get("name") in functions:
            keep.add(entry["name"])
        else:
            raise errors.InvalidRequest(f"allowed_tools names a tool the request lacks: {entry}")
    if not keep_code:
        tools.code = None
    if not keep_search:
        tools.file_search = None
    tools.functions = [f for f in tools.functions if f["function"]["name"] in keep]
    return str(mode)
