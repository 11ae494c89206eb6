"""The cluster on Ray, on this machine: a real Ray head, 2 sandbox nodes (``node --join``, each a
Ray worker node with its node agent) and 2 API replicas (``serve --cluster`` under uvicorn),
driven over HTTP with httpx. Started once for the module, on one PostgreSQL and one S3
(SeaweedFS) that nodes and replicas share. The nodes share this machine's Docker here (each with
its own data folder); ``test_cluster_demo.py`` gives each its own dockerd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.cluster.demo import DemoState, LocalCluster, stop
from engine.cluster.ray_nodes import group_alive

from ..support import cluster_services
from ..support.serve_process import ROOT, containers

pytestmark = pytest.mark.cluster

CALL_TIMEOUT = 5.0
CAPACITY = 2  # sessions per node


@pytest.fixture(scope="module")
def shared_state(
    postgres_database: str, s3_bucket: tuple[cluster_services.S3, str]
) -> Iterator[dict[str, str]]:
    """The settings that put every node and replica on one PostgreSQL schema and one S3 prefix."""
    s3, bucket = s3_bucket
    with cluster_services.throwaway_schema(postgres_database) as url:
        yield {
            **s3.env(),
            "SANDBOX_DATABASE_URL": url,
            "SANDBOX_FILES_URL": f"s3://{bucket}/cluster",
        }


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, shared_state: dict[str, str]
) -> Iterator[DemoState]:
    folder = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(
        folder,
        nodes=2,
        replicas=2,
        own_docker=False,
        env={
            "SANDBOX_MAX_SESSIONS": str(CAPACITY),
            "SANDBOX_MEMORY_LIMIT_MB": "512",
            "SANDBOX_CLUSTER_CALL_TIMEOUT": str(CALL_TIMEOUT),
            "SANDBOX_CLUSTER_POLL_INTERVAL": "0.5",
            **shared_state,
        },
    )
    state = local.start()
    try:
        yield state
    finally:
        stop(state)
        for node in state.nodes:
            assert containers(Path(node.data_dir)) == []


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60)


def status(state: DemoState) -> dict[str, dict]:
    """``sandbox-engine cluster status --json``, by node."""
    rows = json.loads(cli(state, "cluster", "status", "--json", "--address", state.address))
    return {row["node"]: row for row in rows}


def wait_visible(http: httpx.Client, session_id: str, seconds: float = 10.0) -> None:
    """Until the replica has read the node's report that holds the session."""
    end = time.monotonic() + seconds
    while (reply := http.get(f"/v1/sessions/{session_id}")).status_code == 404:
        assert time.monotonic() < end, reply.text
        time.sleep(0.1)
    assert reply.status_code == 200, reply.text


