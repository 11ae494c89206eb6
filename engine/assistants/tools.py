"""The tools an Assistants run may offer the model: what is accepted, and the function specs."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..agent.tool_text import CODE_TOOL, FILE_SEARCH
from ..files import FileStore
from ..retrieval import VectorStores
from .models import Tool, ToolResources


def check_tools(tools: list[Tool]) -> None:
    # The code interpreter reaches the model as a function of that name.
    names = {CODE_TOOL} if any(t.type == "code_interpreter" for t in tools) else set()
    if any(t.type == "file_search" for t in tools):
        names.add(FILE_SEARCH)
    if sum(t.type == "file_search" for t in tools) > 1:
        raise errors.InvalidRequest("only one file_search tool is allowed")
    for tool in tools:
        if tool.type == "function":
            if tool.function is None:
                raise errors.InvalidRequest("a function tool needs a 'function' definition")
            if tool.function.name in names:
                raise errors.InvalidRequest(
                    f"function name {tool.function.name!r} is used twice, or is the name under "
                    "which the model sees the code interpreter or file_search"
                )
            names.add(tool.function.name)


def check_tool_choice(choice: Any, tools: list[Tool]) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "code_interpreter" and any(t.type == "code_interpreter" for t in tools):
        return choice
    if kind == "file_search" and any(t.type == "file_search" for t in tools):
        return choice
    if kind == "function" and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if any(t.function is not None and t.function.name == name for t in tools):
            return choice
    raise errors.InvalidRequest(
        f"invalid tool_choice {choice!r}: 'auto', 'none', 'required', or one of the run's tools"
    )


def function_specs(tools: list[Tool]) -> list[dict[str, Any]]:
    """The function tools as Chat Completions defines them (the code interpreter aside)."""
    return [
        {"type": "function", "function": t.function.model_dump(exclude_none=True)}
        for t in tools
        if t.type == "function" and t.function is not None
    ]


def check_resources(
    owner: str, resources: ToolResources | None, files: FileStore, stores: VectorStores | None
) -> None:
    """The resources' files and stores exist; a ``vector_stores`` helper makes its store."""
    search = resources.file_search if resources else None
    if search is not None and search.vector_stores:
        if search.vector_store_ids:
            raise errors.InvalidRequest(
                "file_search takes vector_store_ids or vector_stores, not both"
            )
        if stores is None:
            raise errors.InvalidRequest("file_search is not available in this engine")
        new = search.vector_stores[0]
        store = stores.create(
            owner,
            file_ids=new.file_ids,
            chunking_strategy=new.chunking_strategy,
            metadata=new.metadata,
        )
        search.vector_store_ids, search.vector_stores = [store.id], None
    if resources and resources.code_interpreter:
        for file_id in resources.code_interpreter.file_ids:
            files.retrieve(file_id, owner)
    if resources and resources.file_search and resources.file_search.vector_store_ids:
        if stores is None:
            raise errors.InvalidRequest("file_search is not available in this engine")
        for store_id in resources.file_search.vector_store_ids:
            stores.retrieve(store_id, owner)
