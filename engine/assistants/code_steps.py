"""The run steps of a run's code calls: one ``tool_calls`` step a round of them, each call's
``input`` told as the model writes it (when streamed), then its outputs once it ran."""

from __future__ import annotations

from typing import Any

from ..agent import tool_text
from ..agent.code_stream import LiveCall
from ..agent.provider import ModelDelta
from ..results import ExecutionResult
from .events import code_outputs_delta, step_delta
from .models import (
    CodeInterpreterCall,
    CodeOutput,
    ImageFileRef,
    Run,
    RunStep,
    StepDetails,
    ToolCall,
)
from .runs import RunBook


class CodeSteps:
    """Writes the code calls' steps of one run, and tells the run's listeners."""

    def __init__(self, book: RunBook, owner: str, run: Run, output_chars: int) -> None:
        self.book = book
        self.owner = owner
        self.run = run
        self.output_chars = output_chars
        """How much of a call's output its logs keep (``llm_tool_output_chars``)."""
        self._step: RunStep | None = None
        self._code_index: dict[str, int] = {}
        """Each code call of the open step, by call id: its index among the step's tool calls."""
        self._live: dict[int, LiveCall[int]] = {}

    def delta(self, delta: ModelDelta) -> None:
        """A piece of a code call's arguments: the code it completes goes out as ``input``."""
        assert delta.tool_index is not None
        if not any(t.type == "code_interpreter" for t in self.run.tools):
            return
        live = self._live.setdefault(delta.tool_index, LiveCall[int]())
        live.call_id = live.call_id or delta.tool_id
        live.name = live.name or delta.tool_name
        fragment = delta.arguments
        if live.place is None:
            if not live.name:
                live.pending += fragment
                return
            if live.name != tool_text.CODE_TOOL:
                return  # a function call: its step is made when the run requires action
            fragment, live.pending = live.pending + fragment, ""
            self.open_round()
            live.place, tool_call = self._add_call(live.call_id, "")
            self.book.save_step(self.owner, self._open_step())
            self._emit_call(live.place, tool_call.model_dump(mode="json", exclude_none=True))
        code = live.decoder.feed(fragment)
        if code:
            interpreter = self._interpreter(live.place)
            interpreter.input += code
            self._emit_call(live.place, _input_delta(code))

    def turn_ended(self) -> None:
        """The model's turn is whole: the code calls streamed in keep their places in the step."""
        self._code_index = {c.call_id: c.place for c in self._live.values() if c.place is not None}
        self._live = {}

    def open_round(self) -> None:
        """The round's step, made unless the first code call streamed in made it."""
        if self._step is None:
            details = StepDetails(type="tool_calls", tool_calls=[])
            self._step = self.book.new_step(self.owner, self.run, details)

    def call_started(self, call_id: str, code: str) -> None:
        """A code call runs ``code``: its tool call holds all of it, and is saved."""
        position = self._code_index.get(call_id)
        if position is None:
            position, tool_call = self._add_call(call_id, code)
            self._code_index[call_id] = position
            self._emit_call(position, tool_call.model_dump(mode="json", exclude_none=True))
        else:
            interpreter = self._interpreter(position)
            streamed, interpreter.input = interpreter.input, code
            if code != streamed and code.startswith(streamed):  # arguments that were not JSON
                self._emit_call(position, _input_delta(code[len(streamed) :]))
        self.book.save_step(self.owner, self._open_step())  # pollers see the code while it runs

    def call_finished(self, call_id: str, result: ExecutionResult | None, text: str) -> list[str]:
        """A code call ran: its outputs go to its tool call. Returns the images it made."""
        position = self._code_index[call_id]
        outputs = self._interpreter(position).outputs
        images: list[str] = []
        if result is not None:
            logs = tool_text.logs_of(result, self.output_chars)
            if logs:
                outputs.append(CodeOutput(type="logs", logs=logs))
            for out in result.outputs:
                if out.type == "image":
                    outputs.append(
                        CodeOutput(type="image", image=ImageFileRef(file_id=out.file_id))
                    )
                    images.append(out.file_id)
        else:
            outputs.append(CodeOutput(type="logs", logs=text))
        # The SDK accumulates deltas (strings are concatenated): send only what is new.
        self._emit_call(position, code_outputs_delta(outputs))
        return images

    def close_round(self) -> None:
        self.book.complete_step(self.owner, self._open_step())
        self._step, self._code_index = None, {}

    def _add_call(self, call_id: str, code: str) -> tuple[int, ToolCall]:
        """A code call's tool call, added to the open step, and its index there."""
        step = self._open_step()
        tool_call = ToolCall(
            id=call_id,
            type="code_interpreter",
            code_interpreter=CodeInterpreterCall(input=code),
        )
        calls = step.step_details.tool_calls = [*(step.step_details.tool_calls or []), tool_call]
        return len(calls) - 1, tool_call

    def _interpreter(self, index: int) -> CodeInterpreterCall:
        interpreter = (self._open_step().step_details.tool_calls or [])[index].code_interpreter
        assert interpreter is not None
        return interpreter

    def _emit_call(self, index: int, delta: dict[str, Any]) -> None:
        step = self._open_step()
        self.book.events.emit(self.run.id, "thread.run.step.delta", step_delta(step, index, delta))

    def _open_step(self) -> RunStep:
        if self._step is None:
            raise RuntimeError("a code call was reported outside a round of code calls")
        return self._step


def _input_delta(code: str) -> dict[str, Any]:
    return {"type": "code_interpreter", "code_interpreter": {"input": code}}
