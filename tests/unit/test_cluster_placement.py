"""Placement: the healthy, non-draining node with the most free slots, or 503 saying why."""

from __future__ import annotations

import pytest

from engine import errors
from engine.cluster.placement import NodeState, ranked
from engine.cluster.wire import NodeReport, info_in, info_out, raise_if_error
from engine.sessions import SessionInfo, SessionStatus


def node(name, sessions, capacity=4, docker_ok=True, draining=False, error=None):
    report = NodeReport(
        node_id=name,
        docker_ok=docker_ok,
        docker_error=None if docker_ok else "refused",
        capacity=capacity,
        sessions=sessions,
        draining=draining,
    )
    return NodeState(name, report=report, error=error, seen_at=0.0)


def test_most_free_first_and_only_healthy_ones():
    nodes = [
        node("a", 3),
        node("b", 1),
        node("c", 0, docker_ok=False),
        node("d", 0, draining=True),
        node("e", 0, error="did not answer within 10 s"),
    ]
    assert [n.node_id for n in ranked(nodes)] == ["b", "a"]


def test_a_full_cluster_says_why_for_each_node():
    nodes = [node("a", 4), node("b", 0, docker_ok=False), NodeState("c")]
    with pytest.raises(errors.ClusterFull) as caught:
        ranked(nodes)
    message = str(caught.value)
    assert "a: full (4 of 4)" in message
    assert "b: Docker is down (refused)" in message
    assert "c: no report yet" in message


def test_no_node_at_all():
    with pytest.raises(errors.ClusterFull, match="no node has joined"):
        ranked([])


def test_an_info_crosses_with_its_owner():
    info = SessionInfo(
        id="sess_1",
        thread_id="t",
        status=SessionStatus.ACTIVE,
        created_at=1,
        last_active_at=1,
        expires_at=2,
        idle_timeout=1,
        owner="tenant-a",
    )
    assert "owner" not in info.model_dump()
    back = info_in(info_out(info))
    assert back == info and back.owner == "tenant-a"


def test_an_engine_error_crosses_as_its_own_class():
    with pytest.raises(errors.SessionClosed, match="is closed"):
        raise_if_error({"error": "SessionClosed", "message": "session s is closed"})
    with pytest.raises(errors.QuotaExceeded, match="quota"):
        raise_if_error({"error": "QuotaExceeded", "message": "quota exceeded: x"})
    with pytest.raises(errors.EngineError, match="odd"):
        raise_if_error({"error": "os.system", "message": "odd"})
    assert raise_if_error({"id": 1}) == {"id": 1}
