"""Run the cases against one engine, check the canary and the host after each, print the
scorecard and write ``security.json`` into ``--out`` (default ``./bench-results``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import ExecutionStatus, Settings
from engine.errors import EngineError
from engine.image import build_proxy_image

from ..common import results_dir
from ..egress_internet import running_internet
from .cases import CASES
from .cases.egress import INTERNET
from .harness import KEYS, ApiServer, Canary, Context, HostWatch, tenant_of
from .model import CATEGORIES, Case, Verdict, brief, clip

HOST_SECRET_VAR = "SANDBOX_BENCH_HOST_SECRET"


@dataclass
class CaseResult:
    name: str
    category: str
    attack: str
    expected: str
    contained: bool
    evidence: str
    action_s: float
    recovery_s: float
    checks: list[str] = field(default_factory=list)
    """What failed after the case: the attacked session, the canary, the host."""


@dataclass
class Scorecard:
    results: list[CaseResult]
    settings: dict[str, Any]
    started_at: float
    duration_s: float
    canary_restarts: int = 0
    leftovers: list[str] = field(default_factory=list)

    @property
    def contained(self) -> bool:
        return all(r.contained for r in self.results) and not self.leftovers

    def by_category(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for cat in CATEGORIES:
            rows = [r for r in self.results if r.category == cat]
            if rows:
                out[cat] = (sum(r.contained for r in rows), len(rows))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "security",
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 1),
            "contained": self.contained,
            "summary": {
                cat: {"contained": c, "cases": n} for cat, (c, n) in self.by_category().items()
            },
            "total": {
                "contained": sum(r.contained for r in self.results),
                "cases": len(self.results),
            },
            "canary_restarts": self.canary_restarts,
            "leftovers_after_close": self.leftovers,
            "settings": self.settings,
            "cases": [asdict(r) for r in self.results],
        }


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Default isolation; a few caps lowered so that their cases run quickly."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_keys": ",".join(KEYS),
        "pool_size": 0,
        "pool_min": 0,
        "reaper_interval": 1.0,
        "max_file_mb": 16,
        "max_session_files": 100,
        "max_files_per_owner": 500,
        "max_file_storage_mb_per_owner": 256,
        "max_sessions_per_owner": 4,
        "max_memory_mb_per_owner": 8192,
        "drain_timeout": 5.0,
        "shutdown_sandboxes": "close",
        **overrides,
    }
    return Settings(**values)


async def run_case(case: Case, ctx: Context) -> CaseResult:
    started = time.perf_counter()
    try:
        verdict = await asyncio.wait_for(case.run(ctx), case.limit)
    except TimeoutError:
        verdict = Verdict(False, f"HUNG: no outcome within {case.limit:g} s")
    except Exception as exc:  # a case that blows up is a finding, not a crash of the bench
        verdict = Verdict(False, f"the case raised {type(exc).__name__}: {clip(str(exc), 200)}")
    action_s = max(0.0, verdict.action_end - started)
    checks: list[str] = []
    if verdict.session is not None and verdict.usable_after:
        try:
            r = await verdict.session.execute("6 * 7", timeout=60)
            if r.status is not ExecutionStatus.OK or r.text != "42":
                checks.append(f"attacked session does not answer: {brief(r)}")
        except EngineError as exc:
            checks.append(f"attacked session unusable: {type(exc).__name__}: {exc}")
    canary_ok, canary_note = await ctx.canary.check()
    if not canary_ok:
        checks.append(f"canary: {canary_note}")
    recovery_s = time.perf_counter() - verdict.action_end
    await ctx.close_sessions()
    checks.extend(ctx.watch.check())
    async with ctx.client(0) as http:
        try:
            if (await http.get("/healthz")).status_code != 200:
                checks.append("the API stopped answering /healthz")
        except Exception as exc:
            checks.append(f"the API is down: {type(exc).__name__}")
    return CaseResult(
        name=case.name,
        category=case.category,
        attack=case.attack,
        expected=case.expected,
        contained=verdict.contained and not checks,
        evidence=verdict.evidence,
        action_s=round(action_s, 2),
        recovery_s=round(recovery_s, 2),
        checks=checks,
    )


async def run_suite(
    cases: Sequence[Case],
    *,
    console: Console | None = None,
    workdir: Path | None = None,
    **overrides: Any,
) -> Scorecard:
    """Run ``cases`` against a fresh engine and HTTP service in a temporary folder."""
    console = console or Console()
    started_at = time.time()
    t0 = time.perf_counter()
    own_dir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sandbox-security-"))
    marker = f"HOSTSECRET-{secrets.token_hex(12)}"
    os.environ[HOST_SECRET_VAR] = marker  # bait: it must never show up in a sandbox
    internet_needed = any(c.internet for c in cases)
    with contextlib.ExitStack() as stack:
        if internet_needed:
            internet = stack.enter_context(running_internet(workdir / "internet"))
            overrides = {**internet.settings(), **overrides}
        settings = bench_settings(workdir / "engine", **overrides)
        if internet_needed:
            await asyncio.to_thread(build_proxy_image, settings)
        server = ApiServer(settings)
        results: list[CaseResult] = []
        leftovers: list[str] = []
        canary_restarts = 0
        try:
            await server.start()
            engine = server.engine
            canary = Canary(engine, tenant_of(KEYS[0]))
            await canary.start()
            watch = HostWatch(workdir, engine, marker)
            ctx = Context(engine, server.url, workdir, marker, watch, canary)
            if internet_needed:
                ctx.scratch[INTERNET] = internet
            ctx.scratch["file_search"] = server.app.state.engine.file_search
            ctx.scratch["edge_server"] = server.server  # the HTTP edge's cases read its config
            for n, case in enumerate(cases, start=1):
                result = await run_case(case, ctx)
                results.append(result)
                mark = "[green]contained[/]" if result.contained else "[bold red]NOT CONTAINED[/]"
                console.print(
                    f"[{n:>2}/{len(cases)}] {case.category:<9} {case.name:<28} {mark} "
                    f"({result.action_s:.1f} s, recovered {result.recovery_s:.1f} s)"
                )
                if not result.contained:
                    console.print(f"        [red]{result.evidence}[/]")
                    for check in result.checks:
                        console.print(f"        [red]{check}[/]")
            canary_restarts = canary.restarts
            await canary.close()
        finally:
            await server.stop()
            leftovers = _leftovers(server)
            os.environ.pop(HOST_SECRET_VAR, None)
    if own_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return Scorecard(
        results=results,
        settings=settings.model_dump(mode="json", exclude={"api_keys", "llm_api_key"}),
        started_at=started_at,
        duration_s=time.perf_counter() - t0,
        canary_restarts=canary_restarts,
        leftovers=leftovers,
    )


def _leftovers(server: ApiServer) -> list[str]:
    """After the engine closed: nothing of it may remain in Docker."""
    import docker

    from engine.runtime import HOME_LABEL

    try:
        label = {"label": f"{HOME_LABEL}={server.engine.labels[HOME_LABEL]}"}
    except (AttributeError, KeyError):
        return []
    client = docker.from_env()
    containers = [c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters=label)]
    volumes = [v.name for v in client.volumes.list(filters=label)]
    return [f"container {c}" for c in containers] + [f"volume {v}" for v in volumes]


def render(card: Scorecard, console: Console) -> None:
    table = Table(title="Security scorecard", show_lines=False)
    for col in ("category", "case", "contained", "action s", "recover s", "evidence"):
        table.add_column(col, overflow="fold")
    for r in card.results:
        evidence = r.evidence if not r.checks else f"{r.evidence} || {'; '.join(r.checks)}"
        table.add_row(
            r.category,
            r.name,
            "[green]yes[/]" if r.contained else "[bold red]NO[/]",
            f"{r.action_s:.1f}",
            f"{r.recovery_s:.1f}",
            clip(evidence, 220),
        )
    console.print(table)
    summary = ", ".join(f"{cat} {c}/{n}" for cat, (c, n) in card.by_category().items())
    total = sum(r.contained for r in card.results)
    console.print(
        f"contained {total}/{len(card.results)} ({summary}); canary restarts "
        f"{card.canary_restarts}; leftovers after close: {card.leftovers or 'none'}; "
        f"{card.duration_s:.0f} s"
    )


def save(card: Scorecard, results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "security.json"
    path.write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return path


def select(
    names: Sequence[str] = (), categories: Sequence[str] = (), quick: bool = False
) -> list[Case]:
    chosen = [c for c in CASES if (not quick or c.quick)]
    if categories:
        chosen = [c for c in chosen if c.category in categories]
    if names:
        unknown = set(names) - {c.name for c in CASES}
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
        chosen = [c for c in CASES if c.name in names]
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", action="append", default=[], help="run only this case")
    parser.add_argument(
        "--category", action="append", default=[], choices=CATEGORIES, help="only this category"
    )
    parser.add_argument("--quick", action="store_true", help="only the fast subset")
    parser.add_argument("--runtime", help="OCI runtime for the sandboxes, e.g. runsc")
    parser.add_argument(
        "--out",
        "--results",
        dest="results",
        help="folder for security.json (default ./bench-results)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")


def bench(args: argparse.Namespace) -> int:
    """Entry point for ``sandbox-engine bench security`` and ``python -m benchmarks.security``."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    cases = select(
        getattr(args, "case", None) or (),
        getattr(args, "category", None) or (),
        bool(getattr(args, "quick", False)),
    )
    if getattr(args, "list", False):
        for c in cases:
            console.print(f"{c.category:<9} {c.name:<28} {c.attack}")
        return 0
    overrides = {}
    if getattr(args, "runtime", None):
        overrides["runtime"] = args.runtime
    card = asyncio.run(run_suite(cases, console=console, **overrides))
    render(card, console)
    console.print(f"wrote {save(card, results_dir(args))}")
    return 0 if card.contained else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.security", description="Hostile-code security benchmark."
    )
    add_arguments(parser)
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
