"""The synchronous face over the same async core, for scripts and notebooks.

Like httpx's ``Client`` next to ``AsyncClient``: every public method of ``Engine``, ``Session``,
``SessionManager``, ``FileStore`` and the service faces (``engine.responses``, ...) is spelled out
here as a blocking method with the same parameters. The async core runs on an event loop in a
background thread (an anyio blocking portal); each call here waits for its result there.
"""

from .engine import SyncEngine
from .faces import (
    SyncAssistants,
    SyncConversationItems,
    SyncConversations,
    SyncFileBatches,
    SyncInputItems,
    SyncMessages,
    SyncResponses,
    SyncRuns,
    SyncSteps,
    SyncThreads,
    SyncVectorStoreFiles,
    SyncVectorStores,
)
from .files import SyncFiles
from .session import SyncSession, SyncSessions

__all__ = [
    "SyncAssistants",
    "SyncConversationItems",
    "SyncConversations",
    "SyncEngine",
    "SyncFileBatches",
    "SyncFiles",
    "SyncInputItems",
    "SyncMessages",
    "SyncResponses",
    "SyncRuns",
    "SyncSession",
    "SyncSessions",
    "SyncSteps",
    "SyncThreads",
    "SyncVectorStoreFiles",
    "SyncVectorStores",
]
