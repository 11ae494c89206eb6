"""The blocking twins of the library's service faces (``engine/faces.py``): each method takes
the same parameters and returns the same objects, waiting on the engine's loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Unpack

from ..services import LIBRARY_OWNER, Window
from .portal import Portal

if TYPE_CHECKING:
    from ..assistants.models import Assistant, Message, Run, Thread
    from ..assistants.service import AssistantsService
    from ..faces import (
        AssistantsFace,
        Messages,
        Responses,
        Runs,
        Threads,
        VectorStoreFiles,
        VectorStoresFace,
    )
    from ..paging import Deleted, Page
    from ..responses import ResponsesService
    from ..responses.models import Response
    from ..retrieval import VectorStores
    from ..retrieval.models import SearchPage, VectorStore, VectorStoreFile


class SyncResponses:
    """``engine.responses`` of a SyncEngine."""

    def __init__(self, face: Responses, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> ResponsesService:
        """The async service, for use on the engine's loop."""
        return self._face.service

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Response:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        return self._portal.run(self._face.retrieve, response_id, owner=owner)

    def cancel(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Response:
        return self._portal.run(self._face.cancel, response_id, owner=owner)

    def delete(self, response_id: str, *, owner: str = LIBRARY_OWNER) -> Deleted:
        return self._portal.run(self._face.delete, response_id, owner=owner)


class SyncVectorStoreFiles:
    """``engine.vector_stores.files`` of a SyncEngine."""

    def __init__(self, face: VectorStoreFiles, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> VectorStores:
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

    def list(
        self, vector_store_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[VectorStoreFile]:
        return self._portal.run(self._face.list, vector_store_id, owner=owner, **window)


class SyncVectorStores:
    """``engine.vector_stores`` of a SyncEngine."""

    def __init__(self, face: VectorStoresFace, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._files = SyncVectorStoreFiles(face.files, portal)

    @property
    def service(self) -> VectorStores:
        return self._face.service

    @property
    def files(self) -> SyncVectorStoreFiles:
        return self._files

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> VectorStore:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, vector_store_id: str, *, owner: str = LIBRARY_OWNER) -> VectorStore:
        return self._portal.run(self._face.retrieve, vector_store_id, owner=owner)

    def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[VectorStore]:
        return self._portal.run(self._face.list, owner=owner, **window)

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
        return self._face.service

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Assistant:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, assistant_id: str, *, owner: str = LIBRARY_OWNER) -> Assistant:
        return self._portal.run(self._face.retrieve, assistant_id, owner=owner)

    def list(self, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]) -> Page[Assistant]:
        return self._portal.run(self._face.list, owner=owner, **window)


class SyncMessages:
    """``engine.threads.messages`` of a SyncEngine."""

    def __init__(self, face: Messages, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> AssistantsService:
        return self._face.service

    def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Message:
        return self._portal.run(self._face.create, thread_id, owner=owner, **params)

    def list(
        self,
        thread_id: str,
        *,
        owner: str = LIBRARY_OWNER,
        run_id: str | None = None,
        **window: Unpack[Window],
    ) -> Page[Message]:
        return self._portal.run(self._face.list, thread_id, owner=owner, run_id=run_id, **window)


class SyncRuns:
    """``engine.threads.runs`` of a SyncEngine."""

    def __init__(self, face: Runs, portal: Portal) -> None:
        self._face = face
        self._portal = portal

    @property
    def service(self) -> AssistantsService:
        return self._face.service

    def create(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create, thread_id, owner=owner, **params)

    def create_and_poll(self, thread_id: str, *, owner: str = LIBRARY_OWNER, **params: Any) -> Run:
        return self._portal.run(self._face.create_and_poll, thread_id, owner=owner, **params)

    def retrieve(self, run_id: str, *, thread_id: str, owner: str = LIBRARY_OWNER) -> Run:
        return self._portal.run(self._face.retrieve, run_id, thread_id=thread_id, owner=owner)

    def list(
        self, thread_id: str, *, owner: str = LIBRARY_OWNER, **window: Unpack[Window]
    ) -> Page[Run]:
        return self._portal.run(self._face.list, thread_id, owner=owner, **window)


class SyncThreads:
    """``engine.threads`` of a SyncEngine, with ``.messages`` and ``.runs``."""

    def __init__(self, face: Threads, portal: Portal) -> None:
        self._face = face
        self._portal = portal
        self._messages = SyncMessages(face.messages, portal)
        self._runs = SyncRuns(face.runs, portal)

    @property
    def service(self) -> AssistantsService:
        return self._face.service

    @property
    def messages(self) -> SyncMessages:
        return self._messages

    @property
    def runs(self) -> SyncRuns:
        return self._runs

    def create(self, *, owner: str = LIBRARY_OWNER, **params: Any) -> Thread:
        return self._portal.run(self._face.create, owner=owner, **params)

    def retrieve(self, thread_id: str, *, owner: str = LIBRARY_OWNER) -> Thread:
        return self._portal.run(self._face.retrieve, thread_id, owner=owner)


__all__ = [
    "SyncAssistants",
    "SyncMessages",
    "SyncResponses",
    "SyncRuns",
    "SyncThreads",
    "SyncVectorStoreFiles",
    "SyncVectorStores",
]
