"""The synchronous face over the same async core, for scripts and notebooks.

Like httpx's ``Client`` next to ``AsyncClient``: every public method of ``Engine``, ``Session``,
``SessionManager``, ``FileStore`` and the service faces (``engine.responses``, ...) is spelled out
here as a blocking method with the same parameters. The async core runs on an event loop in a
background thread (an anyio blocking portal); each call here waits for its result there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine import SyncEngine
from .files import SyncFiles
from .session import SyncSession, SyncSessions

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # The service faces' twins load with the faces, on first use: `import engine` skips them.
    if name.startswith("Sync") and name in __all__:
        from . import faces

        return getattr(faces, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
