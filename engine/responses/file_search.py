"""The ``file_search_call`` items of a response: started when the model names the tool,
searching once its queries are known, completed with the results; and the passages the final
text cites."""

from __future__ import annotations

from ..agent.file_search import FileSearchHandler, queries_of
from ..agent.loop import ToolHandler
from ..agent.provider import ModelToolCall
from .models import FileCitation, FileSearchCall, FileSearchResult, MessageItem
from .output_items import OutputItems


class SearchItems(OutputItems):
    """Mixed into ``ResponseRun``, whose attributes these methods use."""

    file_search: FileSearchHandler | None
    searches: dict[str, FileSearchCall]
    _text: MessageItem | None

    def search_started(self) -> FileSearchCall:
        item = FileSearchCall()
        index = self._add(item)
        self.events.emit(
            "response.file_search_call.in_progress", item_id=item.id, output_index=index
        )
        return item

    def searching(self, item: FileSearchCall, call_id: str, arguments: str) -> None:
        item.queries = queries_of(arguments)
        item.status = "searching"
        self.events.emit(
            "response.file_search_call.searching", item_id=item.id, output_index=self._index(item)
        )
        self.searches[call_id] = item

    async def on_tool_handled(self, call: ModelToolCall, handler: ToolHandler, text: str) -> None:
        """The loop's hook: a search ran; its item completes with the results."""
        item = self.searches.pop(call.id, None)
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
        self.events.emit(
            "response.file_search_call.completed",
            item_id=item.id,
            output_index=self._index(item),
        )
        self._done(item)

    def file_citations(self) -> list[FileCitation]:
        """The passages the final text cites with 【n†filename】 marks."""
        text = self._text.text() if self._text is not None else ""
        if self.file_search is None:
            return []
        return [
            FileCitation(file_id=c.file_id, filename=c.filename, index=c.start_index)
            for c in self.file_search.citations(text)
        ]
