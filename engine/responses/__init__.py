"""The Responses API and Conversations, run by the same agent loop as Assistants runs."""

from .models import Conversation, CreateResponse, Response
from .service import ResponsesService

__all__ = ["Conversation", "CreateResponse", "Response", "ResponsesService"]
