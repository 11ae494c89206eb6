"""What a security case is: a hostile action, the safe outcome it must meet, and the evidence.

A case is a small declarative object. Most cases run hostile code in a fresh session of their
own (``code_case``); the rest drive the engine's library or HTTP API directly (``Case`` with a
``run`` coroutine). Either way the case returns a ``Verdict``: contained or not, and why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import ExecutionResult, ExecutionStatus, Session

if TYPE_CHECKING:
    from .harness import Context

RESOURCES = "resources"
ISOLATION = "isolation"
NETWORK = "network"
FILES = "files"
KERNEL = "kernel"
API = "api"
CATEGORIES = (RESOURCES, ISOLATION, NETWORK, FILES, KERNEL, API)


@dataclass
class Verdict:
    """The outcome of one hostile action."""

    contained: bool
    evidence: str
    session: Session | None = None
    """The attacked session, if any: the runner checks that it answers again afterwards."""
    action_end: float = field(default_factory=time.perf_counter)
    """When the hostile action was over; recovery is timed from here."""
    usable_after: bool = True
    """Whether the attacked session is expected to answer again (False: the case closed it)."""


Run = Callable[["Context"], Awaitable[Verdict]]


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    attack: str
    """The hostile action, in words."""
    expected: str
    """The safe outcome that counts as contained, in words."""
    run: Run
    quick: bool = False
    """Part of the fast subset that the test suite runs."""
    limit: float = 120.0
    """Seconds the action may take before it counts as a hang (not contained)."""
    internet: bool = False
    """Needs the test internet and an engine whose egress proxies reach it."""


# --- checks on one execution ---

Check = Callable[[ExecutionResult], tuple[bool, str]]


def code_case(
    name: str,
    category: str,
    attack: str,
    expected: str,
    code: str,
    check: Check,
    *,
    timeout: float = 30.0,
    setup: str | None = None,
    quick: bool = False,
    limit: float = 120.0,
) -> Case:
    """Hostile ``code`` runs in a fresh session; ``check`` judges the ExecutionResult."""

    async def run(ctx: Context) -> Verdict:
        session = await ctx.session()
        if setup is not None:
            prepared = await session.execute(ctx.fill(setup), timeout=30)
            if prepared.status is not ExecutionStatus.OK:
                return Verdict(False, f"setup failed: {brief(prepared)}", session)
        result = await session.execute(ctx.fill(code), timeout=timeout)
        end = time.perf_counter()
        ok, evidence = check(result)
        return Verdict(ok, evidence, session, end)

    return Case(name, category, attack, expected, run, quick, limit)


def brief(result: ExecutionResult, limit: int = 160) -> str:
    """A one-line summary of a result for evidence strings."""
    parts = [f"status={result.status.value}"]
    if result.error is not None:
        parts.append(f"{result.error.name}: {result.error.value}"[:limit])
    out = result.stdout.strip().replace("\n", " | ")
    if out:
        parts.append(f"stdout={clip(out, limit)!r}")
    if result.dropped:
        parts.append(f"dropped={result.dropped}")
    if result.state_lost:
        parts.append("state_lost")
    return "; ".join(parts)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def lines(result: ExecutionResult) -> dict[str, str]:
    """``key=value`` lines of stdout, as a dict (probes print their findings that way)."""
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def stdout_has_none(*markers: str) -> Check:
    """OK status, and none of ``markers`` (things only a breach would print) in stdout."""

    def check(result: ExecutionResult) -> tuple[bool, str]:
        leaked = [m for m in markers if m in result.stdout]
        ok = result.status is ExecutionStatus.OK and not leaked
        return ok, (f"LEAKED {leaked}; " if leaked else "") + brief(result)

    return check


def all_denied(result: ExecutionResult) -> tuple[bool, str]:
    """Probes print ``name=denied:<why>`` or ``name=ALLOWED:<what>``; every one must be denied."""
    found = lines(result)
    allowed = {k: v for k, v in found.items() if v.startswith("ALLOWED")}
    ok = result.status is ExecutionStatus.OK and bool(found) and not allowed
    if allowed:
        return False, f"ALLOWED {allowed}"
    if not ok:
        return False, brief(result)
    return True, "; ".join(f"{k}: {v.removeprefix('denied:')}" for k, v in found.items())


def status_is(*statuses: ExecutionStatus, error: str | None = None) -> Check:
    def check(result: ExecutionResult) -> tuple[bool, str]:
        ok = result.status in statuses
        if error is not None:
            ok = ok and result.error is not None and result.error.name == error
        return ok, brief(result)

    return check


def json_of(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)
