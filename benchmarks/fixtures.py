"""What the benchmarks run on: engines in temporary data folders, the HTTP service in a child
process, the realistic task and its CSV, and the check that no container outlives a run."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from engine import Engine, Settings

BENCH_LABEL = "org.sandbox-engine.bench"
HOME_LABEL = "org.sandbox-engine.home"
MANAGED_LABEL = "org.sandbox-engine.managed"
API_KEY = "bench-key"
TRIVIAL = "x = 1"
IMAGES: set[str] = set()
"""The sandbox images the engines of this run used."""


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
        # A thousand sessions at the largest memory limit: idle sessions commit far more than
        # they use, and density is about what they use.
        "max_memory_mb_per_owner": 1000 * 4096,
        "shutdown_sandboxes": "close",
        **overrides,
    }
    return Settings(data_dir=data_dir, **values)


@contextlib.asynccontextmanager
async def engine(data_dir: Path, **overrides: Any) -> AsyncIterator[Engine]:
    async with Engine(bench_settings(data_dir, **overrides)) as the_engine:
        IMAGES.add(the_engine.image)
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
            "SANDBOX_SHUTDOWN_SANDBOXES": "close",
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
                raise RuntimeError(
                    f"the server exited; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}"
                )
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
        self.process.send_signal(signal.SIGINT)  # uvicorn drains; the engine closes (as set)
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
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={MANAGED_LABEL}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return len(out.stdout.split())
