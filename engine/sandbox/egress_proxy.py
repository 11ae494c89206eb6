"""The Docker side of controlled egress: per sandbox with an allowlist, an internal network (no
default route, no way to the host) whose only other member is that sandbox's own mitmproxy
container, which alone also joins the outward network and enforces the policy
(``engine/egress/proxy_image/egress_addon.py``). One proxy per sandbox: no proxy ever holds
another sandbox's policy, so tenants' policies cannot mix.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import LogConfig, Ulimit

from .. import errors
from ..egress.policy import EgressPolicy

PROXY_PORT = 8080
PROXY_LABEL = "org.sandbox-engine.egress-proxy"
"""On a proxy container and its network: the sandbox they serve (never the managed label, so
that a sweep of sandboxes does not take a proxy for one)."""
PROXY_USER = "10002:10002"
PROXY_PIDS = 64
READY_TIMEOUT = 30.0
_READY_LINE = b"proxy listening at"
# No address on the host side of the bridge: the sandbox cannot reach the host through it.
_INTERNAL_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}


@dataclass(frozen=True)
class EgressRoute:
    """How a sandbox reaches its proxy."""

    network: str
    proxy_ip: str

    @property
    def env(self) -> dict[str, str]:
        """The proxy variables that pip, requests, httpx and urllib read."""
        url = f"http://{self.proxy_ip}:{PROXY_PORT}"
        names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


def proxy_name(sandbox_id: str) -> str:
    return f"sandbox-engine-egress-{sandbox_id}"


class EgressProxies:
    """Starts and removes sandboxes' egress proxies and their networks (blocking calls)."""

    def __init__(
        self,
        client: Callable[[], docker.DockerClient],
        image: str,
        outward_network: str,
        memory_mb: int,
    ) -> None:
        self._client = client
        self.image = image
        self._outward = outward_network
        self._memory = f"{memory_mb}m"

    def start(
        self, sandbox_id: str, session_id: str, policy: EgressPolicy, labels: dict[str, str]
    ) -> EgressRoute:
        """The sandbox's internal network with its proxy up and listening on it."""
        api = self._client().api
        name = proxy_name(sandbox_id)
        labels = {**labels, PROXY_LABEL: sandbox_id}
        try:
            network = api.create_network(
                name, driver="bridge", internal=True, labels=labels, options=_INTERNAL_OPTIONS
            )
            subnet = api.inspect_network(network["Id"])["IPAM"]["Config"][0]["Subnet"]
            config = {
                "sandbox": sandbox_id,
                "session": session_id,
                "allowed_domains": list(policy.allowed_domains),
                "client_subnet": subnet,
            }
            container = api.create_container(
                self.image,
                name=name,
                user=PROXY_USER,
                hostname="egress",
                environment={"EGRESS_POLICY": json.dumps(config)},
                labels=labels,
                host_config=self._host_config(api, name),
                networking_config=api.create_networking_config(
                    {name: api.create_endpoint_config()}
                ),
            )["Id"]
            api.connect_container_to_network(container, self._outward)
            api.start(container)
            self._wait_ready(api, container)
            ip = api.inspect_container(container)["NetworkSettings"]["Networks"][name]
        except ImageNotFound as exc:
            raise errors.ImageNotFound(
                f"egress proxy image {self.image!r} is not built; run "
                "`sandbox-engine image build --egress-proxy`"
            ) from exc
        except APIError as exc:
            raise errors.SandboxUnavailable(f"could not start the egress proxy: {exc}") from exc
        return EgressRoute(name, ip["IPAddress"])

    def _host_config(self, api: docker.APIClient, network: str) -> dict[str, object]:
        return dict(
            api.create_host_config(
                init=True,
                network_mode=network,
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=PROXY_PIDS,
                mem_limit=self._memory,
                memswap_limit=self._memory,
                nano_cpus=int(0.5e9),
                ulimits=[Ulimit(name="core", soft=0, hard=0)],
                tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=16m,mode=1777"},
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            )
        )

    def _wait_ready(self, api: docker.APIClient, container: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            logs = api.logs(container, stdout=True, stderr=True)
            if _READY_LINE in logs:
                return
            if not api.inspect_container(container)["State"]["Running"]:
                raise errors.SandboxUnavailable(
                    f"the egress proxy exited: {logs[-2000:].decode(errors='replace')}"
                )
            time.sleep(0.05)
        raise errors.SandboxUnavailable(f"the egress proxy did not listen in {READY_TIMEOUT} s")

    def refusals(self, sandbox_id: str) -> list[str]:
        """The proxy's log lines for refused requests (session, sandbox, host, reason)."""
        try:
            logs = self._client().api.logs(proxy_name(sandbox_id), stdout=True, stderr=True)
        except NotFound:
            return []
        return [line for line in logs.decode(errors="replace").splitlines() if "refused" in line]

    def remove(self, sandbox_id: str) -> None:
        """Remove the proxy and its network, if there are any. Idempotent."""
        api = self._client().api
        name = proxy_name(sandbox_id)
        try:
            with contextlib.suppress(NotFound):
                api.remove_container(name, force=True)
            with contextlib.suppress(NotFound):
                api.remove_network(name)
        except APIError as exc:
            raise errors.SandboxError(f"could not remove egress proxy {name}: {exc}") from exc
