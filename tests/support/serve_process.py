"""``sandbox-engine serve`` as a real process on a data folder, for restart tests."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from engine.runtime import HOME_LABEL

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def engine_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of an engine command on ``data_dir``: this checkout's code first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SANDBOX_") or k == "SANDBOX_TEST_DOCKERD_RESTART"
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["SANDBOX_DATA_DIR"] = str(data_dir)
    env.update({"SANDBOX_POOL_SIZE": "0", "SANDBOX_MEMORY_LIMIT_MB": "512"})
    env.update({f"SANDBOX_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def engine_command(
    data_dir: Path, *args: str, timeout: float = 120, **settings: object
) -> subprocess.CompletedProcess[str]:
    """Run ``sandbox-engine ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env=engine_env(data_dir, **settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def home_filter(data_dir: Path) -> dict[str, str]:
    home = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return {"label": f"{HOME_LABEL}={home}"}


def containers(data_dir: Path) -> list[str]:
    """Names of the data folder's containers, in any state."""
    client = docker.from_env()
    # The low-level list: the high-level one inspects each container, which races removals.
    listed = client.api.containers(all=True, filters=home_filter(data_dir))
    return sorted(c["Names"][0].lstrip("/") for c in listed)


def volumes(data_dir: Path) -> list[str]:
    client = docker.from_env()
    return sorted(v.name for v in client.volumes.list(filters=home_filter(data_dir)))


def remove_all(data_dir: Path) -> None:
    """What a test leaves, whatever happened: every container and volume of the folder."""
    client = docker.from_env()
    for c in client.containers.list(all=True, filters=home_filter(data_dir), sparse=True):
        c.remove(force=True, v=True)
    for v in client.volumes.list(filters=home_filter(data_dir)):
        v.remove(force=True)


class ServeProcess:
    """``sandbox-engine serve`` on ``data_dir``; ``kill()`` is SIGKILL, ``stop()`` SIGTERM."""

    def __init__(self, data_dir: Path, **settings: object) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", "serve", "--port", str(self.port)],
                env=engine_env(data_dir, **settings),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until ``/readyz`` answered."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.output()}")
            try:
                if self.client.get("/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"serve did not get ready: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.client.request(method, path, **kwargs)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def execute(self, session_id: str, code: str, timeout: float = 60) -> Any:
        body = {"code": code, "timeout": timeout}
        return self.call("POST", f"/v1/sessions/{session_id}/execute", json=body)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.client.close()

    def stop(self, timeout: float = 90) -> bool:
        """SIGTERM; whether the server shut down gracefully. (Uvicorn re-raises the signal
        once its shutdown is complete, so the exit status is -SIGTERM either way.)"""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.client.close()
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.output()


def start(data_dir: Path, **settings: object) -> ServeProcess:
    """``serve`` on ``data_dir``, answering; killed if it never gets there."""
    server = ServeProcess(data_dir, **settings)
    try:
        server.wait_ready()
    except BaseException:
        server.kill()
        raise
    return server
