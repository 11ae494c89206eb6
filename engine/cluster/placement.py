"""Placement: a new session goes to the healthy, non-draining node with the most free slots."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import errors
from .wire import NodeReport


@dataclass
class NodeState:
    """What a replica last learned of one node: its report, or why it has none."""

    node_id: str
    report: NodeReport | None = None
    error: str | None = None
    """Why the last read failed (no answer within the deadline, the actor is gone)."""
    seen_at: float | None = None
    """When the read of its last report started (time.time()): it knows every session
    made before then."""

    @property
    def healthy(self) -> bool:
        return self.error is None and self.report is not None and self.report.docker_ok

    def why_not(self) -> str | None:
        """Why it takes no new session, or None if it takes one."""
        if self.error is not None:
            return f"{self.node_id}: {self.error}"
        if self.report is None:
            return f"{self.node_id}: no report yet"
        if not self.report.docker_ok:
            return f"{self.node_id}: Docker is down ({self.report.docker_error})"
        if self.report.draining:
            return f"{self.node_id}: draining"
        if self.report.free <= 0:
            return f"{self.node_id}: full ({self.report.sessions} of {self.report.capacity})"
        return None

    def age(self) -> float | None:
        return None if self.seen_at is None else time.time() - self.seen_at


def ranked(nodes: list[NodeState]) -> list[NodeState]:
    """The nodes that take a new session, most free slots first; ClusterFull saying why each
    other node does not if there is none."""
    takers = [n for n in nodes if n.why_not() is None]
    if not takers:
        reasons = "; ".join(r for n in nodes if (r := n.why_not())) or "no node has joined"
        raise errors.ClusterFull(f"no node of the cluster can take a new session: {reasons}")
    return sorted(takers, key=lambda n: (-(n.report.free if n.report else 0), n.node_id))
