"""The blocking twins of the library's service faces (``engine/faces.py``): each method is
made from the async one, takes the same parameters and returns the same objects, waiting on
the engine's loop. Imported on first use, with the faces (``engine.sync`` loads it lazily)."""

from __future__ import annotations

from ..assistants.service import AssistantsService
from ..delegation import through
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
from ..responses import ResponsesService
from ..retrieval import VectorStores
from ..services import Services
from .portal import Portal
from .twin import Twin, blocking, nested

SERVICE = "The async service, for use on the engine's loop."


class SyncInputItems(Twin[InputItems]):
    """``engine.responses.input_items`` of a SyncEngine."""

    service: through[ResponsesService] = through("_face.service", SERVICE)
    list = blocking(InputItems.list)


class SyncResponses(Twin[Responses]):
    """``engine.responses`` of a SyncEngine."""

    service: through[ResponsesService] = through("_face.service", SERVICE)
    input_items = nested(SyncInputItems)
    create = blocking(Responses.create)
    retrieve = blocking(Responses.retrieve)
    cancel = blocking(Responses.cancel)
    delete = blocking(Responses.delete)


class SyncConversationItems(Twin[ConversationItems]):
    """``engine.conversations.items`` of a SyncEngine."""

    service: through[ResponsesService] = through("_face.service", SERVICE)
    create = blocking(ConversationItems.create)
    list = blocking(ConversationItems.list)
    retrieve = blocking(ConversationItems.retrieve)
    delete = blocking(ConversationItems.delete)


class SyncConversations(Twin[Conversations]):
    """``engine.conversations`` of a SyncEngine."""

    service: through[ResponsesService] = through("_face.service", SERVICE)
    items = nested(SyncConversationItems)
    create = blocking(Conversations.create)
    retrieve = blocking(Conversations.retrieve)
    update = blocking(Conversations.update)
    delete = blocking(Conversations.delete)


class SyncVectorStoreFiles(Twin[VectorStoreFiles]):
    """``engine.vector_stores.files`` of a SyncEngine."""

    service: through[VectorStores] = through("_face.service", SERVICE)
    create = blocking(VectorStoreFiles.create)
    create_and_poll = blocking(VectorStoreFiles.create_and_poll)
    retrieve = blocking(VectorStoreFiles.retrieve)
    update = blocking(VectorStoreFiles.update)
    list = blocking(VectorStoreFiles.list)
    delete = blocking(VectorStoreFiles.delete)
    content = blocking(VectorStoreFiles.content)


class SyncFileBatches(Twin[FileBatches]):
    """``engine.vector_stores.file_batches`` of a SyncEngine."""

    service: through[VectorStores] = through("_face.service", SERVICE)
    create = blocking(FileBatches.create)
    create_and_poll = blocking(FileBatches.create_and_poll)
    retrieve = blocking(FileBatches.retrieve)
    cancel = blocking(FileBatches.cancel)
    list_files = blocking(FileBatches.list_files)


class SyncVectorStores(Twin[VectorStoresFace]):
    """``engine.vector_stores`` of a SyncEngine."""

    service: through[VectorStores] = through("_face.service", SERVICE)
    files = nested(SyncVectorStoreFiles)
    file_batches = nested(SyncFileBatches)
    create = blocking(VectorStoresFace.create)
    retrieve = blocking(VectorStoresFace.retrieve)
    update = blocking(VectorStoresFace.update)
    list = blocking(VectorStoresFace.list)
    delete = blocking(VectorStoresFace.delete)
    search = blocking(VectorStoresFace.search)


class SyncAssistants(Twin[AssistantsFace]):
    """``engine.assistants`` of a SyncEngine."""

    service: through[AssistantsService] = through("_face.service", SERVICE)
    create = blocking(AssistantsFace.create)
    retrieve = blocking(AssistantsFace.retrieve)
    update = blocking(AssistantsFace.update)
    list = blocking(AssistantsFace.list)
    delete = blocking(AssistantsFace.delete)


class SyncMessages(Twin[Messages]):
    """``engine.threads.messages`` of a SyncEngine."""

    service: through[AssistantsService] = through("_face.service", SERVICE)
    create = blocking(Messages.create)
    retrieve = blocking(Messages.retrieve)
    update = blocking(Messages.update)
    list = blocking(Messages.list)


class SyncSteps(Twin[Steps]):
    """``engine.threads.runs.steps`` of a SyncEngine."""

    service: through[AssistantsService] = through("_face.service", SERVICE)
    list = blocking(Steps.list)
    retrieve = blocking(Steps.retrieve)


class SyncRuns(Twin[Runs]):
    """``engine.threads.runs`` of a SyncEngine."""

    service: through[AssistantsService] = through("_face.service", SERVICE)
    steps = nested(SyncSteps)
    create = blocking(Runs.create)
    create_and_poll = blocking(Runs.create_and_poll)
    retrieve = blocking(Runs.retrieve)
    update = blocking(Runs.update)
    list = blocking(Runs.list)
    cancel = blocking(Runs.cancel)
    submit_tool_outputs = blocking(Runs.submit_tool_outputs)
    submit_tool_outputs_and_poll = blocking(Runs.submit_tool_outputs_and_poll)


class SyncThreads(Twin[Threads]):
    """``engine.threads`` of a SyncEngine."""

    service: through[AssistantsService] = through("_face.service", SERVICE)
    messages = nested(SyncMessages)
    runs = nested(SyncRuns)
    create = blocking(Threads.create)
    create_and_run = blocking(Threads.create_and_run)
    create_and_run_poll = blocking(Threads.create_and_run_poll)
    retrieve = blocking(Threads.retrieve)
    update = blocking(Threads.update)
    list = blocking(Threads.list)
    delete = blocking(Threads.delete)


class SyncServices:
    """The twins of one engine's faces, beside its file search and model provider (async
    objects, for the engine's loop)."""

    def __init__(self, services: Services, portal: Portal) -> None:
        self.file_search = services.file_search
        self.provider = services.provider
        self.responses = SyncResponses(services.responses, portal)
        self.conversations = SyncConversations(services.conversations, portal)
        self.vector_stores = SyncVectorStores(services.vector_stores, portal)
        self.assistants = SyncAssistants(services.assistants, portal)
        self.threads = SyncThreads(services.threads, portal)


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
