"""One response, driven by the agent loop: its turns become output items and stream events.

``ResponseRun`` is the loop's host (``LoopHost``). Text and tool-call arguments become items as
the model writes them (when streaming, the provider streams upstream and each piece is an event
at once); a code call's item runs in_progress -> interpreting -> completed around its execution
(``CodeItems``, in ``code_items.py``; a search's is ``SearchItems``, in ``file_search.py``); both
add their items through the response's ``OutputItems``. The final message cites the container
files it links to.
"""

from __future__ import annotations

import posixpath
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Any
from urllib.parse import unquote

from ..agent import tool_text
from ..agent.code_stream import LiveCall
from ..agent.file_search import FileSearchHandler
from ..agent.loop import LoopState, TokenUsage, ToolHandler
from ..agent.provider import ModelDelta, ModelReply, ModelToolCall
from ..agent.tool_text import CODE_TOOL, FILE_SEARCH
from ..results import ExecutionResult
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
from .output_items import OutputItems
from .tools import Tools

LiveItem = CodeInterpreterCall | FunctionCall | FileSearchCall


@dataclass(eq=False)
class ResponseRun:
    """The loop's host (``LoopHost``) for one response: its message text here, its code and
    search calls' items in ``code`` and ``search``."""

    engine: Runtime
    response: Response
    tools: Tools
    history: list[dict[str, Any]]
    events: ResponseEvents
    _: KW_ONLY
    owner: str
    stream: InitVar[bool]
    previous_container: str | None
    files: dict[str, str]
    input_files: list[str]
    context_tokens: int
    tool_output_chars: InitVar[int]
    include_outputs: InitVar[bool]
    file_search: InitVar[FileSearchHandler | None]
    """The handler of the request's file_search tool, if it has one."""
    include_results: InitVar[bool]
    streams_deltas: bool = field(init=False)
    items: OutputItems = field(init=False)
    code: CodeItems = field(init=False)
    search: SearchItems = field(init=False)
    state: LoopState = field(init=False, default_factory=LoopState)
    placement: Placement | None = field(init=False, default=None)
    cancel_requested: bool = field(init=False, default=False)
    _text: MessageItem | None = field(init=False, default=None)
    _turn: dict[int, LiveCall[LiveItem]] = field(init=False, default_factory=dict)
    _streamed: bool = field(init=False, default=False)

    def __post_init__(
        self,
        stream: bool,
        tool_output_chars: int,
        include_outputs: bool,
        file_search: FileSearchHandler | None,
        include_results: bool,
    ) -> None:
        self.streams_deltas = stream
        self.items = OutputItems(self.response, self.events, include_outputs, include_results)
        self.code = CodeItems(self.items, self.engine.files, self.owner, tool_output_chars)
        self.search = SearchItems(self.items, file_search)

    @property
    def running(self) -> Session | None:
        """The session running a code call now (a cancel interrupts it)."""
        return self.code.running

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
            parts += tool_text.code_tool_prompt([f.filename for f in await session.list_files()])
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

    def abandoned(self) -> bool:
        return False

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
            index = self.items.add(self._text)
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
            output_index=self.items.index(self._text),
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool_delta(self, delta: ModelDelta) -> None:
        assert delta.tool_index is not None
        live = self._turn.get(delta.tool_index)
        if live is None:
            live = self._turn[delta.tool_index] = LiveCall[LiveItem](call_id=delta.tool_id)
            functions = {f["function"]["name"] for f in self.tools.functions}
            if delta.tool_name == CODE_TOOL and self.tools.code is not None:
                assert self.placement is not None
                live.place = self.code.started(self.placement.session.id)
            elif delta.tool_name == FILE_SEARCH and self.search.handler is not None:
                live.place = self.search.started()
            elif delta.tool_name in functions:
                live.place = FunctionCall(
                    call_id=delta.tool_id, name=delta.tool_name, status="in_progress"
                )
                self.items.add(live.place)
        live.call_id = live.call_id or delta.tool_id
        item = live.place
        if isinstance(item, CodeInterpreterCall):
            self.code.delta(item, live.decoder.feed(delta.arguments))
        elif isinstance(item, FunctionCall) and delta.arguments:
            item.arguments += delta.arguments
            self.events.emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=self.items.index(item),
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
            if isinstance(live.place, FunctionCall):
                live.place.arguments = found.arguments if found else live.place.arguments
                live.place.status = "completed"
                index = self.items.index(live.place)
                self.events.emit(
                    "response.function_call_arguments.done",
                    item_id=live.place.id,
                    output_index=index,
                    arguments=live.place.arguments,
                )
                self.items.done(live.place)
            elif isinstance(live.place, CodeInterpreterCall):
                self.code.done(live.place, live.call_id, found.arguments if found else None)
            elif isinstance(live.place, FileSearchCall):
                self.search.searching(live.place, live.call_id, found.arguments if found else "")
        self._turn = {}

    async def on_code_calls(self, calls: list[ModelToolCall]) -> None:
        return None

    async def on_code_started(
        self, index: int, call: ModelToolCall, code: str, session: Session
    ) -> None:
        self.code.interpreting(call.id, session)

    async def on_code_finished(
        self, index: int, call: ModelToolCall, result: ExecutionResult | None, text: str
    ) -> None:
        fresh = self.placement is not None and self.placement.fresh_after_expiry
        self.code.finished(call.id, result, text, fresh)

    async def on_code_calls_finished(self) -> None:
        return None

    async def on_tool_handled(self, call: ModelToolCall, handler: ToolHandler, text: str) -> None:
        self.search.handled(call, handler)

    async def on_round_finished(self) -> None:
        return None

    # --- the end ---

    async def citations(self, session: Session | None) -> list[ContainerFileCitation]:
        """The container files the final text links to as ``sandbox:/mnt/data/...``."""
        text = self._text.text() if self._text is not None else ""
        if session is None or "sandbox:" not in text:
            return []
        known = {f.path: f.file_id for f in await session.list_files()}
        found = []
        for match in tool_text.SANDBOX_LINK.finditer(text):
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

    def file_citations(self) -> list[FileCitation]:
        """The passages the final text cites with 【n†filename】 marks."""
        return self.search.citations(self._text.text() if self._text is not None else "")

    def finish_text(self, annotations: list[ContainerFileCitation | FileCitation]) -> None:
        item = self._text
        if item is None:
            return
        self._text = None
        index = self.items.index(item)
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
        self.items.done(item)

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
                self.items.done(item)
