"""The LLM loop and the Assistants v2 objects: runs, steps, model providers, tool dispatch."""

from .provider import ModelProvider, OpenAIChatProvider
from .service import AssistantsService

__all__ = ["AssistantsService", "ModelProvider", "OpenAIChatProvider"]
