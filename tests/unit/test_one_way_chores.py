"""The chores done one way: the key read from the headers, a session's face told by its thread
id, the reply to a delete. No Docker."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.api.auth import KeyRing, presented_key, tenant_of
from engine.api.playground import config_router
from engine.paging import Deleted
from engine.thread_ids import (
    MAX_CONTAINER_NAME,
    container_name,
    container_thread_id,
    made_by_mcp,
    mcp_connection_thread_id,
    mcp_minted_thread_id,
)

KEY = "sk-chores-one"


def test_the_key_is_read_from_bearer_first_then_api_key() -> None:
    assert presented_key({"authorization": f"Bearer {KEY}"}) == KEY
    assert presented_key({"authorization": f"bearer  {KEY} "}) == KEY
    assert presented_key({"authorization": "Basic abc", "api-key": KEY}) == KEY
    assert presented_key({"authorization": "Bearer ", "api-key": KEY}) == KEY
    assert presented_key({"authorization": f"Bearer {KEY}", "api-key": "other"}) == KEY
    assert presented_key({"authorization": "Basic abc"}) is None
    assert presented_key({}) is None


def test_a_tenant_needs_a_known_key_only_when_keys_are_configured() -> None:
    ring = KeyRing([KEY])
    assert tenant_of(ring, {"api-key": KEY}) == tenant_of(ring, {"authorization": f"Bearer {KEY}"})
    assert tenant_of(ring, {"api-key": KEY}) not in (None, "")
    assert tenant_of(ring, {"api-key": "wrong"}) is None
    assert tenant_of(ring, {}) is None
    assert tenant_of(KeyRing([]), {}) == ""


def test_the_playground_key_check_agrees_with_the_routes() -> None:
    app = FastAPI()
    app.include_router(config_router)
    app.state.keys = KeyRing([KEY])
    client = TestClient(app)

    def valid(headers: dict[str, str]) -> bool:
        body = client.get("/v1/playground/key", headers=headers).json()
        assert body["object"] == "playground.key"
        return bool(body["valid"])

    assert valid({"Authorization": f"Bearer {KEY}"})
    assert valid({"api-key": KEY})
    assert not valid({"Authorization": "Bearer wrong"})
    assert not valid({})


def test_a_container_thread_id_keeps_its_name() -> None:
    name = "a/b c" + "x" * (MAX_CONTAINER_NAME - 5)
    thread_id = container_thread_id(name)
    assert len(thread_id) == 256
    assert container_name(thread_id) == name
    assert container_thread_id(name) != thread_id
    assert container_name("my-thread") == "my-thread"
    assert container_name("container_short/x") == "container_short/x"


def test_mcp_thread_ids_are_told_from_the_others() -> None:
    assert made_by_mcp(mcp_minted_thread_id())
    assert made_by_mcp(mcp_connection_thread_id("abc"))
    assert mcp_minted_thread_id() != mcp_minted_thread_id()
    assert not made_by_mcp(container_thread_id("mcp:"))
    assert not made_by_mcp("thread_1")


def test_a_delete_is_answered_in_one_shape() -> None:
    assert Deleted(id="file-1", object="file").model_dump() == {
        "id": "file-1",
        "object": "file",
        "deleted": True,
    }


def test_one_expires_after_serves_sessions_and_containers() -> None:
    from pydantic import ValidationError

    from engine.api.deps import ExpiresAfter
    from engine.api.openai_containers import CreateContainer
    from engine.api.sessions import CreateSession

    day = CreateSession.model_validate({"expires_after": {"minutes": 1440}})
    assert isinstance(day.expires_after, ExpiresAfter)
    with pytest.raises(ValidationError, match="at most 1440"):
        CreateSession.model_validate({"expires_after": {"minutes": 1441}})
    week = CreateContainer.model_validate({"name": "c", "expires_after": {"minutes": 10080}})
    assert isinstance(week.expires_after, ExpiresAfter)  # its cap is the engine's, at the route
