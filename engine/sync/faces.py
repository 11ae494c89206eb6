"""The blocking twins of the library's service faces (``engine/faces.py``): each method takes
the same parameters and returns the same objects, waiting on the engine's loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Unpack

from ..config import LIBRARY_OWNER
from ..paging import Window
from .portal import Portal

if TYPE_CHECKING:
    from ..assistants.models import Assistant, Message, Run, RunStep, Thread
    from ..assistants.service import AssistantsService
    from ..faces import (
        AssistantsFace,
        ConversationItems,
        Conversations,
        FileBatches,
        InputItems,
        Messages,
        Responses,
        Runs,
        Steps,
        Threads,
        VectorStoreFiles,
        VectorStoresFace,
    )
    from ..paging import Deleted, Page
    from ..responses import ResponsesService
    from ..responses.models import Conversation, Item, Response
    from ..retrieval import VectorStores
    from ..retrieval.models import (
        ContentPage,
        FileBatch,
        SearchPage,
        VectorStore,
        VectorStoreFile,
    )


class SyncInputItems:
    """``engine.responses.input_items`` of a SyncEngine."""

    def __init__(self, face: InputItems, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> ResponsesService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def list(
        self,
        response_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[Item]:
        return self._portal.run(
            self._face.list, response_id, owner=owner, include=include, **window
        )


class SyncResponses:
    """``engine.responses`` of a SyncEngine."""

    def __init__(self, face: Responses, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._input_items = SyncInputItems(face.input_items, portal)

    @property
    def service(self) -> ResponsesService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    @property
    def input_items(self) -> SyncInputItems:
        return self._input_items

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Response:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(
        self, response_id: str, *, owner: str = LIBRARY_OWNER, include: Iterable[str] = ()
    ) -> Response:
        return self._portal.run(self._face.retrieve, response_id, owner=owner, include=include)

    def cancel(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        return self._portal.run(self._face.cancel, response_id, owner=owner)

    def delete(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, response_id, owner=owner)


class SyncConversationItems:
    """``engine.conversations.items`` of a SyncEngine."""

    def __init__(self, face: ConversationItems, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> ResponsesService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(
        self,
        conversation_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **params: Any,
    ) -> Page[Item]:
        return self._portal.run(
            self._face.create, conversation_id, owner=owner, include=include, **params
        )

    def list(
        self,
        conversation_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[Item]:
        return self._portal.run(
            self._face.list, conversation_id, owner=owner, include=include, **window
        )

    def retrieve(
        self,
        item_id: str,
        *,
        conversation_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
    ) -> Item:
        return self._portal.run(
            self._face.retrieve,
            item_id,
            conversation_id=conversation_id,
            owner=owner,
            include=include,
        )

    def delete(
        self, item_id: str, *, conversation_id: str, owner: str = LIBRARY_OWNER
    ) -> Conversation:
        return self._portal.run(
            self._face.delete, item_id, conversation_id=conversation_id, owner=owner
        )


class SyncConversations:
    """``engine.conversations`` of a SyncEngine."""

    def __init__(self, face: Conversations, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._items = SyncConversationItems(face.items, portal)

    @property
    def service(self) -> ResponsesService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    @property
    def items(self) -> SyncConversationItems:
        return self._items

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Conversation:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, conversation_id: str, *, owner: str = LIBRARY_OWNER) -> Conversation:
        return self._portal.run(self._face.retrieve, conversation_id, owner=owner)

    def update(
        self, conversation_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Conversation:
        return self._portal.run(self._face.update, conversation_id, owner=owner, **params)

    def delete(self, conversation_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, conversation_id, owner=owner)


class SyncVectorStoreFiles:
    """``engine.vector_stores.files`` of a SyncEngine."""

    def __init__(self, face: VectorStoreFiles, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> VectorStores:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        return self._portal.run(self._face.create, vector_store_id, owner=owner, **params)

    def create_and_poll(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        return self._portal.run(self._face.create_and_poll, vector_store_id, owner=owner, **params)

    def retrieve(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> VectorStoreFile:
        return self._portal.run(
            self._face.retrieve, file_id, vector_store_id=vector_store_id, owner=owner
        )

    def update(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStoreFile:
        return self._portal.run(
            self._face.update, file_id, vector_store_id=vector_store_id, owner=owner, **params
        )

    def list(
        self,
        vector_store_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        filter: str | None = None,
        **window: Unpack[Window],
    ) -> Page[VectorStoreFile]:
        return self._portal.run(
            self._face.list, vector_store_id, owner=owner, filter=filter, **window
        )

    def delete(self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(
            self._face.delete, file_id, vector_store_id=vector_store_id, owner=owner
        )

    def content(
        self, file_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> ContentPage:
        return self._portal.run(
            self._face.content, file_id, vector_store_id=vector_store_id, owner=owner
        )


class SyncFileBatches:
    """``engine.vector_stores.file_batches`` of a SyncEngine."""

    def __init__(self, face: FileBatches, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> VectorStores:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> FileBatch:
        return self._portal.run(self._face.create, vector_store_id, owner=owner, **params)

    def create_and_poll(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> FileBatch:
        return self._portal.run(self._face.create_and_poll, vector_store_id, owner=owner, **params)

    def retrieve(
        self, batch_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> FileBatch:
        return self._portal.run(
            self._face.retrieve, batch_id, vector_store_id=vector_store_id, owner=owner
        )

    def cancel(
        self, batch_id: str, *, vector_store_id: str, owner: str = LIBRARY_OWNER
    ) -> FileBatch:
        return self._portal.run(
            self._face.cancel, batch_id, vector_store_id=vector_store_id, owner=owner
        )

    def list_files(
        self,
        batch_id: str,
        *,
        vector_store_id: str,
        owner: str = LIBRARY_OWNER,
        filter: str | None = None,
        **window: Unpack[Window],
    ) -> Page[VectorStoreFile]:
        return self._portal.run(
            self._face.list_files,
            batch_id,
            vector_store_id=vector_store_id,
            owner=owner,
            filter=filter,
            **window,
        )


class SyncVectorStores:
    """``engine.vector_stores`` of a SyncEngine."""

    def __init__(self, face: VectorStoresFace, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._files = SyncVectorStoreFiles(face.files, portal)
        self._file_batches = SyncFileBatches(face.file_batches, portal)

    @property
    def service(self) -> VectorStores:
        """The async service, for use on the engine's loop."""
        return self._face.service

    @property
    def files(self) -> SyncVectorStoreFiles:
        return self._files

    @property
    def file_batches(self) -> SyncFileBatches:
        return self._file_batches

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> VectorStore:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, vector_store_id: str, *, owner: str = LIBRARY_OWNER) -> VectorStore:
        return self._portal.run(self._face.retrieve, vector_store_id, owner=owner)

    def update(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> VectorStore:
        return self._portal.run(self._face.update, vector_store_id, owner=owner, **params)

    def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[VectorStore]:
        return self._portal.run(self._face.list, owner=owner, **window)

    def delete(self, vector_store_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, vector_store_id, owner=owner)

    def search(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **params: Any
    ) -> SearchPage:
        return self._portal.run(self._face.search, vector_store_id, owner=owner, **params)


class SyncAssistants:
    """``engine.assistants`` of a SyncEngine."""

    def __init__(self, face: AssistantsFace, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> AssistantsService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Assistant:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Assistant:
        return self._portal.run(self._face.retrieve, assistant_id, owner=owner)

    def update(self, assistant_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Assistant:
        return self._portal.run(self._face.update, assistant_id, owner=owner, **params)

    def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[Assistant]:
        return self._portal.run(self._face.list, owner=owner, **window)

    def delete(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, assistant_id, owner=owner)


class SyncMessages:
    """``engine.threads.messages`` of a SyncEngine."""

    def __init__(self, face: Messages, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> AssistantsService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Message:
        return self._portal.run(self._face.create, thread_id, owner=owner, **params)

    def retrieve(self, message_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Message:
        return self._portal.run(self._face.retrieve, message_id, thread_id=thread_id, owner=owner)

    def update(
        self, message_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Message:
        return self._portal.run(
            self._face.update, message_id, thread_id=thread_id, owner=owner, **params
        )

    def list(
        self,
        thread_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        run_id: str | None = None,
        **window: Unpack[Window],
    ) -> Page[Message]:
        return self._portal.run(self._face.list, thread_id, owner=owner, run_id=run_id, **window)


class SyncSteps:
    """``engine.threads.runs.steps`` of a SyncEngine."""

    def __init__(self, face: Steps, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> AssistantsService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def list(
        self,
        run_id: str,
        *,
        thread_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
        **window: Unpack[Window],
    ) -> Page[RunStep]:
        return self._portal.run(
            self._face.list, run_id, thread_id=thread_id, owner=owner, include=include, **window
        )

    def retrieve(
        self,
        step_id: str,
        *,
        thread_id: str,
        run_id: str,
        owner: str = LIBRARY_OWNER,
        include: Iterable[str] = (),
    ) -> RunStep:
        return self._portal.run(
            self._face.retrieve,
            step_id,
            thread_id=thread_id,
            run_id=run_id,
            owner=owner,
            include=include,
        )


class SyncRuns:
    """``engine.threads.runs`` of a SyncEngine."""

    def __init__(self, face: Runs, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._steps = SyncSteps(face.steps, portal)

    @property
    def service(self) -> AssistantsService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    @property
    def steps(self) -> SyncSteps:
        return self._steps

    def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create, thread_id, owner=owner, **params)

    def create_and_poll(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create_and_poll, thread_id, owner=owner, **params)

    def retrieve(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return self._portal.run(self._face.retrieve, run_id, thread_id=thread_id, owner=owner)

    def update(
        self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        return self._portal.run(
            self._face.update, run_id, thread_id=thread_id, owner=owner, **params
        )

    def list(
        self, thread_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Run]:
        return self._portal.run(self._face.list, thread_id, owner=owner, **window)

    def cancel(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return self._portal.run(self._face.cancel, run_id, thread_id=thread_id, owner=owner)

    def submit_tool_outputs(
        self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        return self._portal.run(
            self._face.submit_tool_outputs, run_id, thread_id=thread_id, owner=owner, **params
        )

    def submit_tool_outputs_and_poll(
        self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER, **params: Any
    ) -> Run:
        return self._portal.run(
            self._face.submit_tool_outputs_and_poll,
            run_id,
            thread_id=thread_id,
            owner=owner,
            **params,
        )


class SyncThreads:
    """``engine.threads`` of a SyncEngine."""

    def __init__(self, face: Threads, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._messages = SyncMessages(face.messages, portal)
        self._runs = SyncRuns(face.runs, portal)

    @property
    def service(self) -> AssistantsService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    @property
    def messages(self) -> SyncMessages:
        return self._messages

    @property
    def runs(self) -> SyncRuns:
        return self._runs

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Thread:
        return self._portal.run(self._face.create, owner=owner, **params)

    def create_and_run(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create_and_run, owner=owner, **params)

    def create_and_run_poll(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create_and_run_poll, owner=owner, **params)

    def retrieve(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Thread:
        return self._portal.run(self._face.retrieve, thread_id, owner=owner)

    def update(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Thread:
        return self._portal.run(self._face.update, thread_id, owner=owner, **params)

    def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[Thread]:
        return self._portal.run(self._face.list, owner=owner, **window)

    def delete(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, thread_id, owner=owner)


__all__ = [
    "SyncAssistants",
    "SyncConversationItems",
    "SyncConversations",
    "SyncFileBatches",
    "SyncInputItems",
    "SyncMessages",
    "SyncResponses",
    "SyncRuns",
    "SyncSteps",
    "SyncThreads",
    "SyncVectorStoreFiles",
    "SyncVectorStores",
]
