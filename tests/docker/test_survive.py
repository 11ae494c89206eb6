"""Sessions survive restarts of a real ``sandbox-engine serve`` process: kill -9 and graceful
stops keep variables and files; a kernel busy at the crash is interrupted, not re-run; a planted
symlink is never followed; pool sandboxes are not leaked; doctor and run leave a server alone."""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from ..support.serve_process import ServeProcess, containers, engine_command, start, volumes

SETUP = "x = 'kept'\nopen('made.txt', 'w').write('made before')"
CHECK = "print(x, open('made.txt').read(), open('in.txt').read())"


def new_session(server: ServeProcess) -> tuple[str, str]:
    """A session with an uploaded file and a variable; its id and the output's file id."""
    sid = server.call("POST", "/v1/sessions", json={"thread_id": "survivor"})["id"]
    server.call("POST", f"/v1/sessions/{sid}/files", files={"file": ("in.txt", b"uploaded")})
    r = server.execute(sid, SETUP)
    assert r["status"] == "ok", r
    (made,) = [o["file_id"] for o in r["outputs"] if o["filename"] == "made.txt"]
    return sid, made


def assert_kept(server: ServeProcess, sid: str, made: str) -> None:
    r = server.execute(sid, CHECK)
    assert r["status"] == "ok", r
    assert r["stdout"] == "kept made before uploaded\n"
    assert not r["state_lost"]
    assert r["outputs"] == []  # nothing re-exported: the known state of /mnt/data survived
    listing = {
        f["filename"]: f["file_id"] for f in server.call("GET", f"/v1/sessions/{sid}/files")["data"]
    }
    assert listing["made.txt"] == made
    assert server.client.get(f"/v1/files/{made}/content").content == b"made before"


def test_kill_9_then_a_new_server_keeps_variables_and_files(data_dir: Path) -> None:
    server = start(data_dir)
    sid, made = new_session(server)
    before = containers(data_dir)
    server.kill()
    server = start(data_dir)
    try:
        info = server.call("GET", f"/v1/sessions/{sid}")
        assert info["status"] == "active" and info["notice"] is None
        assert_kept(server, sid, made)
        assert containers(data_dir) == before  # the same sandbox, nothing new
        # The same thread keeps its session too.
        again = server.call("POST", "/v1/sessions", json={"thread_id": "survivor"})
        assert again["id"] == sid
    finally:
        server.kill()


def test_graceful_restart_keeps_them_and_close_removes_them(data_dir: Path) -> None:
    server = start(data_dir)
    sid, made = new_session(server)
    assert server.stop()
    assert len(containers(data_dir)) == 1  # SANDBOX_SHUTDOWN_SANDBOXES=keep, the default
    server = start(data_dir, shutdown_sandboxes="close")
    assert_kept(server, sid, made)
    r = server.execute(sid, "open('/mnt/data/scratch.txt', 'w').write('scratch')")
    (scratch,) = [o["file_id"] for o in r["outputs"]]
    server.call("POST", f"/v1/sessions/{sid}/files/{made}/keep")
    assert server.stop()
    assert (containers(data_dir), volumes(data_dir)) == ([], [])
    server = start(data_dir)
    try:
        assert server.call("GET", f"/v1/sessions/{sid}")["status"] == "closed"
        assert server.client.get(f"/v1/files/{made}/content").content == b"made before"
        # The session ended with the stop: its outputs that were not kept ended with it.
        assert server.client.get(f"/v1/files/{scratch}").status_code == 404
    finally:
        server.kill()


def crash_while_running(server: ServeProcess, sid: str, code: str) -> None:
    """Start ``code`` (which prints ``started``), then kill -9 the server while it runs."""
    body = {"code": code, "timeout": 900}
    headers = {"accept": "text/event-stream"}
    with server.client.stream(
        "POST", f"/v1/sessions/{sid}/execute", json=body, headers=headers
    ) as r:
        for line in r.iter_lines():
            if "started" in line:
                server.kill()
                break
    assert server.proc.returncode == -9


def test_a_kernel_busy_at_the_crash_is_interrupted_not_rerun(data_dir: Path) -> None:
    server = start(data_dir)
    sid, _ = new_session(server)
    crash_while_running(
        server,
        sid,
        "runs = globals().get('runs', 0) + 1\nprint('started', flush=True)\n"
        "import time\ntime.sleep(600)\nx = 'changed after the sleep'",
    )
    server = start(data_dir)
    try:
        info = server.call("GET", f"/v1/sessions/{sid}")
        assert "interrupted" in info["notice"]
        r = server.execute(sid, "print(x, runs)", timeout=10)
        assert r["status"] == "ok", r
        assert r["stdout"] == "kept 1\n"  # interrupted before its last line; never run again
        assert "interrupted" in r["notice"] and not r["state_lost"]
        r = server.execute(sid, "print('usable')")
        assert r["stdout"] == "usable\n" and r["notice"] is None
        assert server.call("GET", f"/v1/sessions/{sid}")["notice"] is None
    finally:
        server.kill()


