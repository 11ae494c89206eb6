"""The agent loop under both API faces (Assistants runs and Responses): the loop and what it
needs of a host, the model provider, the code-delta decoder, the file_search handler and the
tool text the model reads. It imports neither face."""

from .loop import AgentLoop, LoopHost, LoopRequest, LoopResult, LoopState, Outcome
from .provider import ModelProvider, OpenAIChatProvider

__all__ = [
    "AgentLoop",
    "LoopHost",
    "LoopRequest",
    "LoopResult",
    "LoopState",
    "ModelProvider",
    "OpenAIChatProvider",
    "Outcome",
]
