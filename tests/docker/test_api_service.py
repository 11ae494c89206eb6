"""Service behaviour: client disconnects, keys files, localhost-only without keys, draining."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from engine import Settings

from ..support.engines import make_settings
from ..support.servers import LiveServer


def test_client_disconnect_interrupts_the_execution(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {LiveServer.keys[0]}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
        sid = client.post("/v1/sessions", json={}).json()["id"]
        client.post(f"/v1/sessions/{sid}/execute", json={"code": "kept = 41"})
        code = "import time\nprint('started', flush=True)\ntime.sleep(120)"
        with client.stream(
            "POST",
            f"/v1/sessions/{sid}/execute",
            json={"code": code},
            headers={"Accept": "text/event-stream"},
        ) as r:
            for line in r.iter_lines():
                if "started" in line:
                    break  # leaving the block closes the connection mid-run
        started = time.monotonic()
        r = client.post(f"/v1/sessions/{sid}/execute", json={"code": "kept + 1"})
        assert r.json()["result"] == {"text/plain": "42"}  # interrupted, state kept
        assert time.monotonic() - started < 10
        client.delete(f"/v1/sessions/{sid}")


def test_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# tenants\nkey-one\n\n  key-two  \n")
    settings = Settings(data_dir=tmp_path, api_keys="key-zero", api_keys_file=keys)
    assert settings.load_api_keys() == ["key-zero", "key-one", "key-two"]


def test_without_keys_the_service_binds_localhost_only(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(tmp_path / "data"),
        "SANDBOX_API_KEYS": "",
        "SANDBOX_POOL_SIZE": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", "--host", "0.0.0.0", "--port", "18931"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "running on" in line.lower():
                break
        log = "".join(lines)
        assert "binding 127.0.0.1 instead of 0.0.0.0" in log
        assert "no API key configured" in log
        assert "http://127.0.0.1:18931" in log
        assert httpx.get("http://127.0.0.1:18931/healthz").json() == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_shutdown_drains_running_executions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="k", drain_timeout=30)
    server = LiveServer(settings)
    server.start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}, timeout=60)
    sid = client.post("/v1/sessions", json={}).json()["id"]
    result: dict[str, object] = {}

    def run() -> None:
        r = client.post(
            f"/v1/sessions/{sid}/execute", json={"code": "import time; time.sleep(2); 'finished'"}
        )
        result.update(r.json())

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    server.stop()
    worker.join(timeout=60)
    assert result.get("result") == {"text/plain": "'finished'"}


def test_session_quota_answers_403(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="k", max_sessions_per_owner=1)
    server = LiveServer(settings)
    server.start()
    try:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer k"}, timeout=60
        )
        assert client.post("/v1/sessions", json={}).status_code == 200
        r = client.post("/v1/sessions", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "quota_exceeded"
    finally:
        server.stop()
