"""Prometheus metrics the library records; the HTTP service exposes them at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .results import ExecutionResult, ExecutionStatus

SESSIONS_LIVE = Gauge("sandbox_sessions_live", "Sessions with a running sandbox")
SESSIONS_CREATED = Counter("sandbox_sessions_created", "Sessions started")
SESSIONS_ENDED = Counter("sandbox_sessions_ended", "Sessions ended", ["reason"])
EXECUTIONS = Counter("sandbox_executions", "Executions finished", ["status"])
EXECUTION_SECONDS = Histogram(
    "sandbox_execution_seconds",
    "Wall time of executions",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TIMEOUTS = Counter("sandbox_timeouts", "Executions stopped at their timeout", ["action"])
OOM_KILLS = Counter("sandbox_oom_kills", "Kernels killed for running out of memory")
POOL_ACQUIRES = Counter(
    "sandbox_pool_acquires", "Session starts by where the sandbox came from", ["pool", "source"]
)
POOL_READY = Gauge("sandbox_pool_ready", "Warm sandboxes ready to hand out", ["pool"])
FILES_CREATED = Counter("sandbox_files_created", "File objects created", ["purpose"])


def record_execution(result: ExecutionResult) -> None:
    EXECUTIONS.labels(result.status.value).inc()
    EXECUTION_SECONDS.observe(result.duration_ms / 1000)
    if result.status is ExecutionStatus.TIMEOUT:
        TIMEOUTS.labels("restart" if result.state_lost else "interrupt").inc()
    if result.error is not None and result.error.name == "OutOfMemory":
        OOM_KILLS.inc()
