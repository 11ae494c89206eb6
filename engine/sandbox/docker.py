"""Docker backend: creates, finds and removes locked-down containers (see docker_sandbox.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import DriverConfig, LogConfig, Mount, Ulimit

from .. import errors
from .base import (
    DATA_MOUNT,
    SANDBOX_UID,
    SESSION_LABEL,
    Sandbox,
    SandboxBackend,
    SandboxSpec,
)
from .docker_sandbox import (
    CONN_MOUNT,
    HOLDER_USER,
    HOME,
    MANAGED_LABEL,
    SANDBOX_LABEL,
    TMPFS_OPTS,
    VOLUME_REMOVAL_WAIT,
    DockerSandbox,
)
from .egress_proxy import TRUST_FILE, EgressProxies, EgressRoute
from .ipc import create_conn_dir, make_removable
from .lifetime import (
    DEADLINE_FILE,
    DEFAULT_LIFETIME,
    watcher_command,
    write_conn_file,
    write_deadline,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


class DockerBackend(SandboxBackend):
    """Sandboxes as Docker containers, reached over a bind-mounted IPC folder."""

    name = "docker"

    def __init__(
        self,
        state_dir: Path,
        docker_host: str | None = None,
        egress: Callable[[Callable[[], docker.DockerClient]], EgressProxies] | None = None,
    ) -> None:
        """``egress`` makes the proxies of sandboxes with an allowlist from this backend's
        client; without it, such a sandbox is refused."""
        self.state_dir = state_dir
        self._docker_host = docker_host
        self._client: docker.DockerClient | None = None
        self.egress = egress(lambda: self.client) if egress is not None else None
        # Sandboxes whose removal failed (Docker down): retried before the next create.
        self._to_remove: dict[str, str] = {}
        # Docker SDK calls block; a dedicated pool keeps many sessions from queueing on 6 threads.
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="docker")

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                if self._docker_host:
                    self._client = docker.DockerClient(base_url=self._docker_host, max_pool_size=32)
                else:
                    self._client = docker.from_env(max_pool_size=32)
            except DockerException as exc:
                raise errors.BackendUnavailable(
                    f"cannot reach the Docker engine ({exc}); is dockerd running? "
                    "`scripts/setup` installs and starts it on Debian"
                ) from exc
        return self._client

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, partial(fn, *args))
        except requests.exceptions.ConnectionError as exc:
            raise errors.BackendUnavailable(
                f"the Docker engine does not answer ({exc}); is dockerd running?"
            ) from exc

    async def check(self, image: str) -> None:
        def probe() -> None:
            try:
                self.client.ping()
            except (DockerException, OSError) as exc:
                raise errors.BackendUnavailable(
                    f"the Docker engine does not answer: {exc}"
                ) from exc
            try:
                self.client.images.get(image)
            except ImageNotFound as exc:
                raise errors.ImageNotFound(
                    f"sandbox image {image!r} is not built; run `sandbox-engine image build`"
                ) from exc

        await self.run(probe)

    def remove_later(self, sandbox_id: str, name: str) -> None:
        self._to_remove[sandbox_id] = name

    def _retry_removals(self) -> None:
        for sandbox_id, name in list(self._to_remove.items()):
            try:
                self.remove_sandbox(sandbox_id, name)
            except (errors.EngineError, requests.exceptions.ConnectionError) as exc:
                log.warning("sandbox %s: still cannot remove it: %s", sandbox_id, exc)
                return
            del self._to_remove[sandbox_id]

    async def create(self, spec: SandboxSpec, deadline: float | None = None) -> Sandbox:
        if self._to_remove:
            await self.run(self._retry_removals)
        sandbox_id = uuid.uuid4().hex[:16]
        state_dir = self.state_dir / sandbox_id
        conn_dir = state_dir / "conn"
        create_conn_dir(conn_dir)
        deadline = time.time() + DEFAULT_LIFETIME if deadline is None else deadline
        write_deadline(conn_dir, deadline)
        labels = {**spec.labels, MANAGED_LABEL: "true", SANDBOX_LABEL: sandbox_id}
        name = f"sandbox-engine-{sandbox_id}"
        try:
            container_id = await self.run(self._create_container, name, spec, labels, conn_dir)
        except BaseException:
            try:
                await self.run(self.remove_sandbox, sandbox_id, name)
            except errors.EngineError:  # Docker is down: removed before the next create
                self.remove_later(sandbox_id, name)
                make_removable(state_dir)
                shutil.rmtree(state_dir, ignore_errors=True)
            raise
        return DockerSandbox(
            self, sandbox_id, container_id, name, state_dir, labels, deadline=int(deadline)
        )

    def _create_container(
        self, name: str, spec: SandboxSpec, labels: dict[str, str], conn_dir: Path
    ) -> str:
        api = self.client.api
        route = self._egress_route(name, spec, labels)
        if route is not None and route.trust is not None:
            write_conn_file(conn_dir, TRUST_FILE, route.trust)
        memory = f"{spec.memory_limit_mb}m"
        fsize = spec.fsize_limit_mb * 1024 * 1024
        data_volume = DriverConfig(
            "local",
            options={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size={spec.data_size_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID},"
                "mode=0755,nosuid,nodev",
            },
        )
        host_config = api.create_host_config(
            init=True,
            network_mode=route.network if route else "none",
            dns=[route.proxy_ip] if route else None,
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=spec.pids_limit,
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(spec.cpus * 1e9),
            ulimits=[
                Ulimit(name="nofile", soft=spec.nofile_limit, hard=spec.nofile_limit),
                Ulimit(name="fsize", soft=fsize, hard=fsize),
                Ulimit(name="core", soft=0, hard=0),
            ],
            tmpfs={
                "/tmp": f"{TMPFS_OPTS},size={spec.tmp_size_mb}m,mode=1777",
                HOME: f"{TMPFS_OPTS},size={spec.home_size_mb}m,"
                f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700",
            },
            mounts=[
                # Docker creates this named tmpfs volume with the container, labels included.
                Mount(
                    target=DATA_MOUNT,
                    source=name,
                    type="volume",
                    driver_config=data_volume,
                    labels=labels,
                ),
                Mount(target=CONN_MOUNT, source=str(conn_dir), type="bind"),
            ],
            log_config=LogConfig(
                type="json-file", config={"max-size": spec.log_max_size, "max-file": "1"}
            ),
            runtime=spec.runtime,
        )
        try:
            container_id = str(
                api.create_container(
                    spec.image,
                    command=watcher_command(f"{CONN_MOUNT}/{DEADLINE_FILE}"),
                    name=name,
                    user=HOLDER_USER,
                    working_dir=DATA_MOUNT,
                    hostname="sandbox",
                    network_disabled=route is None,
                    environment={**spec.env, **(route.env if route else {})},
                    labels=labels,
                    host_config=host_config,
                )["Id"]
            )
            api.start(container_id)
        except ImageNotFound as exc:
            raise errors.ImageNotFound(
                f"sandbox image {spec.image!r} is not built; run `sandbox-engine image build`"
            ) from exc
        except (APIError, DockerException) as exc:
            raise errors.SandboxUnavailable(f"could not start a sandbox container: {exc}") from exc
        return container_id

    def _egress_route(
        self, name: str, spec: SandboxSpec, labels: dict[str, str]
    ) -> EgressRoute | None:
        """The way out of a sandbox with an allowlist: its own proxy, started first."""
        if not spec.egress.enabled:
            return None
        if self.egress is None:
            raise errors.SandboxUnavailable("this engine has no egress proxy configured")
        sandbox_id = labels[SANDBOX_LABEL]
        session_id = labels.get(SESSION_LABEL, "")
        home = {k: v for k, v in labels.items() if k not in (MANAGED_LABEL, SANDBOX_LABEL)}
        return self.egress.start(sandbox_id, session_id, spec.egress, home)

    def remove_sandbox(self, sandbox_id: str, name: str) -> None:
        try:
            self._remove_container(name)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: its removal is already in progress
                raise errors.SandboxError(f"could not remove sandbox {sandbox_id}: {exc}") from exc
        # While someone else's removal of the container runs, the volume is "in use" (409):
        # wait for it rather than leave the volume behind.
        deadline = time.monotonic() + VOLUME_REMOVAL_WAIT
        while True:
            try:
                self._remove_volume(name)
                break
            except NotFound:
                break
            except APIError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise errors.SandboxError(
                        f"could not remove the volume of sandbox {sandbox_id}: {exc}"
                    ) from exc
                time.sleep(0.1)
        if self.egress is not None:
            self.egress.remove(sandbox_id)
        state_dir = self.state_dir / sandbox_id
        if state_dir.exists():
            make_removable(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)

    def _remove_container(self, name: str) -> None:
        self.client.api.remove_container(name, force=True, v=True)

    def _remove_volume(self, name: str) -> None:
        self.client.api.remove_volume(name, force=True)

    async def find_leftovers(self, labels: dict[str, str]) -> list[Sandbox]:
        filters = {"label": [f"{k}={v}" for k, v in {**labels, MANAGED_LABEL: "true"}.items()]}

        def sweep() -> list[Sandbox]:
            containers = self.client.api.containers(all=True, filters=filters)
            volumes = self.client.api.volumes(filters=filters).get("Volumes") or []
            found: dict[str, tuple[str, dict[str, str]]] = {
                c["Labels"][SANDBOX_LABEL]: (c["Id"], c["Labels"]) for c in containers
            }
            for volume in volumes:
                found.setdefault(volume["Labels"][SANDBOX_LABEL], ("", volume["Labels"]))
            if self.egress is not None:
                self.egress.remove_orphans(labels, set(found))
            return [
                DockerSandbox(self, sid, cid, f"sandbox-engine-{sid}", self.state_dir / sid, labels)
                for sid, (cid, labels) in found.items()
            ]

        return await self.run(sweep)

    async def close(self) -> None:
        if self._to_remove:
            with contextlib.suppress(errors.EngineError):
                await self.run(self._retry_removals)
        if self._client is not None:
            self._client.close()
        self._pool.shutdown(wait=False)
