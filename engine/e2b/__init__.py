"""The E2B-compatible face of the library: sandboxes with contexts, commands and a filesystem,
made of the engine's sessions. ``engine/api/e2b.py`` serves it over HTTP in E2B's shapes."""

from .commands import Command, CommandEvent, Commands
from .filesystem import EntryInfo, Filesystem
from .records import Context, E2BSandbox
from .sandboxes import DEFAULT_CONTEXT, ENVD_VERSION, TEMPLATES, E2BSandboxes, SandboxPage

__all__ = [
    "DEFAULT_CONTEXT",
    "ENVD_VERSION",
    "TEMPLATES",
    "Command",
    "CommandEvent",
    "Commands",
    "Context",
    "E2BSandbox",
    "E2BSandboxes",
    "EntryInfo",
    "Filesystem",
    "SandboxPage",
]
