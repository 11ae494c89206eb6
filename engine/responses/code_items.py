"""The ``code_interpreter_call`` items of a response: in_progress when the model names the
tool, its code streamed as the model writes it, interpreting while it runs, then completed with
its logs and images."""

from __future__ import annotations

import base64
import contextlib

from .. import errors
from ..agent import tool_text
from ..agent.tool_text import code_of
from ..files import FileStore
from ..results import ExecutionResult
from ..sessions import Session
from .containers import FRESH_NOTE
from .models import CodeImage, CodeInterpreterCall, CodeLogs, CodeOutput
from .output_items import OutputItems

MAX_IMAGE_URI_BYTES = 8 * 1024 * 1024


class CodeItems:
    """The code calls' items of one response, and the session running one now."""

    def __init__(self, items: OutputItems, files: FileStore, owner: str, output_chars: int) -> None:
        self.items = items
        self.files = files
        self.owner = owner
        self.output_chars = output_chars
        """How much of a call's output its logs keep (``llm_tool_output_chars``)."""
        self.running: Session | None = None
        """The session running a call now (a cancel interrupts it)."""
        self._by_call: dict[str, CodeInterpreterCall] = {}
        self._noted = False

    def started(self, container_id: str) -> CodeInterpreterCall | None:
        """The item of a code call the model starts; None past ``max_tool_calls``."""
        if self._over_max_tool_calls():
            return None  # ignored, as OpenAI does: the loop tells the model so
        item = CodeInterpreterCall(container_id=container_id, code="")
        index = self.items.add(item)
        self.items.events.emit(
            "response.code_interpreter_call.in_progress",
            item_id=item.id,
            output_index=index,
        )
        return item

    def _over_max_tool_calls(self) -> bool:
        response = self.items.response
        calls = sum(isinstance(item, CodeInterpreterCall) for item in response.output)
        return response.max_tool_calls is not None and calls >= response.max_tool_calls

    def delta(self, item: CodeInterpreterCall, code: str) -> None:
        if code:
            item.code = (item.code or "") + code
            self.items.events.emit(
                "response.code_interpreter_call_code.delta",
                item_id=item.id,
                output_index=self.items.index(item),
                delta=code,
            )

    def done(self, item: CodeInterpreterCall, call_id: str, arguments: str | None) -> None:
        """The model's turn ended: the call's code is whole (its ``arguments``, if it came)."""
        item.code = code_of(arguments) if arguments is not None else item.code
        self.items.events.emit(
            "response.code_interpreter_call_code.done",
            item_id=item.id,
            output_index=self.items.index(item),
            code=item.code,
        )
        self._by_call[call_id] = item

    def interpreting(self, call_id: str, session: Session) -> None:
        item = self._by_call[call_id]
        item.status = "interpreting"
        self.items.events.emit(
            "response.code_interpreter_call.interpreting",
            item_id=item.id,
            output_index=self.items.index(item),
        )
        self.running = session

    def finished(
        self, call_id: str, result: ExecutionResult | None, text: str, fresh: bool
    ) -> None:
        """The call ran; ``fresh``: its container was made anew after the chain's expired."""
        self.running = None
        item = self._by_call.pop(call_id)
        outputs: list[CodeOutput] = []
        logs = text if result is None else tool_text.logs_of(result, self.output_chars)
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
        self.items.events.emit(
            "response.code_interpreter_call.completed",
            item_id=item.id,
            output_index=self.items.index(item),
        )
        self.items.done(item)

    def _image_uri(self, file_id: str) -> str:
        obj = self.files.retrieve(file_id, self.owner)
        if obj.bytes > MAX_IMAGE_URI_BYTES:  # the item links to it: it must outlive the session
            self.files.keep(obj.id, self.owner)
            return f"/v1/files/{obj.id}/content"
        with self.files.open_blob(obj.id) as src:  # at most MAX_IMAGE_URI_BYTES
            data = src.read()
        return f"data:{obj.mime_type};base64,{base64.b64encode(data).decode()}"
