"""The messages a run writes, as the model writes them: created, text deltas, then completed.

A message opens with the first piece of text of a model turn (or with the answer, if that is
empty), led by the images the run's code made since the run's last message. It completes when
the model's turn moves on to tool calls, or with the answer; then its ``sandbox:/mnt/data/...``
links get their ``file_path`` annotations, sent as one last delta. A run that stops early keeps
what the model had written, as an incomplete message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ..agent.tool_text import SANDBOX_LINK
from ..sessions import Session
from .events import message_delta
from .models import (
    Annotation,
    ContentPart,
    FilePathRef,
    ImageFileRef,
    Message,
    MessageCreation,
    MessageRole,
    MessageStatus,
    Run,
    RunStep,
    StepDetails,
    TextValue,
    new_id,
    now,
)
from .runs import RunBook
from .state import RunState


@dataclass(eq=False)
class MessageWriter:
    book: RunBook
    owner: str
    run: Run
    _message: Message | None = field(init=False, default=None)
    _step: RunStep | None = field(init=False, default=None)
    citations: Callable[[str], list[Annotation]] | None = field(init=False, default=None)
    """Annotations besides file links (file_search's file_citation), from the text."""

    def text(self, text: str, state: RunState) -> None:
        """A piece of the model's text: to the open message, or to a new one."""
        message = self._message
        if message is not None and not text:
            return
        first = message is None
        message = message or self._open(state)
        part = message.content[-1].text
        assert part is not None
        part.value += text
        # The first delta carries the annotations list, so that the SDK's snapshot is whole.
        value: dict[str, Any] = {"value": text, **({"annotations": []} if first else {})}
        self._emit(message, {"index": len(message.content) - 1, "type": "text", "text": value})

    def _open(self, state: RunState) -> Message:
        run, events = self.run, self.book.events
        message = self._message = Message(
            id=new_id("msg"),
            created_at=now(),
            thread_id=run.thread_id,
            role=MessageRole.ASSISTANT,
            content=[],
            assistant_id=run.assistant_id,
            run_id=run.id,
            status=MessageStatus.IN_PROGRESS,
        )
        creation = MessageCreation(message_id=message.id)
        self._step = self.book.new_step(
            self.owner, run, StepDetails(type="message_creation", message_creation=creation)
        )
        events.emit(run.id, "thread.message.created", message)
        events.emit(run.id, "thread.message.in_progress", message)
        for index, file_id in enumerate(dict.fromkeys(state.images)):
            part = ContentPart(type="image_file", image_file=ImageFileRef(file_id=file_id))
            events.emit(run.id, "thread.message.delta", message_delta(message.id, index, part))
            message.content.append(part)
        state.images = []
        message.content.append(ContentPart(type="text", text=TextValue(value="", annotations=[])))
        return message

    async def close(self, session: Session | None) -> None:
        """The open message is complete: stored, its links to files annotated."""
        message, step = self._message, self._step
        if message is None or step is None:
            return
        self._message = self._step = None
        text = message.content[-1].text
        assert text is not None
        text.annotations = await _annotations(text.value, session)
        if session is not None:  # a message cites them for as long as the thread lives
            session.keep_outputs(a.file_path.file_id for a in text.annotations if a.file_path)
        if self.citations is not None:
            text.annotations += self.citations(text.value)
            text.annotations.sort(key=lambda a: a.start_index)
        if text.annotations:
            annotations = [
                {"index": n, **a.model_dump(mode="json", exclude_none=True)}
                for n, a in enumerate(text.annotations)
            ]
            value = {"value": "", "annotations": annotations}
            self._emit(message, {"index": len(message.content) - 1, "type": "text", "text": value})
        message.status, message.completed_at = MessageStatus.COMPLETED, now()
        self.book.repo.put(message, "message", self.owner, self.run.thread_id)
        self.book.events.emit(self.run.id, "thread.message.completed", message)
        self.book.complete_step(self.owner, step)

    def abandon(self, cancelled: bool) -> None:
        """The run stops early: the open message is kept as far as the model wrote it."""
        message = self._message
        if message is None:
            return
        self._message = self._step = None
        message.status, message.incomplete_at = MessageStatus.INCOMPLETE, now()
        message.incomplete_details = {"reason": "run_cancelled" if cancelled else "run_failed"}
        self.book.repo.put(message, "message", self.owner, self.run.thread_id)
        self.book.events.emit(self.run.id, "thread.message.incomplete", message)

    def _emit(self, message: Message, content: dict[str, Any]) -> None:
        delta = {
            "id": message.id,
            "object": "thread.message.delta",
            "delta": {"content": [content]},
        }
        self.book.events.emit(self.run.id, "thread.message.delta", delta)


async def _annotations(text: str, session: Session | None) -> list[Annotation]:
    """A ``file_path`` annotation for each ``sandbox:/mnt/data/...`` link to a file there."""
    if session is None or "sandbox:" not in text:
        return []
    known = {f.path: f.file_id for f in await session.list_files()}
    annotations = []
    for match in SANDBOX_LINK.finditer(text):
        link = match.group(0).rstrip(".,;:!?")  # "... at sandbox:/mnt/data/out.csv."
        path = link.removeprefix("sandbox:")
        file_id = known.get(path) or known.get(unquote(path))
        if file_id:
            annotations.append(
                Annotation(
                    text=link,
                    start_index=match.start(),
                    end_index=match.start() + len(link),
                    file_path=FilePathRef(file_id=file_id),
                )
            )
    return annotations
