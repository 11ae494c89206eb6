"""The cluster on Ray: one node agent per sandbox host, remote sessions for the API replicas,
placement, and the security every Ray process of ours starts with (docs/cluster.md).

Nothing here is imported unless ``--cluster``, ``node`` or ``cluster`` is used: ``ray`` is the
``cluster`` extra's, not a dependency of the engine.
"""

NAMESPACE = "sandbox-engine"
"""The Ray namespace of every actor of ours."""
