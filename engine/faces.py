"""The library's faces of the services, shaped like the openai SDK's resources:
``engine.responses``, ``engine.vector_stores`` (and ``.files``), ``engine.assistants``,
``engine.threads`` (and ``.messages``, ``.runs``).

Each method takes the fields of the HTTP request as keyword arguments, validated by the same
request model, and returns the object the route returns. ``owner`` is the tenant (the library's
own, ``""``, unless given): a tenant sees only what it owns, as behind the server's API keys.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, Unpack

from pydantic import BaseModel, ValidationError

from . import errors
from .assistants.models import Assistant, Message, Run, Thread
from .assistants.requests import AssistantBody, MessageBody, RunBody, ThreadBody
from .assistants.service import AssistantsService, Event
from .paging import Deleted, Page
from .responses import ResponsesService
from .responses.models import CreateResponse, Response
from .retrieval import VectorStores
from .retrieval.models import SearchPage, SearchRequest, VectorStore, VectorStoreFile
from .retrieval.requests import FileCreate, StoreCreate
from .services import LIBRARY_OWNER, Window

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


def request(model: type[M], params: dict[str, Any]) -> M:
    """``params`` as the route's body model reads them; a refusal names the field, as a 400."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise errors.InvalidRequest(f"{where + ': ' if where else ''}{problem['msg']}") from None


def _no_stream(stream: bool, instead: str) -> None:
    if stream:
        raise errors.InvalidRequest(f"stream=True is for the HTTP API; in the library, {instead}")


class Responses:
    """``engine.responses``: the Responses API in-process (``client.responses``)."""

    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Response:
        """A response, run to its end (``background=True``: returned at once, to poll with
        ``retrieve``). Code outputs are in it whatever ``include`` says."""
        body = request(CreateResponse, params)
        _no_stream(body.stream, "call create and read the finished response")
        return await self.service.create(owner, body)

    async def retrieve(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        return self.service.get(owner, response_id)[0]

    async def cancel(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        return await self.service.cancel(owner, response_id)

    async def delete(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        await self.service.delete(owner, response_id)
        return Deleted(id=response_id, object="response.deleted")


class VectorStoreFiles:
    """``engine.vector_stores.files`` (``client.vector_stores.files``)."""

    def __init__(self, service: VectorStores) -> None:
        self.service = service

    async def create(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
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
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        """``create``, then wait until the file is ingested (or failed, or cancelled)."""
        added = await self.create(vector_store_id, owner=owner, **params)
        while added.status == "in_progress":
            await asyncio.sleep(POLL_INTERVAL)
            added = await self.retrieve(added.id, vector_store_id=vector_store_id, owner=owner)
        return added

    async def retrieve(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> VectorStoreFile:
        return self.service.retrieve_file(vector_store_id, file_id, owner)

    async def list(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[VectorStoreFile]:
        return self.service.list_files(vector_store_id, owner, **window)


class VectorStoresFace:
    """``engine.vector_stores`` (``client.vector_stores``)."""

    def __init__(self, service: VectorStores) -> None:
        self.service = service
        self.files = VectorStoreFiles(service)

    async def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> VectorStore:
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

    async def list(
        self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[VectorStore]:
        return self.service.list_stores(owner, **window)

    async def search(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> SearchPage:
        """``query`` (a string or strings), and ``max_num_results``, ``filters``,
        ``ranking_options``, ``rewrite_query`` as the API takes them."""
        return await self.service.search([vector_store_id], owner, request(SearchRequest, params))


class AssistantsFace:
    """``engine.assistants`` (``client.beta.assistants``)."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Assistant:
        fields = request(AssistantBody, params).model_dump(exclude_none=True)
        if "model" not in fields:
            raise errors.InvalidRequest("model is required")
        return self.service.create_assistant(owner, **fields)

    async def retrieve(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Assistant:
        return self.service.get_assistant(owner, assistant_id)

    async def list(
        self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Assistant]:
        return self.service.list_assistants(owner, **window)


class Messages:
    """``engine.threads.messages`` (``client.beta.threads.messages``)."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Message:
        fields = request(MessageBody, params).model_dump(exclude_none=True)
        return self.service.create_message(owner, thread_id, **fields)

    async def list(
        self,
        thread_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        run_id: str | None = None,
        **window: Unpack[Window],
    ) -> Page[Message]:
        return self.service.list_messages(owner, thread_id, run_id, **window)


class Runs:
    """``engine.threads.runs`` (``client.beta.threads.runs``)."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service

    async def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        """A run of ``assistant_id`` on the thread, started in the background (queued)."""
        return await self._start(thread_id, owner, params, None)

    async def create_and_poll(
        self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        """``create``, then wait until the run is over or waits for tool outputs."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        run = await self._start(thread_id, owner, params, queue)
        try:
            while (await queue.get())[0] not in RUN_STOP_EVENTS:
                pass
        finally:
            self.service.unlisten(run.id, queue)
        return self.service.get_run(owner, thread_id, run.id)

    async def _start(
        self,
        thread_id: str,
        owner: str,
        params: dict[str, Any],
        listener: asyncio.Queue[Event] | None,
    ) -> Run:
        body = request(RunBody, params)
        _no_stream(body.stream, "call create_and_poll")
        return await self.service.create_run(
            owner, thread_id, body.assistant_id, listener=listener, **body.run_fields()
        )

    async def retrieve(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return self.service.get_run(owner, thread_id, run_id)

    async def list(
        self, thread_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Run]:
        return self.service.list_runs(owner, thread_id, **window)


class Threads:
    """``engine.threads`` (``client.beta.threads``), with ``.messages`` and ``.runs``."""

    def __init__(self, service: AssistantsService) -> None:
        self.service = service
        self.messages = Messages(service)
        self.runs = Runs(service)

    async def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Thread:
        body = request(ThreadBody, params)
        messages = [m.model_dump(exclude_none=True) for m in body.messages or []]
        return self.service.create_thread(owner, messages, body.metadata, body.tool_resources)

    async def retrieve(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Thread:
        return self.service.get_thread(owner, thread_id)
