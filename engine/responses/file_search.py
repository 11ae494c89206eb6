"""The ``file_search_call`` items of a response: started when the model names the tool,
searching once its queries are known, completed with the results; and the passages the final
text cites."""

from __future__ import annotations

from ..agent.file_search import FileSearchHandler, queries_of
from ..agent.loop import ToolHandler
from ..agent.provider import ModelToolCall
from .models import FileCitation, FileSearchCall, FileSearchResult
from .output_items import OutputItems


class SearchItems:
    """The file_search calls' items of one response, searched through ``handler``."""

    def __init__(self, items: OutputItems, handler: FileSearchHandler | None) -> None:
        """``handler``: the request's file_search tool, if it has one."""
        self.items = items
        self.handler = handler
        self._by_call: dict[str, FileSearchCall] = {}

    def started(self) -> FileSearchCall:
        item = FileSearchCall()
        index = self.items.add(item)
        self.items.events.emit(
            "response.file_search_call.in_progress", item_id=item.id, output_index=index
        )
        return item

    def searching(self, item: FileSearchCall, call_id: str, arguments: str) -> None:
        item.queries = queries_of(arguments)
        item.status = "searching"
        self.items.events.emit(
            "response.file_search_call.searching",
            item_id=item.id,
            output_index=self.items.index(item),
        )
        self._by_call[call_id] = item

    def handled(self, call: ModelToolCall, handler: ToolHandler) -> None:
        """A search ran; its item completes with the results."""
        item = self._by_call.pop(call.id, None)
        if item is None or not isinstance(handler, FileSearchHandler):
            return
        search = handler.calls[-1]
        item.results = [
            FileSearchResult(
                file_id=r.file_id,
                filename=r.filename,
                score=r.score,
                text="\n".join(c.text for c in r.content),
                attributes=r.attributes,
            )
            for r in search.results
        ]
        item.status = "failed" if search.error else "completed"
        self.items.events.emit(
            "response.file_search_call.completed",
            item_id=item.id,
            output_index=self.items.index(item),
        )
        self.items.done(item)

    def citations(self, text: str) -> list[FileCitation]:
        """The passages ``text`` cites with 【n†filename】 marks."""
        if self.handler is None:
            return []
        return [
            FileCitation(file_id=c.file_id, filename=c.filename, index=c.start_index)
            for c in self.handler.citations(text)
        ]
