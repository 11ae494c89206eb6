"""Prints the committed figures (``benchmarks/results/*.json``, or those of RESULTS_DIR) as the
Markdown tables of ``docs/performance.md``: ``python -m benchmarks.summary [RESULTS_DIR]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .common import COMMITTED_RESULTS


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def targets(results: Path) -> list[str]:
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for name in ("acquire", "roundtrip", "density", "peers", "capacity"):
        report = _load(results, name)
        for t in (report or {}).get("targets", []):
            op = ">=" if t["at_least"] else "<="
            lines.append(
                f"| {t['name']} {op} {t['limit']:g}{t['unit']} | {t['value']:.3g}{t['unit']} "
                f"| {'yes' if t['met'] else '**no**'} |"
            )
    return lines


def figures(results: Path) -> list[str]:
    lines = ["| measure | p50 | p99 |", "| --- | --- | --- |"]
    acquire = _load(results, "acquire")
    if acquire:
        for path, s in acquire["latency"].items():
            lines.append(f"| acquire: {path} | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} |")
    roundtrip = _load(results, "roundtrip")
    if roundtrip:
        for path, s in roundtrip["latency"].items():
            lines.append(
                f"| x = 1 round trip: {path.replace('_', ' ')} | {_ms(s['p50_ms'])} "
                f"| {_ms(s['p99_ms'])} |"
            )
    task = _load(results, "task")
    if task:
        for path, steps in task["steps_ms"].items():
            s = steps["total"]
            lines.append(
                f"| realistic task, {path}: total | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} |"
            )
    throughput = _load(results, "throughput")
    if throughput:
        for level, r in throughput["levels"].items():
            lines.append(
                f"| throughput, {level} sessions: {r['executions_per_second']:.0f} exec/s "
                f"| {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} |"
            )
    return lines


def peers(results: Path) -> list[str]:
    report = _load(results, "peers")
    if not report:
        return []
    lines = [
        "| system | version | start p50 | x = 1 p50 | engine x = 1 p50, same run | ratio "
        "| task p50 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for peer, r in report["systems"].items():
        p, e = r["peer"], r["engine_same_run"]
        start = _ms(p["start"]["p50_ms"]) if p.get("start", {}).get("n") else "-"
        lines.append(
            f"| {peer} | {r['version']} | {start} | {_ms(p['trivial']['p50_ms'])} "
            f"| {_ms(e['trivial']['p50_ms'])} | {r['ratio_trivial_p50']:.1f}x "
            f"| {_ms(p['task_total']['p50_ms'])} |"
        )
    return lines


def density(results: Path) -> list[str]:
    report = _load(results, "density")
    if not report:
        return []
    f = report["figures"]
    return [
        "| measure | value |",
        "| --- | --- |",
        f"| sessions started, all answering afterwards | {f['sessions_started']} |",
        f"| memory per idle session (PSS of its processes + shim) | "
        f"{f['per_session_pss_mb']:.0f} MB |",
        f"| host MemAvailable drop per session | {f['host_delta_per_session_mb']:.0f} MB |",
        *(
            [f"| an idle session's container in `docker stats` | {f['docker_stats_mb']:.0f} MB |"]
            if "docker_stats_mb" in f
            else []
        ),
        f"| sessions that fit before 90% of RAM is in use | {f['sessions_that_fit_at_90pct']} |",
        f"| CPU used by all idle sessions | {f['idle_cpu_sessions_pct']:.2f}% of the machine |",
        f"| time to start them, 4 at a time | {f['start_seconds']:.0f} s |",
    ]


def capacity(results: Path) -> list[str]:
    report = _load(results, "capacity")
    if not report:
        return []
    idle, fit = report["idle_memory"], report["resident_sessions"]
    lines = [
        "| measure | p50 | p95 |",
        "| --- | --- | --- |",
        f"| idle session: PSS of its processes + shim ({idle['sessions']} sessions, "
        f"{idle['samples']} samples) | {idle['mean_mb']['per_session_mb']:.0f} MB "
        f"| max {idle['max_mb']['per_session_mb']:.0f} MB |",
        f"| resident idle sessions that fit in 90% of RAM | {fit['fit']} | |",
    ]
    for size, m in report["pause_resume"].items():
        for what, label in (
            ("pause", "pause"),
            ("resume", "resume (warm pool)"),
            ("fresh_and_rerun", "fresh session + re-run of the cells"),
        ):
            lines.append(
                f"| {label}, {size} namespace ({m[what]['n']} rounds) "
                f"| {_ms(m[what]['p50_ms'])} | {_ms(m['p95_ms'][what])} |"
            )
    scale = report["paused_scale"]
    n = f"{scale['paused_sessions']:,}"
    lines += [
        f"| `GET /v1/sessions` at {n} paused, limit 20 | {_ms(scale['list_limit_20']['p50_ms'])} "
        f"| {_ms(scale['list_p95_ms']['limit_20'])} |",
        f"| `GET /v1/sessions` at {n} paused, limit 100 "
        f"| {_ms(scale['list_limit_100']['p50_ms'])} | {_ms(scale['list_p95_ms']['limit_100'])} |",
        f"| `GET /v1/sessions/{{id}}` at {n} paused | {_ms(scale['lookup']['p50_ms'])} "
        f"| {_ms(scale['lookup_p95_ms'])} |",
    ]
    for kind, runs in scale["start_seconds"].items():
        what = {
            "library": "engine start (library)",
            "server": "server process start until ready",
            "server_application": "server application start-up (its log)",
        }[kind]
        for label, s in runs.items():
            lines.append(
                f"| {what}, {label.replace(' paused', '')} paused "
                f"| {_ms(s['p50_ms'])} | max {_ms(s['max_ms'])} |"
            )
    disk = scale["disk"]
    lines.append(
        f"| disk per paused session, 1 MB namespace (snapshot + rows) "
        f"| {disk['per_paused_session_bytes'] / 1024:,.0f} kB "
        f"| rows {disk['rows_bytes_each'] / 1024:.1f} kB |"
    )
    return lines


def main() -> None:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED_RESULTS
    for title, lines in (
        ("Targets", targets(results)),
        ("Figures", figures(results)),
        ("Peers", peers(results)),
        ("Density", density(results)),
        ("Capacity", capacity(results)),
    ):
        print(f"### {title}\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
