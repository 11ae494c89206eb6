"""One response, driven by the agent loop: its turns become output items and stream events.

``ResponseRun`` is the loop's host. Text and tool-call arguments become items as the model
writes them (when streaming, the provider streams upstream and each piece is an event at once);
a code call's item runs in_progress -> interpreting -> completed around its execution; the final
message cites the container files it links to.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .. import errors
from ..assistants import context
from ..assistants.code_stream import CodeDecoder
from ..assistants.context import CODE_TOOL
from ..assistants.file_search import FileSearchHandler
from ..assistants.loop import LoopHost, LoopState, TokenUsage
from ..assistants.provider import ModelDelta, ModelReply, ModelToolCall
from ..assistants.tools import code_of
from ..core import Engine
from ..results import ExecutionResult
from ..sessions import Session
from .containers import FRESH_NOTE, Placement, place
from .events import ResponseEvents
from .file_search import SearchItems
from .items import message_tokens, truncate
from .models import (
    CodeImage,
    CodeInterpreterCall,
    CodeLogs,
    CodeOutput,
    ContainerFileCitation,
    FileCitation,
    FileSearchCall,
    FunctionCall,
    Item,
    MessageItem,
    OutputText,
    Response,
    Usage,
)
from .tools import FILE_SEARCH, Tools

MAX_IMAGE_URI_BYTES = 8 * 1024 * 1024


@dataclass
class LiveCall:
    """A tool call of the current model turn, as its item."""

    item: CodeInterpreterCall | FunctionCall | FileSearchCall | None
    call_id: str = ""
    decoder: CodeDecoder = field(default_factory=CodeDecoder)


class ResponseRun(SearchItems, LoopHost):
    def __init__(
        self,
        engine: Engine,
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
    ) -> None:
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
        self.file_search: FileSearchHandler | None = None
        """Set by the service when the request has a file_search tool."""
        self.include_results = False
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

    def _add(self, item: Item) -> int:
        self.response.output.append(item)
        index = len(self.response.output) - 1
        self.events.emit(
            "response.output_item.added",
            output_index=index,
            item=_shown(item, self.include_outputs, self.include_results),
        )
        return index

    def _index(self, item: Item) -> int:
        return next(i for i, o in enumerate(self.response.output) if o is item)

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
                if self._over_max_tool_calls():
                    return  # ignored, as OpenAI does: the loop tells the model so
                assert self.placement is not None
                live.item = CodeInterpreterCall(container_id=self.placement.session.id, code="")
                index = self._add(live.item)
                self.events.emit(
                    "response.code_interpreter_call.in_progress",
                    item_id=live.item.id,
                    output_index=index,
                )
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
            code = live.decoder.feed(delta.arguments)
            if code:
                item.code = (item.code or "") + code
                self.events.emit(
                    "response.code_interpreter_call_code.delta",
                    item_id=item.id,
                    output_index=self._index(item),
                    delta=code,
                )
        elif isinstance(item, FunctionCall) and delta.arguments:
            item.arguments += delta.arguments
            self.events.emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=self._index(item),
                delta=delta.arguments,
            )

    def _over_max_tool_calls(self) -> bool:
        cap = self.response.max_tool_calls
        calls = sum(isinstance(item, CodeInterpreterCall) for item in self.response.output)
        return cap is not None and calls >= cap

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
                live.item.code = code_of(found.arguments) if found else live.item.code
                self.events.emit(
                    "response.code_interpreter_call_code.done",
                    item_id=live.item.id,
                    output_index=self._index(live.item),
                    code=live.item.code,
                )
                self._code[live.call_id] = live.item
            elif isinstance(live.item, FileSearchCall):
                self.searching(live.item, live.call_id, found.arguments if found else "")
        self._turn = {}

    def _done(self, item: Item) -> None:
        self.events.emit(
            "response.output_item.done",
            output_index=self._index(item),
            item=_shown(item, self.include_outputs, self.include_results),
        )

    # --- code running ---

    async def on_code_started(
        self, index: int, call: ModelToolCall, code: str, session: Session
    ) -> None:
        item = self._code[call.id]
        item.status = "interpreting"
        self.events.emit(
            "response.code_interpreter_call.interpreting",
            item_id=item.id,
            output_index=self._index(item),
        )
        self.running = session

    async def on_code_finished(
        self, index: int, call: ModelToolCall, result: ExecutionResult | None, text: str
    ) -> None:
        self.running = None
        item = self._code.pop(call.id)
        outputs: list[CodeOutput] = []
        logs = text if result is None else context.logs_of(result, self.tool_output_chars)
        fresh = self.placement is not None and self.placement.fresh_after_expiry
        if fresh and not self._noted:
            logs, self._noted = f"[{FRESH_NOTE}]\n{logs}".rstrip(), True
        if logs:
            outputs.append(CodeLogs(logs=logs))
        for out in result.outputs if result is not None else []:
            if out.type == "image":
                with contextlib.suppress(errors.NotFound, OSError):
                    outputs.append(CodeImage(url=self._image_uri(out.file_id)))
        item.outputs = outputs
        item.status = "completed" if result is not None else "failed"
        self.events.emit(
            "response.code_interpreter_call.completed",
            item_id=item.id,
            output_index=self._index(item),
        )
        self._done(item)

    def _image_uri(self, file_id: str) -> str:
        obj = self.engine.files.retrieve(file_id, self.owner)
        if obj.bytes > MAX_IMAGE_URI_BYTES:
            return f"/v1/files/{obj.id}/content"
        data = self.engine.files.blob_path(obj.id).read_bytes()
        return f"data:{obj.mime_type};base64,{base64.b64encode(data).decode()}"

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
            file_id = known[path] or _container_file_id(session.id, path)
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


def _shown(item: Item, include: bool, results: bool = False) -> dict[str, Any]:
    data = item.model_dump(mode="json")
    if data["type"] == "code_interpreter_call" and not include:
        data["outputs"] = None
    if data["type"] == "file_search_call" and not results:
        data["results"] = None
    return data


def _container_file_id(session_id: str, path: str) -> str:
    """The id ``/v1/containers/{id}/files`` shows for a file that is no file object."""
    digest = hashlib.sha256(f"{session_id}:{path}".encode()).hexdigest()
    return f"cfile_{digest[:32]}"