def test_a_symlink_planted_while_the_engine_was_down_is_not_followed(
    data_dir: Path, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("planting into the engine's 0555 folder needs root")
    server = start(data_dir)
    sid, made = new_session(server)
    crash_while_running(
        server,
        sid,
        "open('midway.txt', 'w').write('written after the last execution')\n"
        "print('started', flush=True)\nimport time\ntime.sleep(600)",
    )
    (old,) = containers(data_dir)
    sandbox_id = old.removeprefix("sandbox-engine-")
    kernel_dir = data_dir / "sandboxes" / sandbox_id / "conn" / "k1"
    assert stat.S_IMODE(kernel_dir.lstat().st_mode) == 0o555
    # A listening socket of the attacker's: an engine that follows the link connects to it.
    bait_path = tmp_path / "bait.sock"
    bait = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bait.bind(str(bait_path))
    bait.listen(8)
    bait.setblocking(False)
    (kernel_dir / "s-1").unlink()
    (kernel_dir / "s-1").symlink_to(bait_path)
    server = start(data_dir)
    try:
        with pytest.raises(BlockingIOError):
            bait.accept()
        info = server.call("GET", f"/v1/sessions/{sid}")
        assert info["status"] == "active"
        assert "could not be verified" in info["notice"]
        r = server.execute(sid, "print('x' in globals())")
        assert r["stdout"] == "False\n" and r["state_lost"]
        assert "new sandbox" in r["notice"]
        # The old container and its volume are gone at once; only the fresh one is left.
        (new,) = containers(data_dir)
        assert new != old and volumes(data_dir) == [new]
        assert not (data_dir / "sandboxes" / sandbox_id).exists()
        # What its code wrote since the last execution was salvaged as a file object.
        files = server.call("GET", "/v1/files", params={"limit": 100})["data"]
        (midway,) = [f for f in files if f["filename"] == "midway.txt"]
        content = server.client.get(f"/v1/files/{midway['id']}/content").content
        assert content == b"written after the last execution"
        assert server.client.get(f"/v1/files/{made}/content").content == b"made before"
    finally:
        bait.close()
        server.kill()


def test_pool_sandboxes_across_restarts_are_never_leaked(data_dir: Path) -> None:
    # Two pooled sandboxes, one kept for resumes (the stack imported), and the session's.
    pool = {"pool_size": 2, "pool_min": 2, "pool_max": 2, "resume_pool_size": 1}
    server = start(data_dir, **pool)
    sid, _ = new_session(server)
    session_box = session_sandbox(data_dir)
    wait_for(lambda: len(containers(data_dir)) == 4)
    pooled = set(containers(data_dir)) - {session_box}
    server.kill()
    server = start(data_dir, **pool)
    try:
        now = set(containers(data_dir))
        assert session_box in now and not pooled & now  # the old pool's are removed
        assert server.execute(sid, "print(x)")["stdout"] == "kept\n"
        wait_for(lambda: len(containers(data_dir)) == 4)
        assert server.stop()
        # A graceful stop keeps the session's sandbox and removes the pool's.
        assert containers(data_dir) == [session_box]
        assert volumes(data_dir) == [session_box]
    finally:
        if server.proc.poll() is None:
            server.kill()


def test_doctor_and_run_leave_a_running_server_alone(data_dir: Path) -> None:
    server = start(data_dir)
    try:
        sid, made = new_session(server)
        before = containers(data_dir)
        doctor = engine_command(data_dir, "doctor")
        assert doctor.returncode == 0, doctor.stderr
        run = engine_command(data_dir, "run", "print(6 * 7)")
        assert run.returncode == 0 and run.stdout == "42\n", run.stderr
        assert containers(data_dir) == before and volumes(data_dir) == before
        assert_kept(server, sid, made)
        # A second server on the same folder refuses, naming the first.
        second = engine_command(data_dir, "serve", "--port", "1", timeout=60)
        assert second.returncode == 1
        said = " ".join(second.stderr.split())  # the console wraps long lines
        assert "another engine serves the data folder" in said
        assert f"(pid {server.proc.pid})" in said
        assert server.execute(sid, "print(x)")["stdout"] == "kept\n"
    finally:
        server.kill()


def session_sandbox(data_dir: Path) -> str:
    """The container of the one session (the one whose /mnt/data holds made.txt)."""
    client = docker.from_env()
    for name in containers(data_dir):
        code, _ = client.containers.get(name).exec_run(["test", "-e", "/mnt/data/made.txt"])
        if code == 0:
            return name
    raise AssertionError("no sandbox holds the session's files")


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
