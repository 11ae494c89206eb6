"""One response, driven by the agent loop: its turns become output items and stream events.

``ResponseRun`` is the loop's host. Text and tool-call arguments become items as the model
writes them (when streaming, the provider streams upstream and each piece is an event at once);
a code call's item runs in_progress -> interpreting -> completed around its execution (see
``code_items.py``, and ``file_search.py`` for a search's); the final message cites the
container files it links to.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ..assistants import context
from ..assistants.code_stream import CodeDecoder
from ..assistants.context import CODE_TOOL
from ..assistants.file_search import FileSearchHandler
from ..assistants.loop import LoopHost, LoopState, TokenUsage
from ..assistants.provider import ModelDelta, ModelReply
from ..runtime import Runtime
from ..sessions import Session
from ..sessions.models import container_file_id
from .code_items import CodeItems
from .containers import FRESH_NOTE, Placement, place
from .events import ResponseEvents
from .file_search import SearchItems
from .items import message_tokens, truncate
from .models import (
    CodeInterpreterCall,
    ContainerFileCitation,
    FileCitation,
    FileSearchCall,
    FunctionCall,
    MessageItem,
    OutputText,
    Response,
    Usage,
)
from .tools import FILE_SEARCH, Tools


@dataclass
class LiveCall:
    """A tool call of the current model turn, as its item."""

    item: CodeInterpreterCall | FunctionCall | FileSearchCall | None
    call_id: str = ""
    decoder: CodeDecoder = field(default_factory=CodeDecoder)


class ResponseRun(SearchItems, CodeItems, LoopHost):
    def __init__(
        self,
        engine: Runtime,
        response: Response,
        tools: Tools,
        history: list[dict[str, Any]],
        events: ResponseEvents,
        *,
        owner: str,
        stream: bool,
        previous_container: str | None,
        files: dict[str, str],
        input_files: list[str],
        context_tokens: int,
        tool_output_chars: int,
        include_outputs: bool,
        file_search: FileSearchHandler | None = None,
        include_results: bool = False,
    ) -> None:
        """``file_search``: the handler of the request's file_search tool, if it has one."""
        self.engine = engine
        self.response = response
        self.tools = tools
        self.history = history
        self.events = events
        self.owner = owner
        self.streams_deltas = stream
        self.previous_container = previous_container
        self.files = files
        self.input_files = input_files
        self.context_tokens = context_tokens
        self.tool_output_chars = tool_output_chars
        self.include_outputs = include_outputs
        self.state = LoopState()
        self.placement: Placement | None = None
        self.running: Session | None = None
        self.cancel_requested = False
        self._text: MessageItem | None = None
        self._turn: dict[int, LiveCall] = {}
        self._streamed = False
        self._code: dict[str, CodeInterpreterCall] = {}
        self._noted = False
        self.file_search = file_search
        self.include_results = include_results
        self.searches: dict[str, FileSearchCall] = {}

    # --- what the loop asks ---

    async def session(self) -> Session:
        if self.placement is None or self.placement.session.status != "active":
            assert self.tools.code is not None
            self.placement = await place(
                self.engine,
                self.owner,
                self.tools.code,
                self.previous_container,
                self.files,
                self.input_files,
            )
        return self.placement.session

    async def prompt(self, session: Session | None) -> list[dict[str, Any]] | None:
        parts = [self.response.instructions] if self.response.instructions else []
        if session is not None:
            parts.append(
                f"You can run Python with the `{CODE_TOOL}` tool (a Jupyter kernel with numpy, "
                "pandas, matplotlib and scipy). Save output files under /mnt/data and link them "
                "as sandbox:/mnt/data/<name>."
            )
            names = [f.filename for f in await session.list_files()]
            if names:
                parts.append("Files available in /mnt/data: " + ", ".join(names) + ".")
            if self.placement is not None and self.placement.fresh_after_expiry:
                parts.append(FRESH_NOTE)
        system = [{"role": "system", "content": "\n\n".join(parts)}] if parts else []
        history = self.history
        budget = self.context_tokens - sum(message_tokens(m) for m in system)
        if self.response.truncation == "auto":
            history = truncate(history, budget)
        if sum(message_tokens(m) for m in history) > budget:
            return None
        return [*system, *history, *self.state.conversation]

    def cancelled(self) -> bool:
        return self.cancel_requested

    # --- items as the model writes them ---

    async def on_model_delta(self, delta: ModelDelta) -> None:
        self._streamed = True
        if delta.text:
            self._text_delta(delta.text)
        if delta.tool_index is not None:
            self._tool_delta(delta)

    def _text_delta(self, text: str) -> None:
        if self._text is None:
            self._text = MessageItem(role="assistant", content=[], status="in_progress")
            index = self._add(self._text)
            self._text.content.append(OutputText(text=""))
            self.events.emit(
                "response.content_part.added",
                item_id=self._text.id,
                output_index=index,
                content_index=0,
                part=OutputText(text="").model_dump(mode="json"),
            )
        part = self._text.content[0]
        assert isinstance(part, OutputText)
        part.text += text
        self.events.emit(
            "response.output_text.delta",
            item_id=self._text.id,
            output_index=self._index(self._text),
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool_delta(self, delta: ModelDelta) -> None:
        assert delta.tool_index is not None
        live = self._turn.get(delta.tool_index)
        if live is None:
            live = self._turn[delta.tool_index] = LiveCall(item=None, call_id=delta.tool_id)
            functions = {f["function"]["name"] for f in self.tools.functions}
            if delta.tool_name == CODE_TOOL and self.tools.code is not None:
                live.item = self.code_started()
            elif delta.tool_name == FILE_SEARCH and self.file_search is not None:
                live.item = self.search_started()
            elif delta.tool_name in functions:
                live.item = FunctionCall(
                    call_id=delta.tool_id, name=delta.tool_name, status="in_progress"
                )
                self._add(live.item)
        live.call_id = live.call_id or delta.tool_id
        item = live.item
        if isinstance(item, CodeInterpreterCall):
            self.code_delta(item, live.decoder.feed(delta.arguments))
        elif isinstance(item, FunctionCall) and delta.arguments:
            item.arguments += delta.arguments
            self.events.emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=self._index(item),
                delta=delta.arguments,
            )

    async def on_model_turn(self, reply: ModelReply, usage: TokenUsage) -> None:
        self.response.usage = Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.prompt_tokens + usage.completion_tokens,
        )
        if not self._streamed:  # the whole turn at once: told as one delta of each kind
            if reply.content:
                self._text_delta(reply.content)
            for index, call in enumerate(reply.tool_calls):
                self._tool_delta(
                    ModelDelta(
                        tool_index=index,
                        tool_id=call.id,
                        tool_name=call.name,
                        arguments=call.arguments,
                    )
                )
        self._streamed = False
        if not reply.tool_calls:
            return  # the final answer: closed by finish_text, with its citations
        if self._text is not None:
            self.finish_text([])
        by_id = {c.id: c for c in reply.tool_calls}
        for live in self._turn.values():
            found = by_id.get(live.call_id)
            if isinstance(live.item, FunctionCall):
                live.item.arguments = found.arguments if found else live.item.arguments
                live.item.status = "completed"
                index = self._index(live.item)
                self.events.emit(
                    "response.function_call_arguments.done",
                    item_id=live.item.id,
                    output_index=index,
                    arguments=live.item.arguments,
                )
                self._done(live.item)
            elif isinstance(live.item, CodeInterpreterCall):
                self.code_done(live.item, live.call_id, found.arguments if found else None)
            elif isinstance(live.item, FileSearchCall):
                self.searching(live.item, live.call_id, found.arguments if found else "")
        self._turn = {}

    # --- the end ---

    async def citations(self, session: Session | None) -> list[ContainerFileCitation]:
        """The container files the final text links to as ``sandbox:/mnt/data/...``."""
        text = self._text.text() if self._text is not None else ""
        if session is None or "sandbox:" not in text:
            return []
        known = {f.path: f.file_id for f in await session.list_files()}
        found = []
        for match in context.SANDBOX_LINK.finditer(text):
            link = match.group(0).rstrip(".,;:!?")
            path = link.removeprefix("sandbox:")
            path = path if path in known else unquote(path)
            if path not in known:
                continue
            # A file with no file object has the id /v1/containers gives it.
            file_id = known[path] or container_file_id(session.id, path)
            found.append(
                ContainerFileCitation(
                    container_id=session.id,
                    file_id=file_id,
                    filename=posixpath.basename(path),
                    start_index=match.start(),
                    end_index=match.start() + len(link),
                )
            )
        return found

    def finish_text(self, annotations: list[ContainerFileCitation | FileCitation]) -> None:
        item = self._text
        if item is None:
            return
        self._text = None
        index = self._index(item)
        part = item.content[0]
        assert isinstance(part, OutputText)
        part.annotations = annotations
        for n, annotation in enumerate(annotations):
            self.events.emit(
                "response.output_text.annotation.added",
                item_id=item.id,
                output_index=index,
                content_index=0,
                annotation_index=n,
                annotation=annotation.model_dump(mode="json"),
            )
        common = {"item_id": item.id, "output_index": index, "content_index": 0}
        self.events.emit("response.output_text.done", **common, text=part.text, logprobs=[])
        self.events.emit("response.content_part.done", **common, part=part.model_dump(mode="json"))
        item.status = "completed"
        self._done(item)

    def close_open_items(self) -> None:
        """A response that stops early leaves no item in progress."""
        if self._text is not None:
            self.finish_text([])
        for item in self.response.output:
            if (
                isinstance(item, CodeInterpreterCall)
                and item.status
                in (
                    "in_progress",
                    "interpreting",
                )
            ) or (
                isinstance(item, FunctionCall | FileSearchCall)
                and item.status in ("in_progress", "searching")
            ):
                item.status = "incomplete"
                self._done(item)
