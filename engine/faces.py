"""The library's faces of the services, shaped like the openai SDK's resources:
``engine.responses`` (and ``.input_items``), ``engine.conversations`` (and ``.items``),
``engine.vector_stores`` (and ``.files``, ``.file_batches``), ``engine.assistants``,
``engine.threads`` (and ``.messages``, ``.runs``, ``.runs.steps``).

Each method takes the fields of the HTTP request as keyword arguments, validated by the same
request model, and returns the object the route returns; the routes that do no more than that
call these methods. Lists take the API's paging keywords (``limit``, ``order``, ``after``,
``before``) and return its pages. ``owner`` is the tenant (the library's own, ``""``, unless
given): a tenant sees only what it owns, as behind the server's API keys. Streaming is the HTTP
API's: ``stream=True`` is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, Unpack

from pydantic import BaseModel, ValidationError

from . import errors
from .assistants import file_search_run
from .assistants.models import Assistant, Message, Run, RunStep, Thread
from .assistants.requests import (
    AssistantBody,
    MessageBody,
    MetadataBody,
    RunBody,
    ThreadBody,
    ThreadRunBody,
    ToolOutputsBody,
)
from .assistants.service import AssistantsService, Event
from .config import LIBRARY_OWNER
from .paging import Deleted, Page, Window
from .responses import ResponsesService
from .responses.models import (
    Conversation,
    CreateConversation,
    CreateItems,
    CreateResponse,
    Item,
    Response,
    UpdateConversation,
)
from .retrieval import VectorStores
from .retrieval.models import (
    ContentPage,
    FileBatch,
    SearchPage,
    SearchRequest,
    VectorStore,
    VectorStoreFile,
)
from .retrieval.requests import BatchCreate, FileCreate, FileUpdate, StoreCreate, StoreUpdate

# A method that takes ``**params`` takes ``self`` positionally only: else ``params`` could hold
# a ``self``, and a wrapper could not be typed with the method's own parameters.
M = TypeVar("M", bound=BaseModel)
RUN_STOP_EVENTS = frozenset(
    {
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
    }
)
"""The events after which a run waits for the client, or is over."""
POLL_INTERVAL = 0.1
CODE_OUTPUTS = "code_interpreter_call.outputs"


def request(model: type[M], params: dict[str, Any]) -> M:
    """``params`` as the route's body model reads them; a refusal names the field, as a 400."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        where, what = errors.first_problem(exc)
        raise errors.InvalidRequest(f"{where + ': ' if where else ''}{what}") from None


def _no_stream(stream: bool, instead: str) -> None:
    if stream:
        raise errors.InvalidRequest(f"stream=True is for the HTTP API; in the library, {instead}")


# --- responses and conversations ---


def shown_items(page: Page[Item], include: Iterable[str]) -> Page[Item]:
    """Items as the API lists them: code outputs only when ``include`` asks for them."""
    if CODE_OUTPUTS in include:
        return page
    page.data = [
        item.model_copy(update={"outputs": None}) if item.type == "code_interpreter_call" else item
        for item in page.data
    ]
    return page


def shown(response: Response, include: Iterable[str]) -> Response:
    """The response as the route shows it (code outputs and file_search results only when
    ``include`` asks for them), keeping ``store``, which the route leaves out."""
    return Response.model_validate(response.shown({*include}) | {"store": response.store})


