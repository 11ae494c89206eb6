"""jupyter_client's kernel lifecycle, with the kernel process living inside a Sandbox.

Each kernel launch gets a fresh folder ``/conn/k<N>`` that the sandbox user may write into
only until the kernel has bound its IPC sockets; then it is made read-only and every socket is
checked with ``lstat``, so the engine never connects through anything sandboxed code planted.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from . import errors
from .sandbox.base import CONN_MOUNT, SANDBOX_UID, ProcessHandle, Sandbox

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
KERNEL_ARGV = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


class SandboxKernelSpecManager(KernelSpecManager):
    """Serves the one kernel spec sandboxes run; interrupts travel over the control channel."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=KERNEL_ARGV,
            display_name="Python 3 (sandbox)",
            language="python",
            interrupt_mode="message",
        )


class SandboxProvisioner(KernelProvisionerBase):
    """Launches the kernel with the sandbox's ``start_process`` and watches it from the host."""

    sandbox: Sandbox
    start_timeout: float = 60.0
    process: ProcessHandle | None = None
    generation = 0
    _conn_fd: int | None = None

    @property
    def _manager(self) -> AsyncKernelManager:
        manager = self.parent
        assert isinstance(manager, AsyncKernelManager)
        return manager

    @property
    def has_process(self) -> bool:
        return self.process is not None

    async def poll(self) -> int | None:
        if self.process is None:
            return 0
        return await self.sandbox.exit_code(self.process)

    async def wait(self) -> int | None:
        code = await self.poll()
        while code is None:
            await asyncio.sleep(0.05)
            code = await self.poll()
        self.process = None
        return code

    async def send_signal(self, signum: int) -> None:
        # Interrupts go over the control channel; any other signal ends the kernel.
        await self.sandbox.kill_all()

    async def kill(self, restart: bool = False) -> None:
        await self.sandbox.kill_all()

    async def terminate(self, restart: bool = False) -> None:
        await self.sandbox.kill_all()

    async def cleanup(self, restart: bool = False) -> None:
        self.process = None
        if not restart and self._conn_fd is not None:
            os.close(self._conn_fd)
            self._conn_fd = None

    def _short_conn_dir(self) -> str:
        """Unix socket addresses are capped at 107 bytes, data folders can be deep: connect
        through ``/proc/self/fd/<n>``, a descriptor of our own on the connection folder."""
        if self._conn_fd is None:
            self._conn_fd = os.open(self.sandbox.conn_dir, os.O_PATH | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._conn_fd}"

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return min(recommended, 2.0)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self._manager
        self.generation += 1
        name = f"k{self.generation}"
        host_dir = self.sandbox.conn_dir / name
        self.sandbox.conn_dir.chmod(0o755)
        try:
            host_dir.mkdir(mode=0o700)
            host_dir.chmod(0o777)
        finally:
            self.sandbox.conn_dir.chmod(0o555)
        km.transport = "ipc"
        km.ip = f"{self._short_conn_dir()}/{name}/s"
        for port, port_name in enumerate(PORT_NAMES, start=1):
            setattr(km, port_name, port)
        km.connection_file = str(self.sandbox.conn_dir.parent / f"{name}.json")
        km._connection_file_written = False
        km.write_connection_file()
        info = km.get_connection_info()
        self.connection_info = info
        inside = {k: v for k, v in info.items() if k != "key"}
        key = info["key"]
        inside.update(
            key=key.decode() if isinstance(key, bytes) else key, ip=f"{CONN_MOUNT}/{name}/s"
        )
        _write_readonly(self.sandbox.conn_dir / f"{name}.json", json.dumps(inside))
        cmd = [arg.replace("{connection_file}", f"{CONN_MOUNT}/{name}.json") for arg in KERNEL_ARGV]
        # Host environment never reaches the sandbox: kwargs["env"] is dropped on purpose.
        return {"cmd": cmd}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        km = self._manager
        self.process = await self.sandbox.start_process(cmd, env={})
        host_dir = self.sandbox.conn_dir / f"k{self.generation}"
        sockets = [host_dir / f"s-{getattr(km, p)}" for p in PORT_NAMES]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        polls = 0
        while not all(s.exists() for s in sockets):
            polls += 1
            if polls % 20 == 0 and await self.poll() is not None:
                raise errors.KernelStartError("the kernel process exited while starting")
            if loop.time() > deadline:
                raise errors.KernelStartError(
                    f"the kernel did not bind its sockets within {self.start_timeout:g} s"
                )
            await asyncio.sleep(0.005)
        host_dir.chmod(0o555)
        _check_sockets(host_dir, sockets)
        return self.connection_info


def _write_readonly(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _check_sockets(host_dir: Path, sockets: list[Path]) -> None:
    """After the folder went read-only, every endpoint must be a real socket the kernel made."""
    for path in sockets:
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != SANDBOX_UID:
            raise errors.KernelStartError(
                f"refusing to connect: {path.name} is not a kernel socket"
            )
    unexpected = set(os.listdir(host_dir)) - {p.name for p in sockets}
    if unexpected:
        raise errors.KernelStartError(f"unexpected entries in the kernel folder: {unexpected}")


def new_kernel_manager(sandbox: Sandbox, start_timeout: float) -> AsyncKernelManager:
    km = AsyncKernelManager(kernel_name="sandbox", kernel_spec_manager=SandboxKernelSpecManager())
    km.cache_ports = False
    provisioner = SandboxProvisioner(kernel_id=sandbox.id, kernel_spec=km.kernel_spec, parent=km)
    provisioner.sandbox = sandbox
    provisioner.start_timeout = start_timeout
    km.provisioner = provisioner
    return km
