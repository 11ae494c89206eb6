"""The ``code_interpreter_call`` items of a response: in_progress when the model names the
tool, its code streamed as the model writes it, interpreting while it runs, then completed with
its logs and images."""

from __future__ import annotations

import base64
import contextlib

from .. import errors
from ..agent import tool_text
from ..agent.provider import ModelToolCall
from ..agent.tool_text import code_of
from ..results import ExecutionResult
from ..runtime import Runtime
from ..sessions import Session
from .containers import FRESH_NOTE, Placement
from .models import CodeImage, CodeInterpreterCall, CodeLogs, CodeOutput
from .output_items import OutputItems

MAX_IMAGE_URI_BYTES = 8 * 1024 * 1024


class CodeItems(OutputItems):
    """Mixed into ``ResponseRun``, whose attributes these methods use."""

    engine: Runtime
    owner: str
    tool_output_chars: int
    placement: Placement | None
    running: Session | None
    _code: dict[str, CodeInterpreterCall]
    _noted: bool

    def code_started(self) -> CodeInterpreterCall | None:
        """The item of a code call the model starts; None past ``max_tool_calls``."""
        if self._over_max_tool_calls():
            return None  # ignored, as OpenAI does: the loop tells the model so
        assert self.placement is not None
        item = CodeInterpreterCall(container_id=self.placement.session.id, code="")
        index = self._add(item)
        self.events.emit(
            "response.code_interpreter_call.in_progress",
            item_id=item.id,
            output_index=index,
        )
        return item

    def _over_max_tool_calls(self) -> bool:
        cap = self.response.max_tool_calls
        calls = sum(isinstance(item, CodeInterpreterCall) for item in self.response.output)
        return cap is not None and calls >= cap

    def code_delta(self, item: CodeInterpreterCall, code: str) -> None:
        if code:
            item.code = (item.code or "") + code
            self.events.emit(
                "response.code_interpreter_call_code.delta",
                item_id=item.id,
                output_index=self._index(item),
                delta=code,
            )

    def code_done(self, item: CodeInterpreterCall, call_id: str, arguments: str | None) -> None:
        """The model's turn ended: the call's code is whole (its ``arguments``, if it came)."""
        item.code = code_of(arguments) if arguments is not None else item.code
        self.events.emit(
            "response.code_interpreter_call_code.done",
            item_id=item.id,
            output_index=self._index(item),
            code=item.code,
        )
        self._code[call_id] = item

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
        logs = text if result is None else tool_text.logs_of(result, self.tool_output_chars)
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
        if obj.bytes > MAX_IMAGE_URI_BYTES:  # the item links to it: it must outlive the session
            self.engine.files.keep(obj.id, self.owner)
            return f"/v1/files/{obj.id}/content"
        data = self.engine.files.blob_path(obj.id).read_bytes()
        return f"data:{obj.mime_type};base64,{base64.b64encode(data).decode()}"