def test_a_session_made_through_one_replica_runs_through_the_other(cluster: DemoState) -> None:
    a, b = client(cluster.urls[0]), client(cluster.urls[1])
    made = a.post("/v1/sessions", json={"thread_id": "t-cluster"})
    assert made.status_code == 200, made.text
    session = made.json()["id"]
    # Replica B finds it at once, in the session's row: no node has reported it yet.
    seen = b.get(f"/v1/sessions/{session}")
    assert seen.status_code == 200, seen.text

    ran = b.post(f"/v1/sessions/{session}/execute", json={"code": "x = 6 * 7\nprint(x)\nx"})
    assert ran.status_code == 200, ran.text
    assert ran.json()["stdout"] == "42\n"
    assert ran.json()["result"]["text/plain"] == "42"
    # The kernel lives on its node: replica A sees B's variable.
    again = a.post(f"/v1/sessions/{session}/execute", json={"code": "x + 1"})
    assert again.json()["result"]["text/plain"] == "43"

    up = a.post(f"/v1/sessions/{session}/files", files={"file": ("in.csv", b"a,b\n1,2\n")})
    assert up.status_code == 200, up.text
    assert up.json()["path"] == "/mnt/data/in.csv"
    made_there = b.post(
        f"/v1/sessions/{session}/execute",
        json={
            "code": "open('/mnt/data/out.txt', 'w').write(open('/mnt/data/in.csv').read()[::-1])"
        },
    )
    assert made_there.json()["status"] == "ok", made_there.text
    down = a.get(f"/v1/sessions/{session}/files/content", params={"path": "out.txt"})
    assert down.status_code == 200
    assert down.content == b"a,b\n1,2\n"[::-1]
    listed = b.get(f"/v1/sessions/{session}/files").json()["data"]
    assert {f["filename"] for f in listed} >= {"in.csv", "out.txt"}

    # Paused through one replica (its sandbox removed on the node), resumed by a use through
    # the other, with its variables.
    paused = a.post(f"/v1/sessions/{session}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused", paused.text
    end = time.monotonic() + 10
    while b.get(f"/v1/sessions/{session}").json()["status"] != "paused":
        assert time.monotonic() < end
        time.sleep(0.1)
    resumed = b.post(f"/v1/sessions/{session}/execute", json={"code": "x"})
    assert resumed.json()["result"]["text/plain"] == "42", resumed.text

    a.delete(f"/v1/sessions/{session}").raise_for_status()


def test_output_streams_while_the_code_runs(cluster: DemoState) -> None:
    http = client(cluster.urls[1])
    session = http.post("/v1/sessions", json={}).json()["id"]
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"
    arrived: list[tuple[str, float, str]] = []
    started = time.monotonic()
    with http.stream(
        "POST",
        f"/v1/sessions/{session}/execute",
        json={"code": code},
        headers={"accept": "text/event-stream"},
    ) as events:
        event = ""
        for line in events.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                arrived.append((event, time.monotonic() - started, line.removeprefix("data: ")))
    kinds = [e for e, _, _ in arrived]
    assert kinds[0] == "stdout" and kinds[-1] == "done", arrived
    first_at, done_at = arrived[0][1], arrived[-1][1]
    assert "first" in arrived[0][2]
    assert done_at - first_at > 1.0, arrived  # the first line came while the code slept
    assert json.loads(arrived[-1][2])["stdout"] == "first\nsecond\n"
    http.delete(f"/v1/sessions/{session}").raise_for_status()


def test_a_client_that_leaves_interrupts_the_code_on_the_node(cluster: DemoState) -> None:
    http = client(cluster.urls[0])
    session = http.post("/v1/sessions", json={}).json()["id"]
    path = f"/v1/sessions/{session}/execute"
    with pytest.raises(httpx.ReadTimeout):
        http.post(path, json={"code": "import time\ntime.sleep(60)"}, timeout=3)
    started = time.monotonic()
    after = http.post(path, json={"code": "'next'"})
    assert after.json()["result"]["text/plain"] == "'next'", after.text
    assert time.monotonic() - started < 20  # not behind the 60 s sleep
    http.delete(f"/v1/sessions/{session}").raise_for_status()


def test_placement_spreads_sessions_and_a_full_cluster_answers_503(cluster: DemoState) -> None:
    http = client(cluster.urls[0])
    made = []
    for _ in range(2 * CAPACITY):
        reply = http.post("/v1/sessions", json={})
        assert reply.status_code == 200, reply.text
        made.append(reply.json()["id"])
    nodes = status(cluster)
    assert {name: len(row["session_ids"]) for name, row in nodes.items()} == {
        "n1": CAPACITY,
        "n2": CAPACITY,
    }
    assert set(made) == {s for row in nodes.values() for s in row["session_ids"]}

    full = http.post("/v1/sessions", json={})
    assert full.status_code == 503, full.text
    error = full.json()["error"]
    assert error["code"] == "cluster_full"
    assert "n1: full (2 of 2)" in error["message"] and "n2: full (2 of 2)" in error["message"]

    for session in made[1:]:  # one stays, for the next test
        http.delete(f"/v1/sessions/{session}").raise_for_status()


def cli(state: DemoState, *command: str) -> str:
    env = {**os.environ, "RAY_AUTH_TOKEN_PATH": str(Path(state.folder) / "head/cluster-token")}
    env["SANDBOX_DATA_DIR"] = str(Path(state.folder) / "status")
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def test_a_draining_node_takes_no_new_session(cluster: DemoState) -> None:
    http = client(cluster.urls[0])
    cli(cluster, "cluster", "drain", "n1", "--address", cluster.address)
    made: list[str] = []
    try:
        assert status(cluster)["n1"]["draining"] is True
        end = time.monotonic() + 10
        while not made:  # the replica reads the drain at its next poll
            reply = http.post("/v1/sessions", json={})
            assert reply.status_code == 200, reply.text
            session = reply.json()["id"]
            if session in status(cluster)["n2"]["session_ids"]:
                made.append(session)
            else:
                http.delete(f"/v1/sessions/{session}").raise_for_status()
                assert time.monotonic() < end, "sessions still go to the draining node"
        for _ in range(status(cluster)["n2"]["free"]):
            reply = http.post("/v1/sessions", json={})
            assert reply.status_code == 200, reply.text
            made.append(reply.json()["id"])
        assert set(made) <= set(status(cluster)["n2"]["session_ids"])
        full = http.post("/v1/sessions", json={})
        assert full.status_code == 503, full.text
        assert "n1: draining" in full.json()["error"]["message"]
    finally:
        for session in made:
            http.delete(f"/v1/sessions/{session}").raise_for_status()
        cli(cluster, "cluster", "drain", "n1", "--undo", "--address", cluster.address)
    assert status(cluster)["n1"]["draining"] is False


def test_a_frozen_node_times_out_on_our_deadline_and_runs_nothing_twice(
    cluster: DemoState,
) -> None:
    """A partition between replica and node, simulated by freezing the node's processes."""
    http = client(cluster.urls[1])
    made = http.post("/v1/sessions", json={})
    assert made.status_code == 200, made.text
    session = made.json()["id"]
    nodes = status(cluster)
    frozen = next(n for n in cluster.nodes if session in nodes[n.node_id]["session_ids"])
    assert http.post(f"/v1/sessions/{session}/execute", json={"code": "n = 0"}).status_code == 200

    assert frozen.node is not None and frozen.ray_pid and frozen.agent_pid
    groups = (frozen.node.pid, frozen.ray_pid, frozen.agent_pid)
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = http.post(f"/v1/sessions/{session}/execute", json={"code": "n += 1"})
        took = time.monotonic() - started
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"]["code"] == "node_unreachable"
        assert took < 2 * CALL_TIMEOUT + 5, took
        info = http.get(f"/v1/sessions/{session}").json()
        assert f"node {frozen.node_id} does not answer" in (info["notice"] or ""), info
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)
    end = time.monotonic() + 30
    path = f"/v1/sessions/{session}/execute"
    while (again := http.post(path, json={"code": "n"})).status_code != 200:
        assert time.monotonic() < end, again.text
        time.sleep(0.5)
    # The cut call may still have run once on the node after it thawed, never twice.
    assert again.json()["result"]["text/plain"] in ("0", "1"), again.text
    http.delete(f"/v1/sessions/{session}").raise_for_status()


