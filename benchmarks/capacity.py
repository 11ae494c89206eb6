"""Capacity of one host: what an idle session costs, how fast pause and resume are, and how the
engine carries 10,000 paused sessions.

1. Pause and resume (library, warm pool of POOL): a session runs the user's cells that build a
   1 MB namespace (a DataFrame of 16,384 x 8 floats, a function, a summary, a file in
   /mnt/data), then is paused and resumed ROUNDS times; every resume is checked (the
   DataFrame's sum, the function, the file). Again with a 100 MB DataFrame, fewer rounds.
   The alternative today, in the same run: a fresh session from the same warm pool plus
   re-running those cells. Each pause and resume is split into its steps (files saved, the
   kernel's save or load, the snapshot copy, the sandbox's removal, the pool acquire, files put
   back) by timing those methods.
2. Idle memory: IDLE_SESSIONS idle sessions, each container's PSS (plus its containerd shim)
   and cgroup memory, sampled SAMPLES times (``density.container_memory``). Resident sessions
   on this machine = 90% of its RAM / that PSS.
3. 10,000 paused sessions: SOURCES sessions are created and paused for real through a
   ``sandbox-engine serve`` process; the rest are clones of them made through the engine's
   store layer while no engine runs (``paused_clones``: each clone its own row, thread, copy of
   the snapshot bytes and session_files rows). A new server then starts on that folder, and
   we time ``GET /v1/sessions`` (limit 20 and 100), ``GET /v1/sessions/{id}``, the start-up
   with 0 and with 10,000 paused sessions (library ``Engine`` open; server until ready, and its
   application start-up from its log; STARTS of each, interleaved), the disk each paused
   session uses, and resume a few random clones, asserting their variables.
Run: ``sandbox-engine bench capacity [--quick]`` or ``python -m benchmarks.capacity``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine import Engine, Session
from engine.errors import SessionNotFound
from engine.kernel import Kernel
from engine.sandbox.docker_sandbox import DockerSandbox
from engine.sessions.outputs import OutputExport
from engine.sessions.pausing import Pausing
from engine.sessions.placement import Placement
from engine.sessions.session import Session as SessionImpl
from engine.sessions.snapshots import SnapshotMeta, SnapshotStore

from . import common, density, fixtures
from .common import MB, Report, meminfo, percentile, summary
from .paused_clones import DATABASE, SNAPSHOT_FOLDER, clone_paused

POOL = 2
IDLE_SESSIONS = 8
SAMPLES = 3
IDLE_SECONDS = 15
SOURCES = 4
PAUSED = 10_000
LIST_REQUESTS = 200
LOOKUPS = 200
STARTS = 5
RESUMED_CLONES = 3
RESIDENT_SHARE = 0.90
RESUME_TARGET_MS = 300
PAUSE_TARGET_MS = 500
LIST_TARGET_MS = 50
APP_STARTING = "Waiting for application startup."
APP_STARTED = "Application startup complete."
LONG = {"session_ttl": 86_400, "idle_timeout": 86_400, "auto_pause_after": 0}

SIZES = {"1 MB": 16_384, "100 MB": 1_638_400}
"""Rows of an 8-column float64 DataFrame: 16,384 rows are 1 MiB."""


def cells(rows: int) -> list[str]:
    """The user's cells that build the namespace; the last prints what a check compares."""
    return [
        "import numpy as np\nimport pandas as pd",
        f"rng = np.random.default_rng(7)\n"
        f"df = pd.DataFrame(rng.random(({rows}, 8)), columns=list('abcdefgh'))",
        "summary = df.describe()\ndef scale(frame, k):\n    return frame * k\nlabel = 'capacity'",
        "df.head(100).to_csv('/mnt/data/head.csv')",
        CHECK,
    ]


CHECK = (
    "print(repr(float(df.values.sum())), scale(df, 2).shape, label,"
    " round(summary.loc['mean', 'a'], 6), len(open('/mnt/data/head.csv').read()))"
)


def p95_ms(seconds: list[float]) -> float:
    return percentile([s * 1000 for s in seconds], 95)


async def run_cells(session: Session, code: list[str]) -> str:
    """Run the cells in order; the last one's stdout."""
    stdout = ""
    for cell in code:
        result = await session.execute(cell, timeout=300)
        if not result.ok:
            raise RuntimeError(f"a cell failed: {result.error}")
        stdout = result.stdout
    return stdout


