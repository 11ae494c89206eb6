"""The output items of a response as its stream tells them: each is added, then done. Code
outputs and search results are shown only when the request includes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import ResponseEvents
from .models import Item, Response


@dataclass(eq=False)
class OutputItems:
    """A response's output list and its stream: what every kind of item is added through."""

    response: Response
    events: ResponseEvents
    include_outputs: bool
    include_results: bool

    def add(self, item: Item) -> int:
        self.response.output.append(item)
        index = len(self.response.output) - 1
        self.events.emit(
            "response.output_item.added",
            output_index=index,
            item=_shown(item, self.include_outputs, self.include_results),
        )
        return index

    def index(self, item: Item) -> int:
        return next(i for i, o in enumerate(self.response.output) if o is item)

    def done(self, item: Item) -> None:
        self.events.emit(
            "response.output_item.done",
            output_index=self.index(item),
            item=_shown(item, self.include_outputs, self.include_results),
        )


def _shown(item: Item, include: bool, results: bool = False) -> dict[str, Any]:
    data = item.model_dump(mode="json")
    if data["type"] == "code_interpreter_call" and not include:
        data["outputs"] = None
    if data["type"] == "file_search_call" and not results:
        data["results"] = None
    return data
