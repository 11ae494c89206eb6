"""jupyter_client's kernel lifecycle, with the kernel process living inside a Sandbox.

The sandbox owns the transport: it prepares the endpoints and the kernel's connection file, and
hands back only endpoints it has verified. This module drives jupyter_client through those hooks
and never touches the place where the endpoints live.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from .sandbox.base import KernelLaunch, ProcessHandle, Sandbox

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


class SandboxKernelManager(AsyncKernelManager):
    """Keeps the connection info in memory: the kernel's own file is the sandbox's to write,
    and the endpoints are the sandbox's to remove."""

    def write_connection_file(self, **kwargs: Any) -> None:
        self._connection_file_written = True

    def cleanup_connection_file(self) -> None:
        self._connection_file_written = False

    def cleanup_ipc_files(self) -> None:
        pass

    def _connect_control_socket(self) -> None:
        """No socket of libzmq's to the kernel: every message from it is read by the engine's
        capped channels (engine/kernel/wire.py), which also send the interrupts."""


class SandboxProvisioner(KernelProvisionerBase):
    """Launches the kernel through the sandbox's kernel hooks and watches it from the host."""

    sandbox: Sandbox
    start_timeout: float = 60.0
    process: ProcessHandle | None = None
    launch: KernelLaunch | None = None

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
        await self._release()

    async def _release(self) -> None:
        launch, self.launch = self.launch, None
        if launch is not None:
            await self.sandbox.release_kernel(launch)

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return min(recommended, 2.0)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        session = self._manager.session
        await self._release()
        self.launch = await self.sandbox.prepare_kernel(session.key, session.signature_scheme)
        cmd = [arg.replace("{connection_file}", self.launch.connection_file) for arg in KERNEL_ARGV]
        # Host environment never reaches the sandbox: kwargs["env"] is dropped on purpose.
        return {"cmd": cmd}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        km = self._manager
        assert self.launch is not None, "pre_launch prepares the launch"
        try:
            self.process = await self.sandbox.start_process(cmd, env={})
            endpoints = await self.sandbox.kernel_ready(
                self.launch, self.process, self.start_timeout
            )
        except BaseException:
            await self._release()
            raise
        info: KernelConnectionInfo = {
            **endpoints,
            "key": km.session.key,
            "signature_scheme": km.session.signature_scheme,
        }
        self.connection_info = info
        return info


@dataclass(frozen=True)
class KernelRecord:
    """What reconnecting to a running kernel takes. ``key`` signs every message: a secret."""

    launch: str
    connection_file: str
    process: str
    key: str
    signature_scheme: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> KernelRecord:
        data = json.loads(text)
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})


def kernel_record(km: AsyncKernelManager) -> KernelRecord | None:
    """The running kernel's record, or None while none is running."""
    provisioner = km.provisioner
    if not isinstance(provisioner, SandboxProvisioner):
        return None
    launch, process = provisioner.launch, provisioner.process
    if launch is None or process is None:
        return None
    return KernelRecord(
        launch.id,
        launch.connection_file,
        process.id,
        km.session.key.decode(),
        km.session.signature_scheme,
    )


async def adopt_kernel(km: AsyncKernelManager, record: KernelRecord) -> None:
    """Make ``km`` manage the kernel an earlier engine process launched, without launching one.

    The sandbox verifies the endpoints again first; the kernel's liveness is the caller's
    to check (``kernel_info``).
    """
    provisioner = km.provisioner
    assert isinstance(provisioner, SandboxProvisioner)
    launch = KernelLaunch(id=record.launch, connection_file=record.connection_file)
    endpoints = await provisioner.sandbox.adopt_kernel(launch)
    info: KernelConnectionInfo = {
        **endpoints,
        "key": record.key,
        "signature_scheme": record.signature_scheme,
    }
    provisioner.launch = launch
    provisioner.process = ProcessHandle(record.process)
    provisioner.connection_info = info
    km.load_connection_info(info)
    # What start_kernel would have set: restart_kernel needs both (without the second, its
    # nested start shares one ready-future with it and fails setting it twice).
    km._launch_args = {}
    km._attempted_start = True


def new_kernel_manager(sandbox: Sandbox, start_timeout: float) -> AsyncKernelManager:
    km = SandboxKernelManager(kernel_name="sandbox", kernel_spec_manager=SandboxKernelSpecManager())
    km.cache_ports = False
    provisioner = SandboxProvisioner(kernel_id=sandbox.id, kernel_spec=km.kernel_spec, parent=km)
    provisioner.sandbox = sandbox
    provisioner.start_timeout = start_timeout
    km.provisioner = provisioner
    return km
