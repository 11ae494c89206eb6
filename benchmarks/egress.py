"""Controlled egress: what a sandbox's own proxy costs.

The same HTTPS GET on the test internet's server (``benchmarks.egress_internet``), a new
connection each time, timed in Python around ``urllib.request.urlopen(...).read()``:

- straight: from a container on the server's network, no proxy (the floor);
- through the proxy: from a sandbox's kernel with an allowlist (CONNECT, then TLS end to end);
- decrypting: from a sandbox with a domain secret for that name (the proxy ends TLS with the
  engine's CA, puts the value in the header and opens its own TLS to the server).

Then one proxy's memory, as ``docker stats`` shows it (usage less inactive file pages), after
its run, and how long a session with an allowlist takes to create against one without.
Run: ``sandbox-engine bench egress`` or ``python -m benchmarks.egress [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import docker

from engine import Engine, ExecutionStatus, Session
from engine.image import build_proxy_image, default_image_tag
from engine.sandbox.egress_proxy import proxy_name

from . import common, fixtures
from .common import Report
from .egress_internet import Internet, running_internet

SAMPLES = 200
WARMUP = 10
URL = "https://api.good.test/latency"
SECRET = "egress-bench-secret-value"
MIB = 1024 * 1024

GETS = """
import json, ssl, time, urllib.request
context = ssl.create_default_context(cafile=CA)
times = []
for _ in range(WARMUP + SAMPLES):
    # A new Request each time: urllib's proxy handler rewrites the one it is given.
    request = urllib.request.Request(URL, headers={"Authorization": "Bearer " + TOKEN})
    started = time.perf_counter()
    with urllib.request.urlopen(request, context=context, timeout=20) as page:
        page.read()
    times.append(time.perf_counter() - started)
print(json.dumps(times[WARMUP:]))
"""


def _gets(ca: str | None, token: str, samples: int) -> str:
    """The timing loop; ``ca`` None trusts the default store (SSL_CERT_FILE in a sandbox)."""
    return (
        f"import os\nCA = {ca!r}\nURL = {URL!r}\nTOKEN = {token}\n"
        f"WARMUP = {WARMUP}\nSAMPLES = {samples}\n{GETS}"
    )


def _straight(internet: Internet, folder: Path, samples: int) -> list[float]:
    """The loop in a container on the server's own network: no proxy in the way."""
    client = docker.from_env()
    try:
        out = client.containers.run(
            default_image_tag(fixtures.bench_settings(folder)),
            ["python3", "-c", _gets("/certs/ca.pem", "'none'", samples)],
            network=internet.network,
            volumes={str(internet.ca_file.parent): {"bind": "/certs", "mode": "ro"}},
            environment={"HTTPS_PROXY": "", "https_proxy": ""},
            remove=True,
        )
    finally:
        client.close()
    times: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    return times


async def _in_sandbox(session: Session, code: str, internet: Internet) -> list[float]:
    ca_file = "/tmp/test-ca.pem"
    write_ca = f"open({ca_file!r}, 'w').write({internet.ca_pem!r})\n"
    result = await session.execute(write_ca + code, timeout=600)
    if result.status is not ExecutionStatus.OK:
        raise RuntimeError(f"the timing loop failed: {result.error}")
    times: list[float] = json.loads(result.stdout.strip().splitlines()[-1])
    return times


def _proxy_memory_mib(session: Session) -> float:
    client = docker.from_env()
    try:
        stats = client.containers.get(proxy_name(session.sandbox.id)).stats(stream=False)
    finally:
        client.close()
    memory = stats["memory_stats"]
    # What `docker stats` shows: less the page cache it can drop (cgroup v2 name, then v1's).
    counters = memory.get("stats", {})
    inactive = counters.get("inactive_file", counters.get("total_inactive_file", 0))
    return float(memory["usage"] - inactive) / MIB


