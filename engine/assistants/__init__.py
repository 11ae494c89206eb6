"""The agent loop (``loop``), model providers, and the Assistants v2 objects it drives."""

from .loop import AgentLoop, LoopHost, LoopRequest, LoopResult, LoopState, Outcome
from .provider import ModelProvider, OpenAIChatProvider
from .service import AssistantsService

__all__ = [
    "AgentLoop",
    "AssistantsService",
    "LoopHost",
    "LoopRequest",
    "LoopResult",
    "LoopState",
    "ModelProvider",
    "OpenAIChatProvider",
    "Outcome",
]
