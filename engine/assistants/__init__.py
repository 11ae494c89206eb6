"""The Assistants v2 objects (assistants, threads, messages, runs and their steps), their runs
driven by the agent loop (``engine.agent``)."""

from .service import AssistantsService

__all__ = ["AssistantsService"]