def _latency(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {**common.summary(seconds), "p95_ms": common.percentile(ms, 95)}


async def _create(engine: Engine, policy: dict[str, Any] | None) -> tuple[Session, float]:
    started = time.perf_counter()
    session = await engine.session(network_policy=policy) if policy else await engine.session()
    return session, time.perf_counter() - started


async def _measure(internet: Internet, data_dir: Path, samples: int) -> dict[str, Any]:
    allow = {"type": "allowlist", "allowed_domains": ["api.good.test"]}
    secret = {
        **allow,
        "domain_secrets": [{"domain": "api.good.test", "name": "API_TOKEN", "value": SECRET}],
    }
    settings = fixtures.bench_settings(data_dir, **internet.settings())
    await asyncio.to_thread(build_proxy_image, settings)
    async with Engine(settings) as engine:
        fixtures.IMAGES.add(engine.image)
        plain, plain_s = await _create(engine, None)
        await engine.sessions.close(plain.id)
        passing, passing_s = await _create(engine, allow)
        through = await _in_sandbox(passing, _gets("/tmp/test-ca.pem", "'none'", samples), internet)
        passing_mib = await asyncio.to_thread(_proxy_memory_mib, passing)
        await engine.sessions.close(passing.id)
        decrypting, decrypting_s = await _create(engine, secret)
        # The engine's CA comes from SSL_CERT_FILE; the placeholder is swapped at the proxy.
        code = _gets(None, "os.environ['API_TOKEN']", samples)
        decrypted = await _in_sandbox(decrypting, code, internet)
        decrypting_mib = await asyncio.to_thread(_proxy_memory_mib, decrypting)
        await engine.sessions.close(decrypting.id)
    return {
        "through_proxy": through,
        "decrypting": decrypted,
        "memory_mib": {"through_proxy": passing_mib, "decrypting": decrypting_mib},
        "create_s": {"disabled": plain_s, "allowlist": passing_s, "domain secret": decrypting_s},
    }


@common.entry
def main(args: argparse.Namespace) -> int:
    samples = 30 if common.quick(args) else SAMPLES
    with fixtures.temp_dir("egress") as tmp, running_internet(tmp / "internet") as internet:
        straight = _straight(internet, tmp, samples)
        measured = asyncio.run(_measure(internet, tmp / "engine", samples))
    latency = {
        "straight": _latency(straight),
        "through the proxy": _latency(measured["through_proxy"]),
        "decrypting for a secret": _latency(measured["decrypting"]),
    }
    floor = latency["straight"]["p50_ms"]
    memory, created = measured["memory_mib"], measured["create_s"]
    rows = [
        ("straight", float("nan"), created["disabled"]),
        ("through the proxy", memory["through_proxy"], created["allowlist"]),
        ("decrypting for a secret", memory["decrypting"], created["domain secret"]),
    ]
    common.table(
        f"HTTPS GET on a local server, a new connection each ({samples} samples)",
        ["path", "p50 ms", "p95 ms", "added p50 ms", "proxy MiB", "session create s"],
        [
            (
                name,
                latency[name]["p50_ms"],
                latency[name]["p95_ms"],
                latency[name]["p50_ms"] - floor,
                mib,
                create_s,
            )
            for name, mib, create_s in rows
        ],
    )
    report = Report("egress", "Controlled egress: the latency and memory of a sandbox's proxy")
    report.data.update(
        {
            "samples": samples,
            "url": URL,
            "https_get": latency,
            "added_p50_ms": {
                name: row["p50_ms"] - floor for name, row in latency.items() if name != "straight"
            },
            "proxy_memory_mib": measured["memory_mib"],
            "session_create_s": measured["create_s"],
        }
    )
    report.notes.append(
        "straight: a container on the server's network; the others: a sandbox's kernel through "
        "its own proxy; 'session create s' on the straight row is a session without egress"
    )
    return common.finish(report, args)


if __name__ == "__main__":
    raise SystemExit(common.standalone("egress"))