# --- where a pause and a resume spend their time ---


@dataclass
class Steps:
    """Time spent in a few engine methods during each pause or resume (nested ones included)."""

    current: dict[str, float] | None = None
    rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    _undo: list[tuple[type, str, Any]] = field(default_factory=list)

    def wrap(self, owner: type, name: str, label: str) -> None:
        original = getattr(owner, name)

        def add(started: float) -> None:
            if self.current is not None:
                self.current[label] = self.current.get(label, 0.0) + time.perf_counter() - started

        if asyncio.iscoroutinefunction(original):

            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    add(started)

        else:

            def timed(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    add(started)

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    @contextlib.contextmanager
    def installed(self) -> Iterator[Steps]:
        for owner, name, label in STEPS:
            self.wrap(owner, name, label)
        try:
            yield self
        finally:
            for owner, name, original in reversed(self._undo):
                setattr(owner, name, original)
            self._undo.clear()

    @contextlib.contextmanager
    def round(self, kind: str) -> Iterator[None]:
        self.current = {}
        started = time.perf_counter()
        try:
            yield
        finally:
            self.current["total"] = time.perf_counter() - started
            self.rounds.setdefault(kind, []).append(self.current)
            self.current = None

    def p50_ms(self, kind: str) -> dict[str, float]:
        rows = self.rounds.get(kind, [])
        labels = sorted({k for r in rows for k in r}, key=_step_order)
        return {k: percentile([r.get(k, 0.0) * 1000 for r in rows], 50) for k in labels}


STEPS: list[tuple[type, str, str]] = [
    (OutputExport, "save_all", "pause: list and export changed files (save_all)"),
    (Pausing, "_save_namespace", "pause: namespace saved and copied out"),
    (DockerSandbox, "open_file", "  open the snapshot in the sandbox"),
    (SnapshotStore, "save", "  copy the snapshot to the engine's disk"),
    (Placement, "remove", "pause: Placement.remove"),
    (Kernel, "shutdown", "  kernel channels closed"),
    (DockerSandbox, "destroy", "  container removed"),
    (Placement, "start", "resume: pool acquire (Placement.start)"),
    (OutputExport, "put_back", "resume: files put back (put_back)"),
    (Pausing, "_load_namespace", "resume: namespace copied in and loaded"),
    (SnapshotStore, "open", "  snapshot checksum checked (open)"),
    (DockerSandbox, "write_file", "  write_file into the sandbox (also put_back's)"),
    (Kernel, "execute", "  kernel execute (save or load)"),
    (SessionImpl, "_refresh_deadline", "resume: sandbox deadline moved"),
    (SessionImpl, "_save", "row written (_save)"),
]


def _step_order(label: str) -> int:
    names = [label for _, _, label in STEPS] + ["total"]
    return names.index(label) if label in names else len(names)


# --- 1. pause, resume, and the fresh session + re-run ---


async def _pool_ready(engine: Engine) -> None:
    """Both pools full: the one new sessions take, and the one resumes take (stack imported)."""
    assert engine.pool is not None
    await engine.pool.wait_ready(POOL, timeout=600)
    if (resumes := engine.runtime.resume_pool) is not None:
        await resumes.wait_ready(timeout=600)


async def pause_resume(size: str, rounds: int, steps: Steps, data_dir: Path) -> dict[str, Any]:
    code = cells(SIZES[size])
    pause: list[float] = []
    resume: list[float] = []
    fresh: list[float] = []
    snapshot_bytes = 0
    async with fixtures.engine(
        data_dir, pool_size=POOL, pool_min=POOL, pool_max=POOL, **LONG
    ) as engine:
        await _pool_ready(engine)
        session = await engine.session(f"capacity-{size}")
        expected = await run_cells(session, code)
        for n in range(rounds):
            await _pool_ready(engine)
            with steps.round(f"pause {size}"):
                started = time.perf_counter()
                info = await session.pause()
                pause.append(time.perf_counter() - started)
            row = engine.store.session_rows.owned(session.id, None, SessionNotFound(session.id))
            meta = SnapshotMeta.from_json(row["snapshot"])
            snapshot_bytes = meta.bytes if meta is not None else 0
            if info.status.value != "paused":
                raise RuntimeError(f"the pause left it {info.status}")
            with steps.round(f"resume {size}"):
                started = time.perf_counter()
                await session.resume()
                resume.append(time.perf_counter() - started)
            got = (await session.execute(CHECK, timeout=120)).stdout
            if got != expected:
                raise RuntimeError(f"resume {n} lost state: {got!r} != {expected!r}")
            common.console.print(
                f"  [dim]{size} round {n + 1}/{rounds}: pause {pause[-1] * 1000:.0f} ms, "
                f"resume {resume[-1] * 1000:.0f} ms[/]"
            )
        await engine.sessions.close(session.id)
        for n in range(rounds):
            await _pool_ready(engine)
            started = time.perf_counter()
            other = await engine.session(f"capacity-{size}-fresh-{n}")
            got = await run_cells(other, code)
            fresh.append(time.perf_counter() - started)
            if got != expected:
                raise RuntimeError(f"the re-run printed {got!r}, not {expected!r}")
            await engine.sessions.close(other.id)
        misses = engine.pool.misses if engine.pool is not None else 0
    series = {"pause": pause, "resume": resume, "fresh_and_rerun": fresh}
    return {
        **{what: summary(seconds) for what, seconds in series.items()},
        "p95_ms": {what: p95_ms(seconds) for what, seconds in series.items()},
        "snapshot_bytes": snapshot_bytes,
        "rounds": rounds,
        "pool_misses": misses,
    }


# --- 2. idle memory ---


async def idle_memory(data_dir: Path) -> dict[str, Any]:
    async with fixtures.engine(data_dir) as engine:
        sessions = []
        for n in range(IDLE_SESSIONS):
            session = await engine.session(f"idle-{n}")
            await session.execute(fixtures.TRIVIAL)
            sessions.append(session)
        await asyncio.sleep(IDLE_SECONDS)
        samples: list[dict[str, float]] = []
        for _ in range(SAMPLES):
            shims = density._shims()
            for s in sessions:
                row = density.container_memory(getattr(s.sandbox, "container_id", ""), shims)
                if row:
                    samples.append(row)
            await asyncio.sleep(5)
    keys = samples[0].keys() if samples else ()
    return {
        "sessions": IDLE_SESSIONS,
        "samples": len(samples),
        "mean_mb": {k: sum(r[k] for r in samples) / len(samples) for k in keys},
        "min_mb": {k: min(r[k] for r in samples) for k in keys},
        "max_mb": {k: max(r[k] for r in samples) for k in keys},
    }


# --- 3. 10,000 paused sessions ---


def _create_sources(server: fixtures.Server) -> dict[str, str]:
    """SOURCES sessions with the 1 MB namespace, paused for real; the check each printed."""
    expected = {}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
        for n in range(SOURCES):
            r = client.post("/v1/sessions", json={"thread_id": f"source-{n}"})
            r.raise_for_status()
            sid = r.json()["id"]
            for cell in cells(SIZES["1 MB"]):
                r = client.post(f"/v1/sessions/{sid}/execute", json={"code": cell})
                r.raise_for_status()
                if r.json().get("error"):
                    raise RuntimeError(f"a cell failed: {r.json()['error']}")
            expected[sid] = r.json()["stdout"]
            r = client.post(f"/v1/sessions/{sid}/pause")
            r.raise_for_status()
            if r.json()["status"] != "paused":
                raise RuntimeError(f"the pause left {sid} {r.json()['status']}")
    return expected


def _folder_bytes(folder: Path) -> int:
    """Bytes of disk (allocated blocks) under ``folder``."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _database_bytes(data_dir: Path) -> int:
    return sum(
        _folder_bytes(p) if p.is_dir() else p.stat().st_blocks * 512
        for p in data_dir.glob(f"{DATABASE}*")
    )


def _checkpoint(data_dir: Path) -> None:
    """Fold the write-ahead log into the database, so that its size is what it keeps."""
    from engine.store import Store

    store = Store(data_dir / DATABASE)
    try:
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def _timed_requests(client: httpx.Client, paths: list[str]) -> list[float]:
    took = []
    for path in paths:
        started = time.perf_counter()
        r = client.get(path)
        took.append(time.perf_counter() - started)
        r.raise_for_status()
    return took


def _check_listing(client: httpx.Client, limit: int, total: int) -> int:
    """Page through every session; all paused. How many pages it took."""
    seen: set[str] = set()
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        page = client.get("/v1/sessions", params=params).json()
        pages += 1
        for item in page["data"]:
            if item["status"] != "paused":
                raise RuntimeError(f"{item['id']} is {item['status']}, not paused")
            seen.add(item["id"])
        if not page["has_more"]:
            break
        after = page["last_id"]
    if len(seen) != total:
        raise RuntimeError(f"the listing showed {len(seen)} sessions, not {total}")
    return pages


async def _library_start(data_dir: Path) -> float:
    started = time.perf_counter()
    async with fixtures.engine(data_dir, **LONG) as engine:
        took = time.perf_counter() - started
        if len(engine.sessions) != 0:
            raise RuntimeError("the engine took up paused sessions at start")
    return took


def _server_start(data_dir: Path) -> tuple[float, float]:
    """Seconds from spawning the server until it answered /readyz, and of its application
    start-up alone (from its log: the engine, the services; no imports, no polling)."""
    started = time.perf_counter()
    with fixtures.Server(data_dir, **_env(LONG)) as server:
        ready = time.perf_counter() - started
    marks: dict[str, float] = {}
    for line in server.log_path.read_text().splitlines():
        with contextlib.suppress(ValueError, KeyError):
            record = json.loads(line)
            marks.setdefault(record["msg"], float(record["ts"]))
    return ready, marks[APP_STARTED] - marks[APP_STARTING]


def _env(settings: dict[str, Any]) -> dict[str, str]:
    return {f"SANDBOX_{k.upper()}": str(v) for k, v in settings.items()}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _served(
    data: Path, sources: list[str], clones: list[str], expected: dict[str, str]
) -> dict[str, Any]:
    """A server on the folder: lists, lookups, a full paging, and a few clones resumed."""
    with (
        fixtures.Server(data, **_env(LONG)) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client,
    ):
        _timed_requests(client, ["/v1/sessions"] * 5)  # warm-up
        list20 = _timed_requests(client, ["/v1/sessions?limit=20"] * LIST_REQUESTS)
        list100 = _timed_requests(client, ["/v1/sessions?limit=100"] * LIST_REQUESTS)
        oldest = client.get("/v1/sessions", params={"limit": 100, "order": "asc"}).json()
        after = oldest["data"][50]["id"]
        list_after = _timed_requests(
            client, [f"/v1/sessions?limit=20&after={after}"] * LIST_REQUESTS
        )
        picks = random.Random(1).sample([*sources, *clones], LOOKUPS)
        lookups = _timed_requests(client, [f"/v1/sessions/{sid}" for sid in picks])
        pages = _check_listing(client, 100, len(sources) + len(clones))
        server_rss = _rss_mb(server.pid)
        checked = 0
        for sid in random.Random(2).sample(clones, RESUMED_CLONES):
            source = sources[clones.index(sid) % len(sources)]
            r = client.post(f"/v1/sessions/{sid}/execute", json={"code": CHECK})
            r.raise_for_status()
            if r.json()["stdout"] != expected[source]:
                raise RuntimeError(f"clone {sid} resumed without its variables: {r.json()}")
            checked += 1
            client.post(f"/v1/sessions/{sid}/pause").raise_for_status()
    return {
        "list_limit_20": summary(list20),
        "list_limit_100": summary(list100),
        "list_limit_20_after_cursor": summary(list_after),
        "list_p95_ms": {"limit_20": p95_ms(list20), "limit_100": p95_ms(list100)},
        "lookup": summary(lookups),
        "lookup_p95_ms": p95_ms(lookups),
        "listing_pages_at_100": pages,
        "server_rss_mb_with_all_paused": server_rss,
        "resumed_clones_checked": checked,
    }


async def paused_scale(tmp: Path, total: int) -> dict[str, Any]:
    data = tmp / "scale"
    empty = tmp / "empty"
    with fixtures.Server(data, **_env(LONG)) as server:
        expected = _create_sources(server)
    sources = list(expected)
    _checkpoint(data)
    db_before = _database_bytes(data)
    snapshot_sizes = [(data / SNAPSHOT_FOLDER / s).stat().st_blocks * 512 for s in sources]
    started = time.perf_counter()
    clones = await clone_paused(data, sources, total - SOURCES)
    clone_seconds = time.perf_counter() - started
    _checkpoint(data)
    db_after = _database_bytes(data)
    snapshots_after = _folder_bytes(data / SNAPSHOT_FOLDER)
    common.console.print(f"  [dim]{len(clones)} clones made in {clone_seconds:.0f} s[/]")

    folders = {"0 paused": empty, f"{total} paused": data}
    starts: dict[str, dict[str, list[float]]] = {
        kind: {label: [] for label in folders}
        for kind in ("library", "server", "server_application")
    }
    for folder in folders.values():
        await _library_start(folder)  # the first open makes the database, or warms caches
    for _ in range(STARTS):  # interleaved, so that the machine's load weighs on both alike
        for label, folder in folders.items():
            starts["library"][label].append(await _library_start(folder))
            ready, app = _server_start(folder)
            starts["server"][label].append(ready)
            starts["server_application"][label].append(app)

    served = _served(data, sources, clones, expected)
    per_snapshot = sum(snapshot_sizes) / len(snapshot_sizes)
    per_rows = (db_after - db_before) / max(1, len(clones))
    return {
        "paused_sessions": total,
        "really_paused": SOURCES,
        "clones": len(clones),
        "clone_seconds": clone_seconds,
        **served,
        "start_seconds": {
            kind: {label: summary(v) for label, v in runs.items()} for kind, runs in starts.items()
        },
        "disk": {
            "snapshot_bytes_each": per_snapshot,
            "rows_bytes_each": per_rows,
            "per_paused_session_bytes": per_snapshot + per_rows,
            "snapshots_folder_bytes": snapshots_after,
            "database_bytes": db_after,
            "shared_file_objects": "the clones put /mnt/data back from their source's file "
            "objects (head.csv, about 9 kB), not counted per session",
        },
    }


# --- the report ---


@common.entry
def main(args: argparse.Namespace) -> int:
    quick = common.quick(args)
    rounds = {"1 MB": 4 if quick else 20, "100 MB": 2 if quick else 5}
    total = 500 if quick else PAUSED
    steps = Steps()
    measured: dict[str, Any] = {}
    with fixtures.temp_dir("capacity") as tmp, steps.installed():
        for size, n in rounds.items():
            common.console.print(f"[bold]pause and resume, {size} namespace[/]")
            measured[size] = asyncio.run(pause_resume(size, n, steps, tmp / f"pr-{n}-{size[:3]}"))
    with fixtures.temp_dir("capacity-idle") as tmp:
        common.console.print("[bold]idle memory[/]")
        idle = asyncio.run(idle_memory(tmp / "engine"))
    with fixtures.temp_dir("capacity-scale") as tmp:
        common.console.print(f"[bold]{total} paused sessions[/]")
        scale = asyncio.run(paused_scale(tmp, total))
    return report(args, measured, steps, idle, scale)


def report(
    args: argparse.Namespace,
    measured: dict[str, Any],
    steps: Steps,
    idle: dict[str, Any],
    scale: dict[str, Any],
) -> int:
    per_session = idle["mean_mb"].get("per_session_mb", float("nan"))
    total_ram = meminfo()["MemTotal"]
    resident = int(RESIDENT_SHARE * total_ram / (per_session * MB)) if per_session > 0 else 0
    rows = []
    for size, m in measured.items():
        for what in ("pause", "resume", "fresh_and_rerun"):
            rows.append(
                (
                    f"{what.replace('_', ' + ')} {size}",
                    m[what]["p50_ms"],
                    m["p95_ms"][what],
                    m[what]["n"],
                )
            )
    common.table("Pause and resume (warm pool)", ["step", "p50 ms", "p95 ms", "n"], rows)
    breakdown = {kind: steps.p50_ms(kind) for kind in steps.rounds}
    for kind, parts in breakdown.items():
        common.table(
            f"Where a {kind} spends its time (p50 of each step)", ["step", "ms"], parts.items()
        )
    lib = scale["start_seconds"]["library"]
    srv = scale["start_seconds"]["server"]
    app = scale["start_seconds"]["server_application"]
    common.table(
        f"{scale['paused_sessions']} paused sessions",
        ["measure", "value"],
        [
            ("GET /v1/sessions (limit 20) p50 ms", scale["list_limit_20"]["p50_ms"]),
            ("GET /v1/sessions (limit 20) p95 ms", scale["list_p95_ms"]["limit_20"]),
            ("GET /v1/sessions (limit 100) p50 ms", scale["list_limit_100"]["p50_ms"]),
            ("GET /v1/sessions (limit 100) p95 ms", scale["list_p95_ms"]["limit_100"]),
            ("GET /v1/sessions?after= p50 ms", scale["list_limit_20_after_cursor"]["p50_ms"]),
            ("GET /v1/sessions/{id} p50 ms", scale["lookup"]["p50_ms"]),
            ("GET /v1/sessions/{id} p95 ms", scale["lookup_p95_ms"]),
            *((f"library start, {k}, p50 ms", v["p50_ms"]) for k, v in lib.items()),
            *((f"server start to ready, {k}, p50 ms", v["p50_ms"]) for k, v in srv.items()),
            *((f"server application start-up, {k}, p50 ms", v["p50_ms"]) for k, v in app.items()),
            ("server RSS with all paused, MB", scale["server_rss_mb_with_all_paused"]),
            ("disk per paused session, kB", scale["disk"]["per_paused_session_bytes"] / 1024),
            ("  snapshot, kB", scale["disk"]["snapshot_bytes_each"] / 1024),
            ("  rows, kB", scale["disk"]["rows_bytes_each"] / 1024),
            ("clones made, s", scale["clone_seconds"]),
        ],
    )
    common.table(
        f"Idle memory ({idle['sessions']} sessions x {SAMPLES} samples, MB)",
        ["measure", "mean", "min", "max"],
        [(k, v, idle["min_mb"][k], idle["max_mb"][k]) for k, v in idle["mean_mb"].items()],
    )
    report = Report("capacity", "Capacity: idle memory, pause and resume, 10,000 paused sessions")
    report.data.update(
        {
            "pause_resume": measured,
            "steps_p50_ms": breakdown,
            "idle_memory": idle,
            "resident_sessions": {
                "fit": resident,
                "per_session_mb": per_session,
                "how": f"{RESIDENT_SHARE:.0%} of MemTotal ({total_ram / 2**30:.1f} GiB) divided "
                "by the mean PSS of an idle session's processes plus its containerd shim",
            },
            "paused_scale": scale,
            "method": __doc__,
        }
    )
    one = measured["1 MB"]
    report.target("resume p50, 1 MB namespace", one["resume"]["p50_ms"], RESUME_TARGET_MS, " ms")
    report.target("pause p50, 1 MB namespace", one["pause"]["p50_ms"], PAUSE_TARGET_MS, " ms")
    report.target(
        f"GET /v1/sessions p50 at {scale['paused_sessions']} paused",
        scale["list_limit_20"]["p50_ms"],
        LIST_TARGET_MS,
        " ms",
    )
    zero, full = (v["p50_ms"] for v in lib.values())
    report.notes.append(
        f"library start-up p50: {zero:.0f} ms with 0 paused, {full:.0f} ms with "
        f"{scale['paused_sessions']}; {resident} idle sessions fit at {per_session:.0f} MB each"
    )
    report.notes.append(
        f"{scale['clones']} of the {scale['paused_sessions']} paused sessions are clones of "
        f"{scale['really_paused']} really paused ones (see benchmarks/paused_clones.py); "
        f"{scale['resumed_clones_checked']} random clones resumed with their variables"
    )
    categories = [
        f"{what} {size}" for size in measured for what in ("pause", "resume", "fresh+re-run")
    ]
    common.bar_chart(
        common.results_dir(args) / "capacity.png",
        "Pause, resume, and a fresh session + re-run (log scale)",
        categories,
        {
            "p50": [
                m[k]["p50_ms"]
                for m in measured.values()
                for k in ("pause", "resume", "fresh_and_rerun")
            ],
            "p95": [
                m["p95_ms"][k]
                for m in measured.values()
                for k in ("pause", "resume", "fresh_and_rerun")
            ],
        },
        "ms",
        log=True,
        lines={"resume target 300 ms": RESUME_TARGET_MS, "pause target 500 ms": PAUSE_TARGET_MS},
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("capacity"))
