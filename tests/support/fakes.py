"""Fakes for the fast tier: a sandbox whose kernel would be reached over TCP, and a kernel played
by the test, binding the endpoints of an IPC kernel folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo

from engine import errors
from engine.sandbox.base import CommandRun, FileEntry, KernelLaunch, ProcessHandle, Sandbox
from engine.sandbox.ipc import short_path


def bind(socks: list[socket.socket], path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen()
    socks.append(s)


def conn_dir(tmp_path: Path) -> Path:
    path = tmp_path / "deep" / ("x" * 90) / "conn"
    path.mkdir(parents=True, mode=0o555)
    return path


async def never_exits() -> bool:
    return False


def play_kernel(folder: Path, socks: list[socket.socket], names: list[str]) -> None:
    """Bind as the kernel does, by a short path: inside the sandbox that is /conn/k<N>."""
    fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    try:
        for name in names:
            bind(socks, f"{short_path(fd)}/{name}")
    finally:
        os.close(fd)


class TcpSandbox(Sandbox):
    """A sandbox whose kernel would be reached over TCP, like a pod behind a port-forward."""

    def __init__(self, fail: bool = False) -> None:
        self.id = "fake"
        self.labels = {}
        self.fail = fail
        self.calls: list[str] = []
        self.argv: list[str] = []
        self.env: dict[str, str] | None = None
        self.key = b""

    async def prepare_kernel(self, key: bytes, signature_scheme: str) -> KernelLaunch:
        self.calls.append("prepare")
        self.key = key
        return KernelLaunch(id=f"launch{self.calls.count('prepare')}", connection_file="/c.json")

    async def kernel_ready(
        self, launch: KernelLaunch, process: ProcessHandle, timeout: float
    ) -> KernelConnectionInfo:
        self.calls.append(f"ready {launch.id}")
        return self._endpoints()

    async def adopt_kernel(self, launch: KernelLaunch) -> KernelConnectionInfo:
        self.calls.append(f"adopt {launch.id}")
        return self._endpoints()

    def _endpoints(self) -> KernelConnectionInfo:
        if self.fail:
            raise errors.KernelStartError("refusing to connect")
        return {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "shell_port": 40001,
            "iopub_port": 40002,
            "stdin_port": 40003,
            "control_port": 40004,
            "hb_port": 40005,
        }

    async def release_kernel(self, launch: KernelLaunch) -> None:
        self.calls.append(f"release {launch.id}")

    async def start_process(self, argv: list[str], env: dict[str, str]) -> ProcessHandle:
        self.calls.append("start")
        self.argv, self.env = argv, env
        return ProcessHandle("p")

    async def run_command(
        self, argv: list[str], env: dict[str, str], cwd: str, max_output: int
    ) -> CommandRun:
        raise errors.SandboxLost("a fake sandbox runs no commands")

    async def exit_code(self, process: ProcessHandle) -> int | None:
        return 0

    async def kill_all(self) -> None:
        self.calls.append("kill")

    async def oom_kills(self) -> int:
        return 0

    async def is_running(self) -> bool:
        return True

    async def destroy(self) -> None:
        pass

    async def set_deadline(self, when: float) -> None:
        pass

    async def list_files(self, limit: int) -> tuple[list[FileEntry], bool]:
        return [], False

    async def open_file(self, path: str) -> Any:
        raise FileNotFoundError(path)

    async def write_file(self, path: str, src: Any, max_bytes: int) -> FileEntry:
        raise NotImplementedError

    async def remove_file(self, path: str) -> None:
        pass
