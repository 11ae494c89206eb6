"""A process group counts as gone when only zombies are left (where PID 1 does not reap)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from engine.cluster.ray_nodes import group_alive


def test_a_group_is_alive_until_its_last_process_ends():
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert group_alive(leader.pid)
        os.killpg(leader.pid, signal.SIGKILL)
        end = time.monotonic() + 10
        # Not reaped yet: a zombie, which no longer counts.
        while group_alive(leader.pid):
            assert time.monotonic() < end
            time.sleep(0.05)
    finally:
        leader.kill()
        leader.wait()
    assert not group_alive(leader.pid)


def test_a_group_with_a_live_child_is_alive():
    code = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        end = time.monotonic() + 10
        while _members(leader.pid) < 2:
            assert time.monotonic() < end
            time.sleep(0.05)
        leader.kill()
        leader.wait()
        assert group_alive(leader.pid)  # its child, sleep, still runs in the group
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while group_alive(leader.pid):
        assert time.monotonic() < end
        time.sleep(0.05)


def _members(pgid: int) -> int:
    out = subprocess.run(["ps", "-eo", "pgid="], capture_output=True, text=True).stdout
    return sum(1 for line in out.split() if int(line) == pgid)
