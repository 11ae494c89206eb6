"""A small, fast subset of the security benchmark, so that the suite exercises its runner: the
cases marked ``quick`` (a few per category) against a real engine and HTTP server. The full
bench is a command: ``sandbox-engine bench security``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from benchmarks.security.cases import CASES
from benchmarks.security.model import CATEGORIES
from benchmarks.security.runner import run_suite, select


def test_the_bench_has_enough_cases_in_every_category() -> None:
    assert len(CASES) >= 60
    assert {c.category for c in CASES} == set(CATEGORIES)
    for case in CASES:
        assert case.attack and case.expected, case.name


async def test_quick_cases_are_contained(tmp_path: Path) -> None:
    cases = select(quick=True)
    assert {c.category for c in cases} == set(CATEGORIES)
    card = await run_suite(cases, console=Console(quiet=True), workdir=tmp_path / "bench")
    failed = {r.name: (r.evidence, r.checks) for r in card.results if not r.contained}
    assert failed == {}
    assert card.leftovers == []
    assert card.canary_restarts == 0
    assert len(card.results) == len(cases)
