"""file_search in an Assistants run: the run's vector stores (the assistant's, the thread's,
and a thread store built from message attachments), a run step per search, citations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .. import errors
from ..agent.file_search import FileSearchHandler
from ..agent.provider import ModelToolCall
from ..retrieval import VectorStores
from ..retrieval.models import ExpiresAfter
from .models import (
    Annotation,
    Assistant,
    FileCitationRef,
    FileSearchCall,
    FileSearchConfig,
    FileSearchResources,
    FileSearchResult,
    FileSearchResultContent,
    Message,
    Run,
    RunStep,
    StepDetails,
    Thread,
    ToolCall,
    ToolResources,
)
from .repository import Repository
from .runs import RunBook

INGEST_WAIT = 300.0
CONTENT_INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


async def run_handler(
    stores: VectorStores | None,
    repo: Repository,
    owner: str,
    run: Run,
    assistant: Assistant,
    cancelled: Callable[[], bool],
) -> FileSearchHandler | None:
    """The run's file_search handler, or None when the run has no file_search tool."""
    tool = next((t for t in run.tools if t.type == "file_search"), None)
    if tool is None:
        return None
    if stores is None:
        raise errors.InvalidRequest("file_search is not available in this engine")
    thread = repo.get(Thread, "thread", run.thread_id, owner)
    await _attachments_store(stores, repo, owner, thread, cancelled)
    ids: list[str] = []
    for resources in (assistant.tool_resources, thread.tool_resources):
        if resources and resources.file_search:
            ids += resources.file_search.vector_store_ids
    usable = []
    for store_id in dict.fromkeys(ids):
        try:
            stores.usable(store_id, owner)
            usable.append(store_id)
        except errors.EngineError:  # deleted or expired since: the others are still searched
            continue
    config = tool.file_search or FileSearchConfig()
    return FileSearchHandler(
        stores,
        owner,
        usable,
        max_num_results=config.max_num_results or 20,
        ranking_options=config.ranking_options,
    )


async def _attachments_store(
    stores: VectorStores,
    repo: Repository,
    owner: str,
    thread: Thread,
    cancelled: Callable[[], bool],
) -> None:
    """Files attached to messages for file_search go into the thread's vector store, made on
    the fly (it expires 7 days after its last use, as OpenAI's does); the run waits for them."""
    wanted = [
        a.file_id
        for m in repo.all(Message, "message", owner, thread.id)
        for a in m.attachments
        if any(t.get("type") == "file_search" for t in a.tools)
    ]
    if not wanted:
        return
    resources = thread.tool_resources or ToolResources()
    current = resources.file_search.vector_store_ids if resources.file_search else []
    if current:
        store_id = current[0]
    else:
        store = stores.create(owner, name=f"thread {thread.id}", expires_after=ExpiresAfter(days=7))
        store_id = store.id
        resources.file_search = FileSearchResources(vector_store_ids=[store_id])
        thread.tool_resources = resources
        repo.put(thread, "thread", owner)
    for file_id in dict.fromkeys(wanted):
        try:
            stores.retrieve_file(store_id, file_id, owner)
        except errors.NotFound:
            try:
                stores.add_file(store_id, file_id, owner)
            except errors.EngineError:  # deleted or unsupported: the run goes on without it
                continue
    deadline = time.monotonic() + INGEST_WAIT
    while stores.retrieve(store_id, owner).file_counts.in_progress:
        if cancelled() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


def record_step(
    book: RunBook, owner: str, run: Run, call: ModelToolCall, handler: FileSearchHandler
) -> None:
    """One completed tool_calls step per search, its results kept with their content."""
    search = handler.calls[-1]
    ranking = handler.ranking_options
    results = [
        FileSearchResult(
            file_id=r.file_id,
            file_name=r.filename,
            score=r.score,
            content=[FileSearchResultContent(text=c.text) for c in r.content],
        )
        for r in search.results
    ]
    call_details = FileSearchCall(
        ranking_options={
            "ranker": ranking.ranker if ranking else "auto",
            "score_threshold": ranking.score_threshold if ranking else 0.0,
        },
        results=results,
    )
    tool_call = ToolCall(id=call.id, type="file_search", file_search=call_details)
    step = book.new_step(owner, run, StepDetails(type="tool_calls", tool_calls=[tool_call]))
    book.complete_step(owner, step)


def citations(handler: FileSearchHandler | None, text: str) -> list[Annotation]:
    if handler is None:
        return []
    return [
        Annotation(
            type="file_citation",
            text=c.text,
            start_index=c.start_index,
            end_index=c.end_index,
            file_citation=FileCitationRef(file_id=c.file_id),
        )
        for c in handler.citations(text)
    ]


def shown(step: RunStep, include: list[str]) -> RunStep:
    """A step as the API shows it: search results carry their content only when asked."""
    if CONTENT_INCLUDE in include or step.type != "tool_calls":
        return step
    calls = step.step_details.tool_calls or []
    if not any(c.file_search for c in calls):
        return step
    copy = step.model_copy(deep=True)
    for c in copy.step_details.tool_calls or []:
        if c.file_search is not None:
            for result in c.file_search.results:
                result.content = None
    return copy
