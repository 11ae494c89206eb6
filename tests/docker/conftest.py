"""Fixtures of the Docker tier's OpenAI-compatible tests: the official SDK on the live server, as
tenant key-a (``client``) and key-b (``other``)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from ..support.clients import KEY_B, sdk
from ..support.servers import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    yield sdk(live_server)


@pytest.fixture
def other(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    yield sdk(live_server, KEY_B)
