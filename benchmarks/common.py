"""What every benchmark shares: percentiles, targets, the rich table, JSON and PNG output, and
the entry point (``entry`` before, ``finish`` after). What they run on is in ``fixtures``."""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.cli import DEFAULT_BENCH_OUT

from .fixtures import CLEANUP, IMAGES, managed_containers

COMMITTED_RESULTS = Path(__file__).resolve().parent / "results"
"""The figures docs/performance.md quotes; a run writes here only when ``--out`` names it."""
MB = 1024 * 1024

console = Console()


# --- numbers ---


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """Latencies given in seconds, summarised in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "min_ms": min(ms, default=float("nan")),
        "max_ms": max(ms, default=float("nan")),
        "n": len(ms),
    }


@dataclass
class Target:
    """One target of the issue: ``value`` against ``limit`` (``<=`` unless ``at_least``)."""

    name: str
    value: float
    limit: float
    unit: str = ""
    at_least: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def describe(self) -> str:
        op = ">=" if self.at_least else "<="
        return f"{self.value:.3g}{self.unit} (target {op} {self.limit:g}{self.unit})"


@dataclass
class Report:
    """What one benchmark measured; ``save`` writes ``<results>/<name>.json``."""

    name: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def target(self, *args: Any, **kwargs: Any) -> Target:
        t = Target(*args, **kwargs)
        self.targets.append(t)
        return t

    def print_targets(self) -> None:
        for t in self.targets:
            mark = "[green]met[/]" if t.met else "[red]missed[/]"
            console.print(f"  {mark}  {t.name}: {t.describe()}")
        for note in self.notes:
            console.print(f"  [dim]{note}[/]")

    def save(self, results: Path) -> Path:
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{self.name}.json"
        payload = {
            "benchmark": self.name,
            "title": self.title,
            "machine": machine(),
            "targets": [{**asdict(t), "met": t.met} for t in self.targets],
            "notes": self.notes,
            **self.data,
        }
        path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
        return path


def _json_default(value: object) -> object:
    if isinstance(value, float) and value != value:
        return None
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    console.print(t)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


_MACHINE: dict[str, Any] = {}


def machine() -> dict[str, Any]:
    """Where the figures come from: CPUs, memory, kernel, Docker, the git commit."""
    if not _MACHINE:
        _MACHINE.update(
            cpus=os.cpu_count(),
            mem_total_gib=round(meminfo()["MemTotal"] / 2**30, 1),
            kernel=platform.release(),
            python=platform.python_version(),
            docker=_run_quiet(["docker", "version", "--format", "{{.Server.Version}}"]),
            commit=_run_quiet(
                ["git", "-C", str(COMMITTED_RESULTS.parent.parent), "rev-parse", "--short", "HEAD"]
            ),
            date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        )
    return _MACHINE


def _run_quiet(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) * 1024
    return out


# --- charts ---


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_chart(
    path: Path,
    title: str,
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    *,
    log: bool = False,
    lines: dict[str, float] | None = None,
) -> Path:
    """Grouped bars, one group per category, one bar per series; ``lines`` draws targets."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=90)
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(categories))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, [_cell(float(v)) for v in values], fontsize=7, padding=1)
    for label, y in (lines or {}).items():
        ax.axhline(y, color="crimson", linestyle="--", linewidth=1)
        ax.annotate(
            label, (ax.get_xlim()[1], y), fontsize=7, color="crimson", ha="right", va="bottom"
        )
    crowded = sum(len(c) for c in categories) > 60
    ax.set_xticks(
        range(len(categories)),
        categories,
        fontsize=8,
        rotation=20 if crowded else 0,
        ha="right" if crowded else "center",
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.12)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(fig, plt, path)


def line_chart(
    path: Path,
    title: str,
    xs: Sequence[float],
    series: dict[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    *,
    logx: bool = False,
) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=90)
    for label, ys in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(xs), [str(int(x)) for x in xs])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, pil_kwargs={"optimize": True})
    plt.close(fig)
    return path


# --- the entry point every benchmark module shares ---


def finish(report: Report, args: argparse.Namespace) -> int:
    """Check for leftover containers, print the targets, write the JSON. The exit code."""
    left = CLEANUP.leftovers()
    if left:
        CLEANUP.remove(left)
        report.notes.append(f"removed {len(left)} leftover container(s): {', '.join(left[:5])}")
    report.data["leftover_containers"] = len(left)
    report.data["managed_containers_after"] = managed_containers()
    report.data["images"] = sorted(IMAGES)
    report.data["cpu_busy_before"] = _BUSY_BEFORE
    if _BUSY_BEFORE and _BUSY_BEFORE[0] > 0.25:
        report.notes.append(
            f"other work kept {_BUSY_BEFORE[0]:.0%} of the CPUs busy just before this benchmark "
            "started: figures are noisy"
        )
    console.print(f"[bold]{report.title}[/]")
    report.print_targets()
    path = report.save(results_dir(args))
    console.print(f"  [dim]wrote {path}[/]")
    return 1 if left else 0


_BUSY_BEFORE: list[float] = []


def entry(main: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Decorates each benchmark's ``main``: remembers how busy the machine was before it ran."""

    @functools.wraps(main)
    def wrapped(args: argparse.Namespace) -> int:
        _BUSY_BEFORE[:] = [cpu_busy(2.0)]
        return main(args)

    return wrapped


def cpu_busy(seconds: float) -> float:
    """Share of all CPUs busy over the next ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def results_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "results", None)
    return Path(value or DEFAULT_BENCH_OUT)


def quick(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quick", False))


def standalone(name: str) -> int:
    """``python -m benchmarks.<module> [flags]``: the same as ``sandbox-engine bench <name>``."""
    from engine.cli import main

    return main(["bench", name, *sys.argv[1:]])
