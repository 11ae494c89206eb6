"""Sandbox Engine: run model-written code in Jupyter kernels inside locked-down containers."""

from .config import Settings
from .errors import (
    EngineError,
    InvalidRequest,
    SessionClosed,
    SessionNotFound,
)
from .results import (
    DisplayEvent,
    DoneEvent,
    ErrorEvent,
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    ResultEvent,
    StreamEvent,
)
from .services import Engine
from .sessions import Session
from .sync import SyncEngine, SyncSession

__all__ = [
    "DisplayEvent",
    "DoneEvent",
    "Engine",
    "EngineError",
    "ErrorEvent",
    "ErrorInfo",
    "ExecutionResult",
    "ExecutionStatus",
    "InvalidRequest",
    "ResultEvent",
    "Session",
    "SessionClosed",
    "SessionNotFound",
    "Settings",
    "StreamEvent",
    "SyncEngine",
    "SyncSession",
]
