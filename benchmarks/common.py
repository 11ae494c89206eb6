"""What every benchmark shares: percentiles, targets, the rich table, JSON and PNG output, engines
in temporary data folders, the HTTP service in a child process, the realistic task, and the check
that no container outlives a run."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import Engine, Settings

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_LABEL = "org.sandbox-engine.bench"
HOME_LABEL = "org.sandbox-engine.home"
MANAGED_LABEL = "org.sandbox-engine.managed"
API_KEY = "bench-key"
TRIVIAL = "x = 1"
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
    """What one benchmark measured; ``save`` writes ``results/<name>.json``."""

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
            commit=_run_quiet(["git", "-C", str(RESULTS.parent.parent), "rev-parse", "--short",
                               "HEAD"]),
            date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            loadavg_at_start=os.getloadavg()[0],
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
        ax.annotate(label, (ax.get_xlim()[1], y), fontsize=7, color="crimson", ha="right",
                    va="bottom")
    ax.set_xticks(range(len(categories)), categories, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
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


# --- engines, in a temporary data folder each ---


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"sandbox-bench-{prefix}-") as tmp:
        yield Path(tmp)


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a benchmark engine: no warm pool unless asked, limits out of the way."""
    values: dict[str, Any] = {
        "pool_size": 0,
        "pool_min": 0,
        "max_sessions": 1000,
        "max_sessions_per_owner": 1000,
        **overrides,
    }
    return Settings(data_dir=data_dir, **values)


@contextlib.asynccontextmanager
async def engine(data_dir: Path, **overrides: Any) -> AsyncIterator[Engine]:
    async with Engine(bench_settings(data_dir, **overrides)) as the_engine:
        try:
            yield the_engine
        finally:
            CLEANUP.homes.add(home_label(data_dir))


def home_label(data_dir: Path) -> str:
    """The value of the label the engine puts on every container of ``data_dir`` (see core)."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``sandbox-engine serve`` in a child process, on a free port, with an API key."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {API_KEY}"}
        self._env = {
            **os.environ,
            "SANDBOX_DATA_DIR": str(data_dir),
            "SANDBOX_API_KEYS": API_KEY,
            "SANDBOX_POOL_SIZE": "0",
            "SANDBOX_POOL_MIN": "0",
            "SANDBOX_MAX_SESSIONS": "1000",
            "SANDBOX_MAX_SESSIONS_PER_OWNER": "1000",
            **env,
        }
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        import httpx

        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", "--port", str(self.port)],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        CLEANUP.homes.add(home_label(self.data_dir))
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}:\n"
                                   f"{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the server did not get ready; see {self.log_path}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # uvicorn drains, the engine removes containers
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the realistic task: a 10 MB CSV, pandas, a group-by and a PNG chart ---

TASK_CODE = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
df = pd.read_csv("{data}/sales.csv", parse_dates=["date"])
df["revenue"] = df["units"] * df["price"]
monthly = df.groupby([df["date"].dt.to_period("M"), "region"])["revenue"].sum().unstack()
ax = monthly.plot(figsize=(8, 4), title="Revenue by region and month")
ax.figure.tight_layout()
ax.figure.savefig("{data}/chart.png", dpi=100)
plt.close("all")
print(len(df), df.groupby("region")["revenue"].sum().idxmax())
"""
TASK_ROWS = 250_000


def task_code(data_dir: str = "/mnt/data") -> str:
    return TASK_CODE.format(data=data_dir)


def make_csv(path: Path, rows: int = TASK_ROWS) -> Path:
    """About 10 MB of sales rows, the same bytes on every run."""
    if path.exists():
        return path
    rng = random.Random(42)
    regions = ["North", "South", "East", "West", "Central", "Islands"]
    products = [f"product-{n:03d}" for n in range(200)]
    lines = ["date,region,product,units,price,customer_id"]
    for _ in range(rows):
        lines.append(
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.choice(regions)},"
            f"{rng.choice(products)},{rng.randint(1, 40)},{rng.uniform(1, 500):.2f},"
            f"{rng.randint(1, 10**6)}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def check_task_stdout(stdout: str) -> None:
    if not stdout.strip().startswith(str(TASK_ROWS)):
        raise RuntimeError(f"the task printed {stdout[-500:]!r}")


def check_png(data: bytes) -> None:
    if not data.startswith(b"\x89PNG"):
        raise RuntimeError("the chart is not a PNG")


# --- containers: nothing a benchmark started may outlive it ---


class _Cleanup:
    """Remembers the data folders (and so the home labels) a run used."""

    def __init__(self) -> None:
        self.homes: set[str] = set()

    def leftovers(self) -> list[str]:
        """Containers of this run's engines, or benchmark-labelled peer containers."""
        import docker

        client = docker.from_env()
        try:
            found: dict[str, str] = {}
            selectors = [f"{HOME_LABEL}={h}" for h in sorted(self.homes)] + [BENCH_LABEL]
            for selector in selectors:
                for c in client.api.containers(all=True, filters={"label": selector}):
                    found[c["Id"]] = c["Names"][0].lstrip("/")
            return sorted(found.values())
        finally:
            client.close()

    def remove(self, names: Iterable[str]) -> None:
        import docker

        client = docker.from_env()
        try:
            for name in names:
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container(name, force=True, v=True)
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    client.api.remove_volume(name, force=True)
        finally:
            client.close()


CLEANUP = _Cleanup()


def managed_containers() -> int:
    """Every container that any sandbox-engine on this Docker engine manages (others' too)."""
    out = _run_quiet(["docker", "ps", "-aq", "--filter", f"label={MANAGED_LABEL}"])
    return len(out.split())


# --- the entry point every benchmark module shares ---


def finish(report: Report, args: argparse.Namespace) -> int:
    """Check for leftover containers, print the targets, write the JSON. The exit code."""
    left = CLEANUP.leftovers()
    if left:
        CLEANUP.remove(left)
        report.notes.append(f"removed {len(left)} leftover container(s): {', '.join(left[:5])}")
    report.data["leftover_containers"] = len(left)
    console.print(f"[bold]{report.title}[/]")
    report.print_targets()
    path = report.save(results_dir(args))
    console.print(f"  [dim]wrote {path}[/]")
    return 1 if left else 0


def results_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "results", None)
    return Path(value) if value else RESULTS


def quick(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quick", False))


def standalone(name: str) -> int:
    """``python -m benchmarks.<module> [flags]``: the same as ``sandbox-engine bench <name>``."""
    from engine.cli import main

    return main(["bench", name, *sys.argv[1:]])
