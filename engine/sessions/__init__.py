"""Sessions: one sandbox and kernel per conversation thread, and the manager that owns them.

``models`` holds what a session looks like from outside, ``records`` its SQL, ``outputs`` the
export of what its code wrote, ``session`` the live session (built from ``placement``, its
sandbox and kernel; ``data``, its /mnt/data; ``notices``, what its next result reports) and
the engine's own hold on it, ``manager`` their owner and ``recovery`` what a restart finds.
"""

from ..sandbox.base import UPLOAD_PREFIX
from .context import SessionContext, kernel_limits, sandbox_spec
from .manager import SessionManager
from .models import SessionFile, SessionInfo, SessionOptions, SessionStatus
from .outputs import IMAGE_TYPES, KnownFile, OutputExport
from .records import SessionRecords
from .session import Session

__all__ = [
    "IMAGE_TYPES",
    "UPLOAD_PREFIX",
    "KnownFile",
    "OutputExport",
    "Session",
    "SessionContext",
    "SessionFile",
    "SessionInfo",
    "SessionManager",
    "SessionOptions",
    "SessionRecords",
    "SessionStatus",
    "kernel_limits",
    "sandbox_spec",
]
