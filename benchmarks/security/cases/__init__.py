"""Every case, grouped by category (one module each)."""

from __future__ import annotations

from ..model import Case
from . import api, files, isolation, kernel, network, quotas, resources, responses, tenancy, web

CASES: list[Case] = [
    *resources.CASES,
    *isolation.CASES,
    *network.CASES,
    *files.CASES,
    *kernel.CASES,
    *api.CASES,
    *responses.CASES,
    *tenancy.CASES,
    *web.CASES,
    *quotas.CASES,
]

_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