def test_a_killed_nodes_sessions_continue_on_another_node_with_their_files(
    cluster: DemoState,
) -> None:
    """A live session continues with the files its executions exported and a notice that its
    variables were lost; a paused one resumes with its variables, from its snapshot in S3."""
    http, other_replica = client(cluster.urls[1]), client(cluster.urls[0])
    nodes = status(cluster)
    victim = next(n for n in cluster.nodes if nodes[n.node_id]["session_ids"])
    survivor = next(n for n in cluster.nodes if n is not victim)
    session = nodes[victim.node_id]["session_ids"][0]
    wait_visible(http, session)
    code = "kept = 1\nopen('/mnt/data/live.txt', 'w').write('exported')"
    assert http.post(f"/v1/sessions/{session}/execute", json={"code": code}).status_code == 200

    # A session paused on the victim before it dies, with a variable and a file.
    cli(cluster, "cluster", "drain", survivor.node_id, "--address", cluster.address)
    try:
        end = time.monotonic() + 10
        while True:  # the replica reads the drain at its next poll
            made = http.post("/v1/sessions", json={})
            assert made.status_code == 200, made.text
            paused = made.json()["id"]
            if paused in status(cluster)[victim.node_id]["session_ids"]:
                break
            http.delete(f"/v1/sessions/{paused}").raise_for_status()
            assert time.monotonic() < end, "sessions still go to the draining node"
    finally:
        cli(cluster, "cluster", "drain", survivor.node_id, "--undo", "--address", cluster.address)
    up = http.post(f"/v1/sessions/{paused}/files", files={"file": ("in.txt", b"from the victim")})
    assert up.status_code == 200, up.text
    ran = http.post(
        f"/v1/sessions/{paused}/execute",
        json={"code": "secret = 41\nopen('/mnt/data/out.txt', 'w').write('written there')"},
    )
    assert ran.json()["status"] == "ok", ran.text
    assert http.post(f"/v1/sessions/{paused}/pause").json()["status"] == "paused"

    assert victim.node is not None and victim.ray_pid and victim.agent_pid
    for group in (victim.node.pid, victim.ray_pid, victim.agent_pid):
        os.killpg(group, signal.SIGKILL)
    killed = time.monotonic()
    for group in (victim.node.pid, victim.ray_pid, victim.agent_pid):
        end = time.monotonic() + 10
        while group_alive(group):
            assert time.monotonic() < end, f"process group {group} outlived SIGKILL"
            time.sleep(0.1)

    path, read = (
        f"/v1/sessions/{session}/execute",
        {"code": "print(open('/mnt/data/live.txt').read())"},
    )
    started = time.monotonic()
    reply = http.post(path, json=read, timeout=120)
    took = time.monotonic() - started
    if reply.status_code == 503:  # the call went out before the replica missed a health read
        error = reply.json()["error"]
        assert error["code"] == "node_unreachable"
        assert f"node {victim.node_id}" in error["message"]
        # Our deadline: a missed health read (CALL_TIMEOUT) and a poll, not Ray's 15-65 s.
        assert took < 2 * CALL_TIMEOUT + 5, took
    while reply.status_code != 200:
        assert time.monotonic() - killed < 30, reply.text
        time.sleep(0.5)
        reply = http.post(path, json=read, timeout=120)
    print(f"live session answered on another node {time.monotonic() - killed:.1f} s after SIGKILL")
    result = reply.json()
    assert result["stdout"] == "exported\n", result
    assert result["state_lost"] is True, result
    assert "its variables were lost" in (result["notice"] or ""), result
    lost = http.post(path, json={"code": "kept"}).json()["error"]
    assert lost is not None and lost["name"] == "NameError", lost
    assert session in status(cluster)[survivor.node_id]["session_ids"]

    # The other node takes new sessions; the dead one is out of placement.
    made = http.post("/v1/sessions", json={})
    assert made.status_code == 200, made.text
    assert made.json()["id"] in status(cluster)[survivor.node_id]["session_ids"]
    http.delete(f"/v1/sessions/{made.json()['id']}").raise_for_status()

    # The paused session resumes on the survivor, through either replica, from its snapshot
    # and files in S3.
    code = "print(secret + 1, open('/mnt/data/out.txt').read(), open('/mnt/data/in.txt').read())"
    end = time.monotonic() + 10
    path = f"/v1/sessions/{paused}/execute"
    # 503 until the replica has read that the survivor has room again (the session just closed)
    while (resumed := other_replica.post(path, json={"code": code})).status_code == 503:
        assert time.monotonic() < end, resumed.text
        time.sleep(0.5)
    print(f"paused session resumed on another node {time.monotonic() - killed:.1f} s after SIGKILL")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["stdout"] == "42 written there from the victim\n", resumed.text
    assert paused in status(cluster)[survivor.node_id]["session_ids"]
    info = http.get(f"/v1/sessions/{paused}").json()
    assert info["status"] == "active" and info["notice"] is None, info
    down = http.get(f"/v1/sessions/{paused}/files/content", params={"path": "in.txt"})
    assert down.content == b"from the victim"
