"""``sandbox-engine cluster demo``: a head, 2 nodes each with its own dockerd (the sandbox image
loaded into it) and an API replica come up; a session runs on a node's own Docker; ``--stop``
removes every process, container and folder it made."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from engine.cluster.demo import STATE_FILE
from engine.cluster.ray_nodes import group_alive

from ..support.serve_process import ROOT, containers, engine_env

UP_SECONDS = 600
DEMO = ["cluster", "demo", "--nodes", "2", "--replicas", "1", "--json"]


@pytest.fixture
def folder() -> Iterator[Path]:
    # Short: dockerd's and containerd's sockets live below it (108 bytes at most).
    path = Path(tempfile.mkdtemp(prefix="sedemo-"))
    try:
        yield path
    finally:
        if (path / STATE_FILE).exists():  # the test failed before --stop
            demo(path, "--stop")
        shutil.rmtree(path, ignore_errors=True)


def demo(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "cluster", "demo", "--folder", str(folder), *args],
        env=engine_env(folder / "cli"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _has_link(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def test_the_demo_comes_up_with_a_dockerd_per_node_and_leaves_nothing(folder: Path) -> None:
    # A node's dockerd runs without a bridge; one started in this machine's network namespace
    # would delete this machine's default bridge, which other containers (egress proxies) use.
    had_bridge = _has_link("docker0")
    out = folder / "demo.stdout"
    with out.open("w") as stdout:
        running = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *DEMO, "--folder", str(folder)],
            env=engine_env(folder / "cli"),
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        state = _wait_for_state(out, running)
        nodes = state["nodes"]
        assert len(nodes) == 2 and len(state["urls"]) == 1
        sockets = [n["docker_host"] for n in nodes]
        assert len(set(sockets)) == 2 and all(s.startswith("unix://") for s in sockets)

        with httpx.Client(base_url=state["urls"][0], timeout=120) as http:
            ran = []
            for _ in range(2):  # one per node: placement spreads them
                session = http.post("/v1/sessions", json={})
                assert session.status_code == 200, session.text
                sid = session.json()["id"]
                result = http.post(f"/v1/sessions/{sid}/execute", json={"code": "6 * 7"})
                assert result.json()["result"]["text/plain"] == "42", result.text
                ran.append(sid)
        on_each = [
            docker.DockerClient(base_url=s).containers.list(
                filters={"label": "org.sandbox-engine.home"}
            )
            for s in sockets
        ]
        assert [len(c) for c in on_each] == [1, 1]  # each node ran its sandbox on its own dockerd
        assert all(containers(Path(n["data_dir"])) == [] for n in nodes)  # none on this machine's

        stopped = demo(folder, "--stop")
        assert stopped.returncode == 0, stopped.stderr
        running.wait(120)
    finally:
        if running.poll() is None:
            running.kill()

    groups = [state["head"]["pid"], *(r["pid"] for r in state["replicas"])]
    for node in nodes:
        groups += [node["node"]["pid"], node["ray_pid"], node["agent_pid"], node["dockerd"]["pid"]]
    end = time.monotonic() + 60
    while alive := [g for g in groups if group_alive(g)]:
        assert time.monotonic() < end, f"still running: {alive}"
        time.sleep(0.2)
    assert not (folder / STATE_FILE).exists()
    assert not Path(state["ray_temp"]).exists()
    for node in nodes:
        assert not (Path(node["data_dir"]).parent / "docker").exists()
        assert containers(Path(node["data_dir"])) == []
    assert _has_link("docker0") == had_bridge


def _wait_for_state(out: Path, running: subprocess.Popen[bytes]) -> dict:
    end = time.monotonic() + UP_SECONDS
    while time.monotonic() < end:
        for line in out.read_text().splitlines():
            if line.startswith("{"):
                state: dict = json.loads(line)
                return state
        assert running.poll() is None, out.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"the demo was not up within {UP_SECONDS} s")