class InputItems:
    """``engine.responses.input_items`` (``client.responses.input_items``)."""

    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def list(
        self,
        response_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[Item]:
        return shown_items(self.service.input_items(owner, response_id, **window), include)


class Responses:
    """``engine.responses``: the Responses API in-process (``client.responses``)."""

    def __init__(self, service: ResponsesService) -> None:
        self.service = service
        self.input_items = InputItems(service)

    async def create(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Response:
        """A response, run to its end (``background=True``: returned at once, to poll with
        ``retrieve``). As the API returns it: code outputs and file_search results only when
        ``include`` asks for them."""
        body = request(CreateResponse, params)
        _no_stream(body.stream, "call create and read the finished response")
        response = await self.service.create(owner, body)
        return shown(response, body.include)

    async def retrieve(
        self, response_id: str, *, owner: str = LIBRARY_OWNER, include: Iterable[str] = ()
    ) -> Response:
        """What ``include`` asks for, and what the response was created asking for."""
        found, created_with = self.service.get(owner, response_id)
        return shown(found, {*include} | created_with)

    async def cancel(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        cancelled = await self.service.cancel(owner, response_id)
        return shown(cancelled, ())

    async def delete(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        await self.service.delete(owner, response_id)
        return Deleted(id=response_id, object="response.deleted")


class ConversationItems:
    """``engine.conversations.items`` (``client.conversations.items``)."""

    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def create(
        self,
        /,
        conversation_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **params: Any,
    ) -> Page[Item]:
        body = request(CreateItems, params)
        added = await self.service.conversations.add_items(owner, conversation_id, body.items)
        return shown_items(Page[Item].of(added, False), include)

    async def list(
        self,
        conversation_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[Item]:
        page = self.service.conversations.items(owner, conversation_id, **window)
        return shown_items(page, include)

    async def retrieve(
        self,
        item_id: str,
        *,
        conversation_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
    ) -> Item:
        item = self.service.conversations.item(owner, conversation_id, item_id)
        return shown_items(Page[Item].of([item], False), include).data[0]

    async def delete(
        self, item_id: str, *, conversation_id: str, owner: str = LIBRARY_OWNER
    ) -> Conversation:
        """The conversation, as the API returns it."""
        return self.service.conversations.delete_item(owner, conversation_id, item_id)


class Conversations:
    """``engine.conversations`` (``client.conversations``), with ``.items``."""

    def __init__(self, service: ResponsesService) -> None:
        self.service = service
        self.items = ConversationItems(service)

    async def create(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Conversation:
        body = request(CreateConversation, params)
        return await self.service.conversations.create(owner, body.items, body.metadata)

    async def retrieve(self, conversation_id: str, *, owner: str = LIBRARY_OWNER) -> Conversation:
        return self.service.conversations.get(owner, conversation_id)

    async def update(
        self, /, conversation_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Conversation:
        body = request(UpdateConversation, params)
        return self.service.conversations.update(owner, conversation_id, body.metadata)

    async def delete(self, conversation_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        self.service.conversations.delete(owner, conversation_id)
        return Deleted(id=conversation_id, object="conversation.deleted")


# --- vector stores ---


Ingested = TypeVar("Ingested", VectorStoreFile, FileBatch)


async def settled(first: Ingested, fetch: Callable[[], Awaitable[Ingested]]) -> Ingested:
    """``first``, or what ``fetch`` says later, once it is no longer in progress."""
    current = first
    while current.status == "in_progress":
        await asyncio.sleep(POLL_INTERVAL)
        current = await fetch()
    return current


class VectorStoreFiles:
    """``engine.vector_stores.files`` (``client.vector_stores.files``)."""

    def __init__(self, service: VectorStores) -> None:
        self.service = service

    async def create(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        """Add a file object (``file_id``) to the store; it is ingested in the background."""
        body = request(FileCreate, params)
        return self.service.add_file(
            vector_store_id,
            body.file_id,
            owner,
            attributes=body.attributes,
            chunking_strategy=body.chunking_strategy,
        )

    async def create_and_poll(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        """``create``, then wait until the file is ingested (or failed, or cancelled)."""
        added = await self.create(vector_store_id, owner=owner, **params)
        return await settled(
            added, lambda: self.retrieve(added.id, vector_store_id=vector_store_id, owner=owner)
        )

    async def retrieve(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> VectorStoreFile:
        return self.service.retrieve_file(vector_store_id, file_id, owner)

    async def update(
        self, /, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        """New ``attributes`` for the file's search results."""
        body = request(FileUpdate, params)
        return self.service.update_file(vector_store_id, file_id, owner, body.attributes)

    async def list(
        self,
        vector_store_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        filter: str | None = None,
        **window: Unpack[Window],
    ) -> Page[VectorStoreFile]:
        """``filter``: only the files in that status (``in_progress``, ``completed``, ...)."""
        return self.service.list_files(vector_store_id, owner, status=filter, **window)

    async def delete(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> Deleted:
        """Out of the store (the file object stays)."""
        self.service.delete_file(vector_store_id, file_id, owner)
        return Deleted(id=file_id, object="vector_store.file.deleted")

    async def content(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> ContentPage:
        """The text the store extracted from the file."""
        return self.service.file_content(vector_store_id, file_id, owner)


class FileBatches:
    """``engine.vector_stores.file_batches`` (``client.vector_stores.file_batches``)."""

    def __init__(self, service: VectorStores) -> None:
        self.service = service

    async def create(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> FileBatch:
        """``file_ids`` (with one ``attributes`` and ``chunking_strategy`` for all), or
        ``files`` (each its own): one of them."""
        body = request(BatchCreate, params)
        if (body.file_ids is None) == (body.files is None):
            raise errors.InvalidRequest("send either file_ids or files (one of them, not both)")
        if body.files is not None:
            files = [(f.file_id, f.attributes, f.chunking_strategy) for f in body.files]
        else:
            files = [(f, body.attributes, body.chunking_strategy) for f in body.file_ids or []]
        return self.service.create_batch(vector_store_id, owner, files)

    async def create_and_poll(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> FileBatch:
        """``create``, then wait until every file in the batch is done with."""
        batch = await self.create(vector_store_id, owner=owner, **params)
        return await settled(
            batch, lambda: self.retrieve(batch.id, vector_store_id=vector_store_id, owner=owner)
        )

    async def retrieve(
        self, batch_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> FileBatch:
        return self.service.retrieve_batch(vector_store_id, batch_id, owner)

    async def cancel(
        self, batch_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> FileBatch:
        return self.service.cancel_batch(vector_store_id, batch_id, owner)

    async def list_files(
        self,
        batch_id: str,
        *,
        vector_store_id: str,
        owner: str = LIBRARY_OWNER,
        filter: str | None = None,
        **window: Unpack[Window],
    ) -> Page[VectorStoreFile]:
        return self.service.list_batch_files(
            vector_store_id, batch_id, owner, status=filter, **window
        )


class VectorStoresFace:
    """``engine.vector_stores`` (``client.vector_stores``), with ``.files`` and
    ``.file_batches``."""

    def __init__(self, service: VectorStores) -> None:
        self.service = service
        self.files = VectorStoreFiles(service)
        self.file_batches = FileBatches(service)

    async def create(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> VectorStore:
        body = request(StoreCreate, params)
        return self.service.create(
            owner,
            name=body.name,
            description=body.description,
            metadata=body.metadata,
            expires_after=body.expires_after,
            file_ids=body.file_ids,
            chunking_strategy=body.chunking_strategy,
        )

    async def retrieve(self, vector_store_id: str, *, owner: str = LIBRARY_OWNER) -> VectorStore:
        return self.service.retrieve(vector_store_id, owner)

    async def update(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStore:
        """``name``, ``metadata``, ``expires_after`` (``None`` removes the expiry)."""
        body = request(StoreUpdate, params)
        return self.service.update(
            vector_store_id,
            owner,
            name=body.name,
            metadata=body.metadata,
            expires_after=body.expires_after,
            clear_expiry="expires_after" in body.model_fields_set and body.expires_after is None,
        )

    async def list(
        self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[VectorStore]:
        return self.service.list_stores(owner, **window)

    async def delete(self, vector_store_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        self.service.delete(vector_store_id, owner)
        return Deleted(id=vector_store_id, object="vector_store.deleted")

    async def search(
        self, /, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> SearchPage:
        """``query`` (a string or strings), and ``max_num_results``, ``filters``,
        ``ranking_options``, ``rewrite_query`` as the API takes them."""
        return await self.service.search([vector_store_id], owner, request(SearchRequest, params))


# --- assistants, threads, messages, runs ---


class AssistantsFace:
    """``engine.assistants`` (``client.beta.assistants``)."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def create(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Assistant:
        fields = request(AssistantBody, params).model_dump(exclude_none=True)
        if "model" not in fields:
            raise errors.InvalidRequest("model is required")
        return self.service.create_assistant(owner, **fields)

    async def retrieve(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Assistant:
        return self.service.get_assistant(owner, assistant_id)

    async def update(
        self, /, assistant_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Assistant:
        """The fields given replace the assistant's (``None`` clears one)."""
        fields = request(AssistantBody, params).model_dump(exclude_unset=True)
        return self.service.update_assistant(owner, assistant_id, **fields)

    async def list(
        self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Assistant]:
        return self.service.list_assistants(owner, **window)

    async def delete(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        self.service.delete_assistant(owner, assistant_id)
        return Deleted(id=assistant_id, object="assistant.deleted")


class Messages:
    """``engine.threads.messages`` (``client.beta.threads.messages``)."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def create(
        self, /, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Message:
        fields = request(MessageBody, params).model_dump(exclude_none=True)
        return self.service.create_message(owner, thread_id, **fields)

    async def retrieve(
        self, message_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER
    ) -> Message:
        return self.service.get_message(owner, thread_id, message_id)

    async def update(
        self, /, message_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Message:
        """New ``metadata``."""
        body = request(MetadataBody, params)
        message = self.service.get_message(owner, thread_id, message_id)
        return self.service.set_metadata(owner, message, body.metadata)

    async def list(
        self,
        thread_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        run_id: str | None = None,
        **window: Unpack[Window],
    ) -> Page[Message]:
        return self.service.list_messages(owner, thread_id, run_id, **window)


class Steps:
    """``engine.threads.runs.steps`` (``client.beta.threads.runs.steps``). ``include``:
    ``step_details.tool_calls[*].file_search.results[*].content`` adds search results' text."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def list(
        self,
        run_id: str,
        *,
        thread_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[RunStep]:
        page = self.service.list_steps(owner, thread_id, run_id, **window)
        page.data = [file_search_run.shown(step, list(include)) for step in page.data]
        return page

    async def retrieve(
        self,
        step_id: str,
        *,
        thread_id: str,
        run_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
    ) -> RunStep:
        step = self.service.get_step(owner, thread_id, run_id, step_id)
        return file_search_run.shown(step, list(include))


Start = Callable[[asyncio.Queue[Event] | None], Awaitable[Run]]
"""Starts or resumes a run, telling its events to the queue given (if any)."""


def run_start(service: AssistantsService, owner: str, thread_id: str, body: RunBody) -> Start:
    fields = body.run_fields()
    return lambda q: service.create_run(owner, thread_id, body.assistant_id, listener=q, **fields)


def thread_run_start(service: AssistantsService, owner: str, body: ThreadRunBody) -> Start:
    """A new thread and a run on it, made once the assistant is found (no thread for
    nothing)."""
    thread = body.thread or ThreadBody()
    fields = body.run_fields()

    async def start(listener: asyncio.Queue[Event] | None) -> Run:
        service.get_assistant(owner, body.assistant_id)
        made = service.create_thread(
            owner,
            [m.model_dump(exclude_none=True) for m in thread.messages or []],
            thread.metadata,
            thread.tool_resources,
        )
        return await service.create_run(
            owner, made.id, body.assistant_id, listener=listener, **fields
        )

    return start


def resume_start(
    service: AssistantsService, owner: str, thread_id: str, run_id: str, body: ToolOutputsBody
) -> Start:
    outputs = [o.model_dump() for o in body.tool_outputs]
    return lambda q: service.submit_tool_outputs(owner, thread_id, run_id, outputs, listener=q)


async def polled(service: AssistantsService, owner: str, start: Start) -> Run:
    """Start the run, then wait until it is over or waits for tool outputs."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    run = await start(queue)
    try:
        while (await queue.get())[0] not in RUN_STOP_EVENTS:
            pass
    finally:
        service.unlisten(run.id, queue)
    return service.get_run(owner, run.thread_id, run.id)


class Runs:
    """``engine.threads.runs`` (``client.beta.threads.runs``), with ``.steps``."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service
        self.steps = Steps(service)

    async def create(self, /, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        """A run of ``assistant_id`` on the thread, started in the background (queued)."""
        return await self._start(thread_id, owner, params)(None)

    async def create_and_poll(
        self, /, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        """``create``, then wait until the run is over or waits for tool outputs."""
        return await polled(self.service, owner, self._start(thread_id, owner, params))

    def _start(self, thread_id: str, owner: str, params: dict[str, Any]) -> Start:
        body = request(RunBody, params)
        _no_stream(body.stream, "call create_and_poll")
        return run_start(self.service, owner, thread_id, body)

    async def retrieve(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return self.service.get_run(owner, thread_id, run_id)

    async def update(
        self, /, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        """New ``metadata``."""
        body = request(MetadataBody, params)
        run = self.service.get_run(owner, thread_id, run_id)
        return self.service.set_metadata(owner, run, body.metadata)

    async def list(
        self, thread_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Run]:
        return self.service.list_runs(owner, thread_id, **window)

    async def cancel(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return await self.service.cancel_run(owner, thread_id, run_id)

    async def submit_tool_outputs(
        self, /, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        """``tool_outputs`` (``tool_call_id``, ``output``) for a run that requires action;
        the run goes on in the background."""
        return await self._resume(run_id, thread_id, owner, params)(None)

    async def submit_tool_outputs_and_poll(
        self, /, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        """``submit_tool_outputs``, then wait until the run is over or waits again."""
        return await polled(self.service, owner, self._resume(run_id, thread_id, owner, params))

    def _resume(self, run_id: str, thread_id: str, owner: str, params: dict[str, Any]) -> Start:
        body = request(ToolOutputsBody, params)
        _no_stream(body.stream, "call submit_tool_outputs_and_poll")
        return resume_start(self.service, owner, thread_id, run_id, body)


class Threads:
    """``engine.threads`` (``client.beta.threads``), with ``.messages`` and ``.runs``."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service
        self.messages = Messages(service)
        self.runs = Runs(service)

    async def create(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Thread:
        body = request(ThreadBody, params)
        messages = [m.model_dump(exclude_none=True) for m in body.messages or []]
        return self.service.create_thread(owner, messages, body.metadata, body.tool_resources)

    async def create_and_run(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        """A new thread (``thread``: its messages, metadata, tool resources) and a run of
        ``assistant_id`` on it, started in the background."""
        return await self._start(owner, params)(None)

    async def create_and_run_poll(self, /, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        """``create_and_run``, then wait until the run is over or waits for tool outputs."""
        return await polled(self.service, owner, self._start(owner, params))

    def _start(self, owner: str, params: dict[str, Any]) -> Start:
        body = request(ThreadRunBody, params)
        _no_stream(body.stream, "call create_and_run_poll")
        return thread_run_start(self.service, owner, body)

    async def retrieve(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Thread:
        return self.service.get_thread(owner, thread_id)

    async def update(
        self, /, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Thread:
        """``metadata``, ``tool_resources``."""
        fields = request(ThreadBody, params).model_dump(exclude_unset=True, exclude={"messages"})
        return self.service.update_thread(owner, thread_id, **fields)

    async def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[Thread]:
        """The tenant's threads (an engine extension: OpenAI has no thread list)."""
        return self.service.list_threads(owner, **window)

    async def delete(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        await self.service.delete_thread(owner, thread_id)
        return Deleted(id=thread_id, object="thread.deleted")
