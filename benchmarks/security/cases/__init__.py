"""Every case, grouped by category (one module each)."""

from __future__ import annotations

from ..model import Case
from . import (
    api,
    egress,
    files,
    http_edge,
    isolation,
    kernel,
    lifetimes,
    mcp_reads,
    network,
    quotas,
    resources,
    responses,
    snapshots,
    tenancy,
    web,
    wire,
)

CASES: list[Case] = [
    *resources.CASES,
    *isolation.CASES,
    *network.CASES,
    *egress.CASES,
    *files.CASES,
    *kernel.CASES,
    *api.CASES,
    *http_edge.CASES,
    *lifetimes.CASES,
    *mcp_reads.CASES,
    *responses.CASES,
    *snapshots.CASES,
    *tenancy.CASES,
    *web.CASES,
    *wire.CASES,
    *quotas.CASES,
]

_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
