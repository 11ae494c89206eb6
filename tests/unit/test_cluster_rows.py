"""A replica finds a session's node in the session's row of the shared store: a session it
never saw made, a paused one whose node is lost (taken up by the healthy node with the most
room), and a live one whose node is lost (its info says so). No Ray: the replica's view of the
nodes is set by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import Settings, errors
from engine.cluster.host import ClusterSessions, NodeLink, NodeRegistry
from engine.cluster.placement import NodeState
from engine.cluster.wire import NodeReport
from engine.sessions import SessionInfo, SessionStatus
from engine.sessions.records import SessionRecords
from engine.store import Store


def _node(name: str, sessions: int) -> NodeState:
    report = NodeReport(node_id=name, docker_ok=True, capacity=4, sessions=sessions)
    return NodeState(name, report=report, seen_at=0.0)


Opener = Callable[[str | None, str | None], Store]


@pytest.fixture
def opener(tmp_path: Path, database_url: str) -> Iterator[Opener]:
    """Opens the one store as a node's runtime (its home and node) or a replica (neither)."""
    opened: list[Store] = []

    def open_store(home: str | None, node: str | None) -> Store:
        opened.append(Store(tmp_path / "engine.db", database_url, home, node))
        return opened[-1]

    try:
        yield open_store
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def stores(opener: Opener) -> tuple[Store, Store]:
    """The store as node n1's runtime and as the replica open it."""
    return opener("home-1", "n1"), opener(None, None)


def _sessions(replica: Store) -> tuple[ClusterSessions, NodeRegistry]:
    settings = Settings(data_dir=Path("/nonexistent"))
    registry = NodeRegistry(settings)
    for name, sessions in (("n1", 1), ("n2", 0), ("n3", 3)):
        registry.states[name] = _node(name, sessions)
        registry.links[name] = NodeLink(name, None, 1.0)
    return ClusterSessions(registry, settings, replica.session_rows), registry


def _insert(store: Store, status: SessionStatus) -> str:
    info = SessionInfo(
        id="sess_1",
        owner="alice",
        thread_id="t",
        status=status,
        created_at=1,
        last_active_at=1,
        expires_at=9,
        idle_timeout=9,
    )
    SessionRecords(store).insert(info, 9)
    return info.id


def test_a_replica_finds_a_session_it_never_saw_made_by_its_row(
    stores: tuple[Store, Store],
) -> None:
    node, replica = stores
    sessions, _ = _sessions(replica)
    session_id = _insert(node, SessionStatus.ACTIVE)
    row = replica.session_rows.lookup(session_id)
    assert row is not None and row["node_id"] == "n1"
    assert sessions.get(session_id, "alice").node_id == "n1"
    assert sessions.info(session_id).notice is None
    with pytest.raises(errors.SessionNotFound):
        sessions.get(session_id, "mallory")
    with pytest.raises(errors.SessionNotFound):
        sessions.get("sess_none")


def test_a_paused_session_of_a_lost_node_goes_to_the_healthy_node_with_most_room(
    stores: tuple[Store, Store], opener: Opener
) -> None:
    node, replica = stores
    sessions, registry = _sessions(replica)
    session_id = _insert(node, SessionStatus.PAUSED)
    assert sessions.get(session_id).node_id == "n1"
    registry.states["n1"].error = "its node agent has left the cluster"
    assert sessions.get(session_id, "alice").node_id == "n2"
    # The node that resumes it claims its row: from then on, every replica goes there.
    SessionRecords(opener("home-2", "n2")).claim(session_id)
    row = replica.session_rows.lookup(session_id)
    assert row is not None and (row["node_id"], row["home"]) == ("n2", "home-2")
    # n2 holds it now: n1's node reports only its own paused sessions.
    assert SessionRecords(node).ids_in_status(SessionStatus.PAUSED, held_here=True) == []
    assert sessions.get(session_id).node_id == "n2"
    with pytest.raises(errors.SessionNotFound):
        sessions.get(session_id, "bob")


def test_a_live_session_of_a_dead_node_moves_to_a_healthy_one_once(
    stores: tuple[Store, Store], opener: Opener
) -> None:
    node, replica = stores
    sessions, registry = _sessions(replica)
    session_id = _insert(node, SessionStatus.ACTIVE)
    registry.states["n1"].error = "did not answer within 5 s"
    registry.links["n1"].mark(registry.states["n1"].error)
    assert "node n1 does not answer" in (sessions.info(session_id).notice or "")
    # Merely silent (frozen, cut off): it may come back still running the session.
    assert sessions.get(session_id, "alice").node_id == "n1"
    registry.links["n1"].mark("is gone (ActorDiedError)", gone=True)
    moved = sessions.get(session_id, "alice")
    assert moved.node_id == "n2"
    assert moved._moving_from == "n1"  # its first call asks n2 to take it over
    # Two nodes asked to take it over at once: one wins the row.
    assert SessionRecords(opener("home-2", "n2")).take(session_id, "n1")
    assert not SessionRecords(opener("home-3", "n3")).take(session_id, "n1")
    row = replica.session_rows.lookup(session_id)
    assert row is not None and (row["node_id"], row["home"]) == ("n2", "home-2")


def test_a_session_stays_on_its_lost_node_when_no_node_can_take_it(
    stores: tuple[Store, Store],
) -> None:
    node, replica = stores
    sessions, registry = _sessions(replica)
    session_id = _insert(node, SessionStatus.ACTIVE)
    for state in registry.states.values():
        state.error = "gone"
    assert "node n1 does not answer" in (sessions.info(session_id).notice or "")
    assert sessions.get(session_id).node_id == "n1"
    del registry.links["n1"]
    with pytest.raises(errors.NodeUnreachable):
        sessions.get(session_id)
